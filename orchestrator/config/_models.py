"""Configuration models: what an ``orchestrator.yaml`` or an MCP client's file declares.

Every model is frozen and forbids unknown keys, so a typo is an error naming the key.
Secrets (environment values, header values) are ``SecretStr``: they never print in a
repr, a log line or an error message. Server entries also accept the keys MCP clients write
into theirs (``serverUrl``, ``envFile``, ``disabledTools``), so an entry copied from a client
means the same here; keys that only steer a client's own UI are accepted and ignored.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, cast
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from orchestrator._version import NAME
from orchestrator.config._auth import AuditSpec, AuthSpec, RateLimitsSpec
from orchestrator.config._catalog import CatalogSpec
from orchestrator.config._downstream_auth import DownstreamOAuthSpec, is_own_auth
from orchestrator.config._duration import Seconds
from orchestrator.config._resilience import CircuitBreakerSpec, HealthSpec, RetrySpec
from orchestrator.config._runs import RunsSpec
from orchestrator.config._trust import EgressSpec, TrustMode, TrustSpec

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "KIND_TITLES",
    "ConfigKind",
    "ConfigOrigin",
    "HttpServerSpec",
    "NamingSpec",
    "OrchestratorConfig",
    "ServeSpec",
    "ServerSpec",
    "StateSpec",
    "StdioServerSpec",
    "ToolFilterSpec",
    "TracingSpec",
]

SERVER_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
DEFAULT_CALL_TIMEOUT = 60.0
SERVER_KIND_TAGS = ("stdio", "http")
"""Tags of the server-entry union; pydantic puts them in error locations, the loader drops them."""

IGNORED_ENTRY_KEYS: Mapping[str, str] = {
    "autoApprove": "Cline's and Roo Code's tool approvals",
    "alwaysAllow": "Cline's and Roo Code's tool approvals",
    "dev": "VS Code's development mode",
    "gallery": "VS Code's gallery record",
    "version": "VS Code's gallery record",
    "sandbox": "VS Code's sandbox rules",
    "oauth": "the client's own OAuth sign-in, not done here",
    "auth": "Cursor's OAuth client settings, not used here",
    "headersHelper": "Claude Code's header script, not run here",
}
"""Keys MCP clients write into server entries that steer only the client itself, and what they are for.

