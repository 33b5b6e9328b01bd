"""Configuration: reading one config file and the environment, into frozen models.

This package owns finding the config file, parsing it (YAML, JSON or TOML), ``${VAR}``
interpolation from the environment, validation, and the JSON Schema for editors. It does
nothing else: no I/O besides reading the file, no connections, no logging. Errors are
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
    "find_config_path",
    "load_config",
    "parse_duration",
]
