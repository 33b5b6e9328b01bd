"""Configuration models: what an ``orchestrator.yaml`` or ``mcpServers`` file declares.

Every model is frozen and forbids unknown keys, so a typo is an error naming the key.
Secrets (environment values, header values) are ``SecretStr``: they never print in a
repr, a log line or an error message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from orchestrator.config._duration import Seconds
from orchestrator.config._resilience import CircuitBreakerSpec, HealthSpec, RetrySpec

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
SERVER_KIND_TAGS = ("stdio", "http")
"""Tags of the server-entry union; pydantic puts them in error locations, the loader drops them."""

# Keys other MCP clients (Cline, Roo Code) write into mcpServers entries that only steer
# their own approval UI; accepted so their files load verbatim, and ignored.
CLIENT_ONLY_SERVER_KEYS = frozenset({"autoApprove", "alwaysAllow"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True)


def _scalar_to_text(value: object) -> object:
    # YAML turns `DEBUG: true` or `PORT: 8080` into bool/int; environment values are text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


SecretText = Annotated[SecretStr, BeforeValidator(_scalar_to_text, json_schema_input_type=str | int | float | bool)]


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


class _ServerCommon(_Frozen):
    timeout: Seconds = Field(
        default=DEFAULT_CALL_TIMEOUT, description="Per-call timeout (duration such as '30s'); default 60s."
    )
    tools: ToolFilterSpec = Field(default_factory=ToolFilterSpec, description="Tool filtering and renaming.")
    prefix: str | Literal[False] | None = Field(
        default=None,
        description="Exposed-name prefix; default the server's key; false exposes names unprefixed.",
    )
    disabled: bool = Field(default=False, description="Skip this server entirely (as in mcpServers files).")
    health: HealthSpec = Field(default_factory=HealthSpec, description="Probes while idle; unhealthy-tool policy.")
    circuit_breaker: CircuitBreakerSpec = Field(
        default_factory=CircuitBreakerSpec, description="When calls to a failing server fail fast instead."
    )
    retry: RetrySpec = Field(
        default_factory=RetrySpec, description="Retries of plain calls to read-only or idempotent tools."
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_client_only_keys(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        entry = cast("dict[object, object]", data)
        return {k: v for k, v in entry.items() if k not in CLIENT_ONLY_SERVER_KEYS}

    @field_validator("prefix", mode="before")
    @classmethod
    def _prefix_text_or_false(cls, value: object) -> object:
        # Checked before the union so `prefix: true` is one clear error, not one per union member.
        if value is None or value is False or (isinstance(value, str) and value):
            return value
        raise ValueError("prefix must be a non-empty string, or false for unprefixed names")


class StdioServerSpec(_ServerCommon):
    """A downstream server started as a subprocess speaking MCP over stdin/stdout."""

    type: Literal["stdio"] = Field(default="stdio", description="Transport; inferred from 'command'.")
    command: str = Field(min_length=1, description="Executable to run.")
    args: tuple[str, ...] = Field(default=(), description="Arguments to the executable.")
    env: dict[str, SecretText] = Field(
        default_factory=dict, description="Extra environment variables for the child; values are secrets."
    )
    cwd: Path | None = Field(default=None, description="Working directory, relative to the config file.")


class HttpServerSpec(_ServerCommon):
    """A downstream server reached over streamable HTTP (or legacy SSE)."""

    type: Literal["http", "streamable-http", "streamableHttp", "sse"] = Field(
        default="http", description="Transport; inferred from 'url'. 'sse' selects the legacy SSE transport."
    )
    url: str = Field(pattern=r"^https?://", description="Endpoint URL.")
    headers: dict[str, SecretText] = Field(
        default_factory=dict, description="Extra HTTP headers, e.g. Authorization; values are secrets."
    )


ServerSpec = StdioServerSpec | HttpServerSpec


def _server_kind(value: object) -> str | None:
    if isinstance(value, StdioServerSpec):
        return "stdio"
    if isinstance(value, HttpServerSpec):
        return "http"
    if isinstance(value, dict):
        return "stdio" if "command" in value else "http" if "url" in value else None
    return None


def _one_transport(value: object) -> object:
    if isinstance(value, dict):
        has_command, has_url = "command" in value, "url" in value
        if has_command and has_url:
            raise ValueError("has both 'command' (stdio) and 'url' (http); keep exactly one")
        if not has_command and not has_url:
            raise ValueError("needs 'command' (a stdio server) or 'url' (an HTTP server)")
    elif not isinstance(value, StdioServerSpec | HttpServerSpec):
        raise ValueError("a server entry must be a mapping with 'command' or 'url'")
    return cast("object", value)  # un-narrows the dict of unknowns pyright strict would reject


def _check_server_key(key: str) -> str:
    if not re.fullmatch(SERVER_KEY_PATTERN, key):
        raise ValueError("server keys are 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
    return key


_ServerEntry = Annotated[
    Annotated[StdioServerSpec, Tag("stdio")] | Annotated[HttpServerSpec, Tag("http")],
    Discriminator(_server_kind),
    BeforeValidator(_one_transport),
]
_ServerKey = Annotated[
    str, AfterValidator(_check_server_key), WithJsonSchema({"type": "string", "pattern": SERVER_KEY_PATTERN})
]


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
    watch: bool = Field(
        default=True,
        description="Reload when the config file or a workflow file changes (SIGHUP always reloads).",
    )


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

    servers: dict[_ServerKey, _ServerEntry] = Field(
        default_factory=dict,
        alias="mcpServers",
        description="Downstream servers by key; an entry with 'command' is stdio, one with 'url' is HTTP.",
    )
    workflows: tuple[Path, ...] = Field(default=(), description="Workflow files or folders, relative to the config.")
    naming: NamingSpec = Field(default_factory=NamingSpec, description="Exposed-name rules.")
    serve: ServeSpec = Field(default_factory=ServeSpec, description="Upstream server settings.")
    tracing: TracingSpec = Field(default_factory=TracingSpec, description="OpenTelemetry settings.")
    source: SkipJsonSchema[Path | None] = Field(
        default=None, exclude=True, description="The file this was loaded from; set by the loader, not the file."
    )

    def enabled_servers(self) -> dict[str, ServerSpec]:
        """The servers that are not ``disabled``, in file order."""
        return {k: v for k, v in self.servers.items() if not v.disabled}