Accepted so the client's file loads as it is, and ignored (``doctor`` lists them).
"""

_HTTP_TYPES = ("http", "streamable-http", "streamableHttp", "sse")
_STDIO_ONLY_KEYS = frozenset({"args", "env", "cwd", "envFile"})
_HTTP_ONLY_KEYS = frozenset({"headers"})

ConfigKind = Literal[
    "orchestrator",
    "claude-desktop",
    "cursor",
    "windsurf",
    "vscode",
    "claude-code",
    "claude-code-user",
    "mcp-servers",
]
"""What kind of file a config was read from (see ``orchestrator.config._clients`` for the rule)."""

KIND_TITLES: Mapping[ConfigKind, str] = {
    "orchestrator": "an orchestrator config",
    "claude-desktop": "a Claude Desktop file",
    "cursor": "a Cursor file",
    "windsurf": "a Windsurf file",
    "vscode": "a VS Code file",
    "claude-code": "a Claude Code project file",
    "claude-code-user": "a Claude Code user file",
    "mcp-servers": "an mcpServers file",
}
"""How ``doctor`` and messages name each kind of file."""


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
    # Before `tools`, whose validator reads it.
    disabled_tools: tuple[str, ...] = Field(
        default=(),
        alias="disabledTools",
        description="Tool names to hide, as Windsurf writes them; added to tools.exclude.",
    )
    tools: ToolFilterSpec = Field(
        default_factory=ToolFilterSpec, validate_default=True, description="Tool filtering and renaming."
    )
    prefix: str | Literal[False] | None = Field(
        default=None,
        description="Exposed-name prefix; default the server's key; false exposes names unprefixed.",
    )
    disabled: bool = Field(default=False, description="Skip this server entirely (as in mcpServers files).")
    input_timeout: Seconds = Field(
        default=300.0,
        description="How long the server's request for the caller's input (sampling, elicitation, roots) may "
        "wait for an answer; the call's own timeout stops meanwhile.",
    )
    health: HealthSpec = Field(default_factory=HealthSpec, description="Probes while idle; unhealthy-tool policy.")
    circuit_breaker: CircuitBreakerSpec = Field(
        default_factory=CircuitBreakerSpec, description="When calls to a failing server fail fast instead."
    )
    retry: RetrySpec = Field(
        default_factory=RetrySpec, description="Retries of plain calls to read-only or idempotent tools."
    )
    trust: TrustMode = Field(
        default="pin",
        description="When definitions differ from their pins: pin (withhold until approved), "
        "auto (pin added ones on sight, withhold changed ones) or warn (serve, log and audit).",
    )
    start: Literal["eager", "lazy"] = Field(
        default="eager",
        description="eager: start with serve; lazy: serve the tools it listed last time, start it on the first "
        "call that needs it, and stop it after idle_timeout.",
    )
    idle_timeout: Seconds = Field(
        default=300.0, gt=0, description="A lazy server is stopped after this long without a call, e.g. '5m'."
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_client_only_keys(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        entry = cast("dict[object, object]", data)
        own_auth = is_own_auth(entry.get("auth"))
        if own_auth and cls is StdioServerSpec:
            raise ValueError(
                "auth: OAuth sign-in is for HTTP servers (with 'url'); a stdio server takes its credentials from 'env'"
            )
        return {k: v for k, v in entry.items() if k not in IGNORED_ENTRY_KEYS or (k == "auth" and own_auth)}

    @field_validator("tools")
    @classmethod
    def _hide_disabled_tools(cls, tools: ToolFilterSpec, info: ValidationInfo) -> ToolFilterSpec:
        disabled = cast("tuple[str, ...]", info.data.get("disabled_tools", ()))
        if not disabled:
            return tools
        # Exact names: escape the glob characters a tool name might hold.
        names = tuple(re.sub(r"([*?\[])", r"[\1]", name) for name in disabled)
        return tools.model_copy(update={"exclude": (*tools.exclude, *names)})

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
    env_file: Path | None = Field(
        default=None,
        alias="envFile",
        description="A dotenv-style file of more environment variables (secrets), relative to the config file; "
        "'env' wins over it.",
    )
    sandbox_enabled: SkipJsonSchema[bool] = Field(
        default=False, alias="sandboxEnabled", exclude=True, description="VS Code's sandbox switch; only false works."
    )

    @field_validator("sandbox_enabled")
    @classmethod
    def _no_sandbox(cls, value: bool) -> bool:
        # Running a server unsandboxed that its owner asked to sandbox would quietly drop a safeguard.
        if value:
            raise ValueError(
                "VS Code's sandbox is not available here: the server would run unsandboxed; "
                "set it to false (or remove it) to accept that"
            )
        return value


class HttpServerSpec(_ServerCommon):
    """A downstream server reached over streamable HTTP (or legacy SSE)."""

    type: Literal["http", "streamable-http", "streamableHttp", "sse"] = Field(
        default="http", description="Transport; inferred from 'url'. 'sse' selects the legacy SSE transport."
    )
    url: str = Field(
        pattern=r"^https?://",
        validation_alias=AliasChoices("url", "serverUrl"),
        description="Endpoint URL ('serverUrl', as Windsurf writes it, is accepted too).",
    )
    headers: dict[str, SecretText] = Field(
        default_factory=dict, description="Extra HTTP headers, e.g. Authorization; values are secrets."
    )
    auth: DownstreamOAuthSpec | None = Field(
        default=None,
        description="'oauth' (or {type: oauth, scopes, client_id, client_metadata_url}): sign in with OAuth; "
        "run 'orchestrator login KEY' once. Not together with an Authorization header.",
    )

    @model_validator(mode="after")
    def _one_authorization(self) -> HttpServerSpec:
        if self.auth is not None and any(name.lower() == "authorization" for name in self.headers):
            raise ValueError(
                "auth: oauth and an Authorization header both set the credentials; keep one "
                "(remove the header to sign in with 'orchestrator login')"
            )
        return self


ServerSpec = StdioServerSpec | HttpServerSpec


def guess_server_kind(entry: Mapping[str, object]) -> Literal["stdio", "http"] | None:
    """Whether an entry is meant as a stdio or an HTTP server, even when its 'command' or 'url' is misspelt.

    So an entry with ``comand:`` is checked as a stdio server, and its typo and other mistakes
    are all reported, rather than only "needs 'command' or 'url'".
    """
    keys = {str(key) for key in entry}
    if "command" in keys:
        return "stdio"
    if "url" in keys or "serverUrl" in keys:
        return "http"
    for key in sorted(keys):
        if difflib.get_close_matches(key.lower(), ["command"], n=1, cutoff=0.75):
            return "stdio"
        if difflib.get_close_matches(key.lower(), ["url", "serverurl"], n=1, cutoff=0.6):
            return "http"
    declared = entry.get("type")
    if declared == "stdio" or (declared is None and keys & _STDIO_ONLY_KEYS):
        return "stdio"
    if declared in _HTTP_TYPES or (declared is None and keys & _HTTP_ONLY_KEYS):
        return "http"
    return None


def _server_kind(value: object) -> str | None:
    if isinstance(value, StdioServerSpec):
        return "stdio"
    if isinstance(value, HttpServerSpec):
        return "http"
    if isinstance(value, dict):
        return guess_server_kind(cast("dict[str, object]", value))
    return None


def _one_transport(value: object) -> object:
    if isinstance(value, dict):
        entry = cast("dict[str, object]", value)
        if "url" in entry and "serverUrl" in entry:
            raise ValueError("has both 'url' and 'serverUrl'; keep one")
        if "command" in entry and ("url" in entry or "serverUrl" in entry):
            raise ValueError("has both 'command' (stdio) and 'url' (http); keep exactly one")
        if guess_server_kind(entry) is None:
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


class ServeSpec(_Frozen):
    """How ``orchestrator serve`` listens."""

    transport: Literal["stdio", "http"] = Field(default="stdio", description="stdio or streamable HTTP.")
    host: str = Field(default="127.0.0.1", description="HTTP bind address; loopback unless tokens are set.")
    port: int = Field(default=8765, ge=0, le=65535, description="HTTP port (0 picks a free one).")
    path: str = Field(default="/mcp", pattern=r"^/", description="HTTP endpoint path.")
    allowed_origins: tuple[str, ...] = Field(
        default=(), description="Extra browser Origins accepted besides loopback ones, e.g. 'https://app.example'."
    )
    auth: AuthSpec = Field(default_factory=AuthSpec, description="Who may use the HTTP server, and what each may use.")
    rate_limits: RateLimitsSpec = Field(
        default_factory=RateLimitsSpec, description="Call limits per principal and tool."
    )
    watch: bool = Field(
        default=True,
        description="Reload when the config file or a workflow file changes (SIGHUP always reloads).",
    )
    page_size: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Most definitions per page of tools/list, prompts/list, resources/list and resources/templates/list; "
            "clients fetch the rest by cursor (nextCursor). Unset: every list in one page."
        ),
    )
    pass_through: bool = Field(
        default=True,
        description=(
            "Forward a plain tool call's result as the downstream sent it, without re-typing it "
            "(every check still applies); false: every call takes the typed path, for diagnosis."
        ),
    )
    workers: int | Literal["auto"] = Field(
        default=1,
        description=(
            "HTTP only: serving processes on one port, each with its own downstream servers "
            "(docs/scale-out.md); 'auto' is one per usable core."
        ),
    )

    advertise_url: str | None = Field(
        default=None,
        description=(
            "Replicas on PostgreSQL: the URL other replicas reach this one at (e.g. "
            "'http://${HOSTNAME}:8765'), so the answer to an input round this replica holds is passed "
            "to it whichever replica it reaches (docs/scale-out.md). Empty or unset: not passed."
        ),
    )

    @field_validator("advertise_url")
    @classmethod
    def _advertise_url_is_http(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL with a host, e.g. 'http://replica1:8765'")
        return value

    @field_validator("workers")
    @classmethod
    def _workers_positive(cls, value: int | Literal["auto"]) -> int | Literal["auto"]:
        if value != "auto" and not 1 <= value <= 64:
            raise ValueError("workers must be 'auto' or between 1 and 64")
        return value


class TracingSpec(_Frozen):
    """OpenTelemetry export; the standard OTEL_* environment variables take precedence."""

    exporter: Literal["none", "otlp", "otlp_grpc", "console", "file"] = Field(
        default="none", description="Where spans go."
    )
    endpoint: str | None = Field(default=None, description="OTLP endpoint (base URL for http/protobuf).")
    service_name: str = Field(default=NAME, description="service.name of our spans.")
    file: Path | None = Field(default=None, description="Output file for the 'file' exporter (Jaeger JSON).")
    ui_url: str | None = Field(default=None, description="Jaeger UI base URL, to print trace links.")
    record_payloads: bool = Field(default=False, description="Record (redacted, capped) arguments and results.")


class ConfigOrigin(_Frozen):
    """What kind of file a configuration was read from, and what of it was not used; set by the loader."""

    kind: ConfigKind = Field(description="What kind of file it is.")
    ignored_keys: tuple[str, ...] = Field(default=(), description="Top-level keys of a client's file not read.")
    ignored_entry_keys: tuple[str, ...] = Field(
        default=(), description="'key.path (what it is for)' of each client-only server-entry key ignored."
    )
    notes: tuple[str, ...] = Field(default=(), description="Anything else a user should know about the reading.")

    @property
    def title(self) -> str:
        """The kind in words: 'a Claude Desktop file'."""
        return KIND_TITLES[self.kind]


class StateSpec(_Frozen):
    """Where the orchestrator keeps its state: OAuth clients and grants, the audit log, and more."""

    url: str | None = Field(
        default=None,
        description=(
            "Database URL: sqlite:///path/to/state.db, or postgresql://user@host/db for several replicas. "
            "Default: state.db in $ORCHESTRATOR_STATE_DIR, else $XDG_STATE_HOME/mcp-orchestrator, "
            "else ~/.local/state/mcp-orchestrator."
        ),
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description=(
            "Redis URL (redis://[:password@]host:6379/0, or rediss:// for TLS) to keep the rate limits' "
            "token buckets in, shared by every process that names the same Redis, instead of the state "
            "database (no database write per limited call). A secret when it holds a password: write "
            "it as ${REDIS_URL}. Empty or unset: not used."
        ),
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_url_is_redis(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        # Never quote the value: it may hold a password.
        try:
            parts = urlsplit(value.get_secret_value())
            _ = parts.port
        except ValueError:
            raise ValueError("not a URL; write redis://host:6379/0 or rediss://host:6380/0") from None
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError("must be a redis:// or rediss:// URL with a host, e.g. 'redis://127.0.0.1:6379/0'")
        return value


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
    state: StateSpec = Field(default_factory=StateSpec, description="Where state is kept (a database).")
    audit: AuditSpec = Field(default_factory=AuditSpec, description="The audit log of calls.")
    trust: TrustSpec = Field(default_factory=TrustSpec, description="What the checks on definitions do.")
    egress: EgressSpec = Field(default_factory=EgressSpec, description="Where connections may not go.")
    runs: RunsSpec = Field(default_factory=RunsSpec, description="Durable workflow runs and MCP tasks.")
    catalog: CatalogSpec = Field(
        default_factory=CatalogSpec, description="How the catalogue is shown: every tool, or search over them."
    )
    source: SkipJsonSchema[Path | None] = Field(
        default=None, exclude=True, description="The file this was loaded from; set by the loader, not the file."
    )
    origin: SkipJsonSchema[ConfigOrigin | None] = Field(
        default=None, exclude=True, description="What kind of file that was and what was ignored; set by the loader."
    )

    def enabled_servers(self) -> dict[str, ServerSpec]:
        """The servers that are not ``disabled``, in file order."""
        return {k: v for k, v in self.servers.items() if not v.disabled}
