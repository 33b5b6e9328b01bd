"""Find the config file, and turn it into an ``OrchestratorConfig`` or one ``ConfigError``.

Order of work: read and parse (``_read``), interpolate ``${VAR}`` (``_interpolate``),
validate with the models, then resolve relative paths against the file's folder. Every
problem of the file is collected before raising, so a user fixes them in one pass.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from orchestrator.config._interpolate import interpolate
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
from orchestrator.config._problems import KeyPath, Problem, format_problems, model_keys, validation_problems
from orchestrator.config._read import SUFFIXES, read_document
from orchestrator.config._resilience import CircuitBreakerSpec, HealthSpec, RetrySpec
from orchestrator.errors import ConfigError

__all__ = ["CONFIG_ENV_VAR", "config_json_schema", "find_config_path", "load_config"]

CONFIG_ENV_VAR = "ORCHESTRATOR_CONFIG"
_DEFAULT_NAMES = tuple(f"orchestrator{suffix}" for suffix in SUFFIXES)
_KEYS_BY_PLACE: dict[KeyPath, set[str]] = {
    (): model_keys(OrchestratorConfig),
    ("servers", "*"): model_keys(StdioServerSpec, HttpServerSpec),
    ("servers", "*", "tools"): model_keys(ToolFilterSpec),
    ("servers", "*", "health"): model_keys(HealthSpec),
    ("servers", "*", "circuit_breaker"): model_keys(CircuitBreakerSpec),
    ("servers", "*", "retry"): model_keys(RetrySpec),
    ("naming",): model_keys(NamingSpec),
    ("serve",): model_keys(ServeSpec),
    ("serve", "auth"): model_keys(AuthSpec),
    ("tracing",): model_keys(TracingSpec),
}
_LOADER_OWNED_KEYS = ("source",)


def find_config_path(explicit: Path | None, env: Mapping[str, str] = os.environ, cwd: Path | None = None) -> Path:
    """Pick the config file: ``--config``, then ``$ORCHESTRATOR_CONFIG``, then ``./orchestrator.yaml``.

    In the working folder ``orchestrator.yml``, ``.json`` and ``.toml`` are also accepted, in that
    order after ``.yaml``. A file named explicitly (by flag or variable) must exist: there is no
    falling back past it.

    Args:
        explicit: The ``--config`` value, if given.
        env: Where ``ORCHESTRATOR_CONFIG`` is looked up.
        cwd: The folder relative paths start from; default the process's working folder.

    Returns:
        The path of an existing file (absolute when ``cwd`` is).

    Raises:
        ConfigError: The named file does not exist, or no default file exists; names what was tried.
    """
    base = cwd if cwd is not None else Path.cwd()
    if explicit is not None:
        return _existing(base / explicit, "given with --config")
    if from_env := env.get(CONFIG_ENV_VAR):
        return _existing(base / from_env, f"named by ${CONFIG_ENV_VAR}")
    candidates = [base / name for name in _DEFAULT_NAMES]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise ConfigError(
        str(candidates[0]),
        [f"no configuration file found; tried --config, ${CONFIG_ENV_VAR} (unset), {tried}"],
    )


def load_config(path: Path, env: Mapping[str, str] = os.environ) -> OrchestratorConfig:
    """Read, interpolate and validate one config file.

    Accepts an ``orchestrator.yaml`` (``servers:`` or ``mcpServers:``, plus ``workflows``, ``naming``,
    ``serve``, ``tracing``) or a Claude Desktop / Cursor ``mcpServers`` file as it is.

    Args:
        path: The file; its suffix (.yaml, .yml, .json, .toml) picks the parser.
        env: Where ``${VAR}`` references are looked up.

    Returns:
        The configuration, with ``source`` set to the resolved path and relative ``cwd`` and
        ``workflows`` paths resolved against the file's folder.

    Raises:
        ConfigError: The file is unreadable or invalid; lists every problem as ``key.path: message``,
            never quoting a value from ``env`` or ``headers``.
    """
    document = read_document(path)
    raw: object = document.data
    if not isinstance(raw, dict):
        found = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise ConfigError(str(path), [f"expected a mapping with 'servers' or 'mcpServers', found {found}"])
    interpolated = interpolate(cast("dict[str, object]", raw), env)
    problems: list[Problem] = [*document.problems, *interpolated.problems]
    data = dict(cast("dict[str, object]", interpolated.data))
    for key in _LOADER_OWNED_KEYS:
        if key in data:
            problems.append(((key,), "unknown key (set by the loader, not the file)"))
            del data[key]
    if "servers" in data and "mcpServers" in data:
        problems.append((("mcpServers",), "use either 'servers' or 'mcpServers', not both"))
        del data["mcpServers"]
    already_reported: list[KeyPath] = [key_path for key_path, _ in problems]
    config: OrchestratorConfig | None = None
    try:
        config = OrchestratorConfig.model_validate(data)
    except ValidationError as exc:
        # Raised below, outside this block, so pydantic's error is not chained: its text quotes
        # input values, which may be secrets.
        problems += validation_problems(exc, _keys_at, skip=already_reported)
    if problems or config is None:
        raise ConfigError(str(path), format_problems(problems, document.lines))
    return _resolve_paths(config, path.resolve())


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of a config file, for editors (e.g. via ``# yaml-language-server: $schema=``).

    Both spellings of the server map (``servers`` and ``mcpServers``) are described.
    """
    schema = OrchestratorConfig.model_json_schema(by_alias=False)
    properties = cast("dict[str, Any]", schema["properties"])
    properties["mcpServers"] = {**properties["servers"], "title": "Mcpservers"}
    schema["not"] = {"required": ["servers", "mcpServers"]}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _keys_at(mapping: KeyPath) -> set[str]:
    if mapping[:1] in {("servers",), ("mcpServers",)} and len(mapping) >= 2:
        mapping = ("servers", "*", *mapping[2:])
    return _KEYS_BY_PLACE.get(mapping, set())


def _existing(path: Path, how: str) -> Path:
    if not path.is_file():
        reason = "is not a file" if path.exists() else "does not exist"
        raise ConfigError(str(path), [f"the configuration file {how} {reason}"])
    return path


def _resolve_paths(config: OrchestratorConfig, source: Path) -> OrchestratorConfig:
    folder = source.parent
    servers: dict[str, ServerSpec] = {
        key: spec.model_copy(update={"cwd": folder / spec.cwd})
        if isinstance(spec, StdioServerSpec) and spec.cwd is not None
        else spec
        for key, spec in config.servers.items()
    }
    workflows = tuple(folder / workflow for workflow in config.workflows)
    return config.model_copy(update={"servers": servers, "workflows": workflows, "source": source})
