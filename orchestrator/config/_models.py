"""Configuration models: what an ``orchestrator.yaml`` or ``mcpServers`` file declares.

Every model is frozen and forbids unknown keys, so a typo is an error naming the key.
Secrets (environment values, header values) are ``SecretStr``: they never print in a
repr, a log line or an error message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from orchestrator.config._duration import parse_duration

__all__ = [
    "AuthSpec",
    "HttpServerSpec",
    "NamingSpec",
    "OrchestratorConfig",
    "ServeSpec",
    "ServerSpec",
    "StdioServerSpec",
    "ToolFilterSpec",
    "TracingSpec",
]

SERVER_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
DEFAULT_CALL_TIMEOUT = 60.0


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


Seconds = Annotated[float, Field(gt=0)]


class _DurationMixin(_Frozen):
    @field_validator("timeout", mode="before", check_fields=False)
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value


class ToolFilterSpec(_Frozen):
    """Which downstream tools are exposed, and under what name and description."""

    include: tuple[str, ...] = Field(
        default=("*",), description="Glob patterns of original tool names to expose; default all."
    )
    exclude: tuple[str, ...] = Field(default=(), description="Glob patterns of original tool names to hide.")
    rename: dict[str, str] = Field(
        default_factory=dict, description="Original tool name -> new name, before prefixing and sanitising."
    )
    describe: dict[str, str] = Field(
        default_factory=dict,
        description="Tool name (original or renamed) -> description that replaces the server's own.",
    )


class _ServerCommon(_DurationMixin):
    timeout: Seconds = Field(
        default=DEFAULT_CALL_TIMEOUT, description="Per-call timeout (duration such as '30s'); default 60s."
    )
    tools: ToolFilterSpec = Field(default_factory=ToolFilterSpec, description="Tool filtering and renaming.")
    prefix: str | Literal[False] | None = Field(
        default=None,
        description="Exposed-name prefix; default the server's key; false exposes names unprefixed.",
    )
    disabled: bool = Field(default=False, description="Skip this server entirely (as in mcpServers files).")

    @field_validator("prefix")
    @classmethod
    def _prefix_not_true(cls, value: str | Literal[False] | None) -> str | Literal[False] | None:
        if value == "":
            raise ValueError("prefix must be a non-empty string, or false for unprefixed names")
        return value


class StdioServerSpec(_ServerCommon):
    """A downstream server started as a subprocess speaking MCP over stdin/stdout."""

    type: Literal["stdio"] = Field(default="stdio", description="Transport; inferred from 'command'.")
    command: str = Field(min_length=1, description="Executable to run.")
    args: tuple[str, ...] = Field(default=(), description="Arguments to the executable.")
    env: dict[str, SecretStr] = Field(
        default_factory=dict, description="Extra environment variables for the child; values are secrets."
    )
    cwd: Path | None = Field(default=None, description="Working directory, relative to the config file.")


class HttpServerSpec(_ServerCommon):
    """A downstream server reached over streamable HTTP (or legacy SSE)."""

    type: Literal["http", "streamable-http", "streamableHttp", "sse"] = Field(
        default="http", description="Transport; inferred from 'url'. 'sse' selects the legacy SSE transport."
    )
    url: str = Field(pattern=r"^https?://", description="Endpoint URL.")
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Extra HTTP headers, e.g. Authorization; values are secrets."
    )


ServerSpec = StdioServerSpec | HttpServerSpec


class NamingSpec(_Frozen):
    """How exposed names are built (see the README's naming rules)."""

    separator: str = Field(default="__", pattern=r"^[A-Za-z0-9_-]{1,4}$", description="Between prefix and tool.")
    max_length: int = Field(default=64, ge=16, le=128, description="Longest exposed name; Cursor needs 60.")


class AuthSpec(_Frozen):
    """Bearer-token authentication for the HTTP server."""

    tokens_env: str = Field(
        default="ORCHESTRATOR_TOKENS",
        description="Environment variable holding accepted bearer tokens, comma-separated.",
    )


class ServeSpec(_Frozen):
    """How ``orchestrator serve`` listens."""

    transport: Literal["stdio", "http"] = Field(default="stdio", description="stdio or streamable HTTP.")
    host: str = Field(default="127.0.0.1", description="HTTP bind address; loopback unless tokens are set.")
    port: int = Field(default=8765, ge=0, le=65535, description="HTTP port (0 picks a free one).")
    path: str = Field(default="/mcp", pattern=r"^/", description="HTTP endpoint path.")
    allowed_origins: tuple[str, ...] = Field(
        default=(), description="Extra browser Origins accepted besides loopback ones, e.g. 'https://app.example'."
    )
    auth: AuthSpec = Field(default_factory=AuthSpec, description="Bearer tokens for HTTP.")


class TracingSpec(_Frozen):
    """OpenTelemetry export; the standard OTEL_* environment variables take precedence."""

    exporter: Literal["none", "otlp", "otlp_grpc", "console", "file"] = Field(
        default="none", description="Where spans go."
    )
    endpoint: str | None = Field(default=None, description="OTLP endpoint (base URL for http/protobuf).")
    service_name: str = Field(default="mcp-orchestrator", description="service.name of our spans.")
    file: Path | None = Field(default=None, description="Output file for the 'file' exporter (Jaeger JSON).")
    ui_url: str | None = Field(default=None, description="Jaeger UI base URL, to print trace links.")
    record_payloads: bool = Field(default=False, description="Record (redacted, capped) arguments and results.")


class OrchestratorConfig(_Frozen):
    """The whole configuration, as loaded from one file."""

    servers: dict[str, ServerSpec] = Field(
        default_factory=dict, alias="mcpServers", description="Downstream servers by key."
    )
    workflows: tuple[Path, ...] = Field(default=(), description="Workflow files or folders, relative to the config.")
    naming: NamingSpec = Field(default_factory=NamingSpec, description="Exposed-name rules.")
    serve: ServeSpec = Field(default_factory=ServeSpec, description="Upstream server settings.")
    tracing: TracingSpec = Field(default_factory=TracingSpec, description="OpenTelemetry settings.")
    source: Path | None = Field(default=None, exclude=True, description="The file this was loaded from.")

    @field_validator("servers")
    @classmethod
    def _server_keys(cls, value: dict[str, ServerSpec]) -> dict[str, ServerSpec]:
        bad = [k for k in value if not re.fullmatch(SERVER_KEY_PATTERN, k)]
        if bad:
            raise ValueError(f"server keys must match {SERVER_KEY_PATTERN}: {', '.join(map(repr, bad))}")
        return value

    def enabled_servers(self) -> dict[str, ServerSpec]:
        """The servers that are not ``disabled``, in file order."""
        return {k: v for k, v in self.servers.items() if not v.disabled}
