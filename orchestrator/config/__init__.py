"""Configuration: reading one config file and the environment, into frozen models.

This package owns finding the config file, parsing it (YAML, JSON with comments, or TOML),
telling an orchestrator config from an MCP client's own file (Claude Desktop, Cursor, Windsurf,
VS Code, Claude Code) and reading the latter's server entries as that client would, ``${VAR}``
interpolation from the environment, the ``envFile``s entries name, validation, the JSON
Schema for editors, and watching the files for edits. It does nothing else: no I/O besides
reading (and watching) those files, no connections. Errors are
``orchestrator.errors.ConfigError``, naming the file and every offending key, never a secret.
"""

from __future__ import annotations

from orchestrator.config._auth import (
    GRANT_SELECTOR_PATTERN,
    AuditSpec,
    AuthSpec,
    GrantSelector,
    JwtSpec,
    NamedTokenSpec,
    OAuthSpec,
    RateLimitSpec,
    RateLimitsSpec,
)
from orchestrator.config._catalog import CatalogMode, CatalogSpec, PlanLimitsSpec
from orchestrator.config._client_references import translate_references
from orchestrator.config._clients import home_dir, server_key_for
from orchestrator.config._downstream_auth import DownstreamOAuthSpec
from orchestrator.config._duration import Seconds, parse_duration
from orchestrator.config._load import CONFIG_ENV_VAR, config_json_schema, find_config_path, load_config
from orchestrator.config._models import (
    ConfigKind,
    ConfigOrigin,
    HttpServerSpec,
    NamingSpec,
    OrchestratorConfig,
    ServerSpec,
    ServeSpec,
    StateSpec,
    StdioServerSpec,
    ToolFilterSpec,
    TracingSpec,
)
from orchestrator.config._resilience import CircuitBreakerSpec, HealthSpec, RetrySpec
from orchestrator.config._runs import RunsSpec
from orchestrator.config._trust import CHECK_NAMES, CheckName, CheckSeverity, EgressSpec, TrustMode, TrustSpec
from orchestrator.config._watch import config_watch_paths, watch_files

__all__ = [
    "CHECK_NAMES",
    "CONFIG_ENV_VAR",
    "GRANT_SELECTOR_PATTERN",
    "AuditSpec",
    "AuthSpec",
    "CatalogMode",
    "CatalogSpec",
    "CheckName",
    "CheckSeverity",
    "CircuitBreakerSpec",
    "ConfigKind",
    "ConfigOrigin",
    "DownstreamOAuthSpec",
    "EgressSpec",
    "GrantSelector",
    "HealthSpec",
    "HttpServerSpec",
    "JwtSpec",
    "NamedTokenSpec",
    "NamingSpec",
    "OAuthSpec",
    "OrchestratorConfig",
    "PlanLimitsSpec",
    "RateLimitSpec",
    "RateLimitsSpec",
    "RetrySpec",
    "RunsSpec",
    "Seconds",
    "ServeSpec",
    "ServerSpec",
    "StateSpec",
    "StdioServerSpec",
    "ToolFilterSpec",
    "TracingSpec",
    "TrustMode",
    "TrustSpec",
    "config_json_schema",
    "config_watch_paths",
    "find_config_path",
    "home_dir",
    "load_config",
    "parse_duration",
    "server_key_for",
    "translate_references",
    "watch_files",
]
