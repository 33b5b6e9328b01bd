"""Configuration: reading one config file and the environment, into frozen models.

This package owns finding the config file, parsing it (YAML, JSON or TOML), ``${VAR}``
interpolation from the environment, validation, the JSON Schema for editors, and watching
the file for edits. It does nothing else: no I/O besides reading (and watching) the file, no
connections. Errors are
``orchestrator.errors.ConfigError``, naming the file and every offending key, never a secret.
"""

from __future__ import annotations

from orchestrator.config._duration import Seconds, parse_duration
from orchestrator.config._load import CONFIG_ENV_VAR, config_json_schema, find_config_path, load_config
from orchestrator.config._models import (
    AuthSpec,
    HttpServerSpec,
    NamingSpec,
    OrchestratorConfig,
    ServerSpec,
    ServeSpec,
    StdioServerSpec,
    ToolFilterSpec,
    TracingSpec,
)
from orchestrator.config._resilience import CircuitBreakerSpec, HealthSpec, RetrySpec
from orchestrator.config._watch import config_watch_paths, watch_files

__all__ = [
    "CONFIG_ENV_VAR",
    "AuthSpec",
    "CircuitBreakerSpec",
    "HealthSpec",
    "HttpServerSpec",
    "NamingSpec",
    "OrchestratorConfig",
    "RetrySpec",
    "Seconds",
    "ServeSpec",
    "ServerSpec",
    "StdioServerSpec",
    "ToolFilterSpec",
    "TracingSpec",
    "config_json_schema",
    "config_watch_paths",
    "find_config_path",
    "load_config",
    "parse_duration",
    "watch_files",
]
