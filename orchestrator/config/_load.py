"""Find the config file, and turn it into an ``OrchestratorConfig`` or one ``ConfigError``.

Order of work: read and parse (``_read``); decide whether the file is an orchestrator config or
an MCP client's file, and take a client's server entries out of it with their ``${...}`` in our
syntax (``_clients``, ``_client_references``); interpolate ``${VAR}`` (``_interpolate``); read
each ``envFile`` (``_env_file``); validate with the models; then resolve relative paths against
the file's folder. Every problem of the file is collected before raising, and reported where the
user wrote it, so a user fixes them in one pass.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import SecretStr, ValidationError

from orchestrator._locations import (
    MISSING_KEY,
    KeyPath,
    Problem,
    closest_key,
    config_error,
    format_key_path,
    format_problem,
    format_problems,
)
from orchestrator.config._client_references import ClientVariables, read_inputs, resolve_client_references
from orchestrator.config._clients import client_servers, detect_kind, home_dir
from orchestrator.config._downstream_auth import is_own_auth
from orchestrator.config._egress_check import egress_problems
from orchestrator.config._env_file import read_env_file
from orchestrator.config._interpolate import interpolate
from orchestrator.config._models import (
    IGNORED_ENTRY_KEYS,
    AuthSpec,
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
    guess_server_kind,
)
from orchestrator.config._problems import model_keys, validation_problems
from orchestrator.config._read import SUFFIXES, read_document
from orchestrator.config._resilience import CircuitBreakerSpec, HealthSpec, RetrySpec
from orchestrator.errors import ConfigError, ConfigNotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["CONFIG_ENV_VAR", "config_json_schema", "find_config_path", "load_config"]

CONFIG_ENV_VAR = "ORCHESTRATOR_CONFIG"
_DEFAULT_NAMES = tuple(f"orchestrator{suffix}" for suffix in SUFFIXES)
_LOADER_OWNED_KEYS = ("source", "origin")
_KEYS_BY_PLACE: dict[KeyPath, set[str]] = {
    (): model_keys(OrchestratorConfig) - set(_LOADER_OWNED_KEYS),
    ("servers", "*"): model_keys(StdioServerSpec, HttpServerSpec),
    ("servers", "*", "tools"): model_keys(ToolFilterSpec),
    ("servers", "*", "health"): model_keys(HealthSpec),
    ("servers", "*", "circuit_breaker"): model_keys(CircuitBreakerSpec),
    ("servers", "*", "retry"): model_keys(RetrySpec),
    ("naming",): model_keys(NamingSpec),
    ("serve",): model_keys(ServeSpec),
    ("serve", "auth"): model_keys(AuthSpec),
    ("tracing",): model_keys(TracingSpec),
    ("state",): model_keys(StateSpec),
}
_TRANSPORT_KEYS = ("command", "url", "serverUrl")
_EDITOR_FOLDERS = frozenset({".vscode", ".cursor"})
"""A client file in one of these folders (not in the home folder) belongs to the project above it."""


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
        ConfigNotFoundError: The named file does not exist, or no default file exists; names what was tried.
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
    raise ConfigNotFoundError(
        str(candidates[0]),
        f"no configuration file found; tried --config, ${CONFIG_ENV_VAR} (unset), {tried}",
        tried=[str(c) for c in candidates],
        named=False,
    )


def load_config(
    path: str | os.PathLike[str],
    env: Mapping[str, str] = os.environ,
    cwd: Path | None = None,
    *,
    text: str | None = None,
) -> OrchestratorConfig:
    """Read, interpolate and validate one config file.

    Accepts an orchestrator config (``servers:`` or ``mcpServers:``, plus ``workflows``, ``naming``,
    ``serve``, ``tracing``), or an MCP client's own file as it is: Claude Desktop, Cursor, Windsurf,
    VS Code (``servers`` and ``inputs``), Claude Code (``.mcp.json``, or ``~/.claude.json``: its
    user-scope servers and the project section of ``cwd``). Which kind a file is follows the rule in
    ``orchestrator.config._clients``; the result's ``origin`` says what was decided and ignored.

    Args:
        path: The file; its suffix (.yaml, .yml, .json, .toml) picks the parser.
        env: Where ``${VAR}`` references (and VS Code inputs) are looked up.
        cwd: The working folder: it picks the project section of ``~/.claude.json`` and is
            ``${workspaceFolder}`` outside a ``.vscode``/``.cursor`` folder; default the process's.
        text: The file's content, to check a config before it is written (``install --from``);
            default what ``path`` holds.

    Returns:
        The configuration, with ``source`` set to the resolved path, ``origin`` to what kind of file
        it was, relative ``cwd``, ``envFile`` and ``workflows`` paths resolved against the file's
        folder, and each ``envFile`` read into the server's ``env``.

    Raises:
        ConfigError: The file is unreadable or invalid; lists every problem as
            ``FILE:LINE: key.path: message`` (``orchestrator._locations``), never quoting a value
            from ``env``, ``headers`` or an env file.
    """
    path = Path(path)
    document = read_document(path, text)
    raw: object = document.data
    if not isinstance(raw, dict):
        found = "an empty file" if raw is None else f"a {type(raw).__name__}"
        message = f"expected a mapping with 'servers' or 'mcpServers', found {found}"
        raise config_error(str(path), message)
    source = path.resolve()
    data = cast("dict[str, object]", raw)
    kind = detect_kind(path, data)
    if kind == "orchestrator":
        reading = _orchestrator_reading(data)
    else:
        reading = _client_reading(kind, data, source, env, cwd if cwd is not None else Path.cwd())
    interpolated = interpolate(reading.data, env)
    problems: list[Problem] = [*document.problems, *reading.problems, *interpolated.problems]
    validated = dict(cast("dict[str, object]", interpolated.data))
    env_files = _read_env_files(validated, source.parent, problems)
    already_reported: list[KeyPath] = [key_path for key_path, _ in problems]
    config: OrchestratorConfig | None = None
    try:
        config = OrchestratorConfig.model_validate(validated)
        problems += egress_problems(config)
    except ValidationError as exc:
        # Raised below, outside this block, so pydantic's error is not chained: its text quotes
        # input values, which may be secrets.
        problems += _with_transport_typos_merged(validation_problems(exc, _keys_at, skip=already_reported), validated)
    problems = [(_file_path(key_path, reading.places), message) for key_path, message in problems]
    if problems or config is None:
        raise ConfigError(str(path), format_problems(str(path), problems, document.lines))
    origin = ConfigOrigin(
        kind=kind,
        ignored_keys=tuple(reading.ignored_keys),
        ignored_entry_keys=tuple(_ignored_entry_keys(validated, reading.places)),
        notes=tuple(reading.notes),
    )
    return _resolve_paths(config, source, env_files).model_copy(update={"origin": origin})


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of a config file, for editors (e.g. via ``# yaml-language-server: $schema=``).

    Both spellings of the server map (``servers`` and ``mcpServers``) are described, and server
    entries as clients write them: ``envFile``, ``disabledTools``, ``serverUrl`` (for ``url``), and
    the client-only keys that are accepted and ignored.
    """
    schema = OrchestratorConfig.model_json_schema(by_alias=True)
    properties = cast("dict[str, Any]", schema["properties"])
    properties["servers"] = {**properties["mcpServers"], "title": "Servers"}
    schema["not"] = {"required": ["servers", "mcpServers"]}
    definitions = cast("dict[str, dict[str, Any]]", schema["$defs"])
    http = definitions["HttpServerSpec"]
    http["properties"]["serverUrl"] = {**http["properties"]["url"], "description": "Windsurf's spelling of 'url'."}
    http["required"] = [key for key in http.get("required", []) if key != "url"]
    http["anyOf"] = [{"required": ["url"]}, {"required": ["serverUrl"]}]
    http["properties"]["auth"] = {
        "description": http["properties"]["auth"]["description"],
        "anyOf": [{"const": "oauth"}, {"$ref": "#/$defs/DownstreamOAuthSpec"}, {"type": "null"}],
    }
    for name in ("StdioServerSpec", "HttpServerSpec"):
        for key, what in IGNORED_ENTRY_KEYS.items():
            if key not in definitions[name]["properties"]:  # HTTP entries' own `auth` keeps its schema
                definitions[name]["properties"][key] = {"description": f"Ignored here: {what}."}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _keys_at(mapping: KeyPath) -> set[str]:
    if mapping[:1] in {("servers",), ("mcpServers",)} and len(mapping) >= 2:
        mapping = ("servers", "*", *mapping[2:])
    return _KEYS_BY_PLACE.get(mapping, set())


def _existing(path: Path, how: str) -> Path:
    if not path.is_file():
        reason = "is not a file" if path.exists() else "does not exist"
        message = format_problem(str(path), None, (), f"the configuration file {how} {reason}")
        raise ConfigNotFoundError(str(path), message, tried=[str(path)], named=True)
    return path


@dataclass(slots=True)
class _Reading:
    """A file made ready for interpolation and validation.

    Attributes:
        data: What the models validate; a client's file becomes ``{"servers": {...}}``.
        places: Server key -> where its entry sits in the file, for a client's file (problems
            are found at ``servers.<key>`` and reported where the user wrote them).
        problems: Problems found so far, at paths in ``data`` (or in the file, outside servers).
        ignored_keys: Top-level keys of a client's file that were not read.
        notes: What else a user should know about the reading.
    """

    data: dict[str, object]
    places: dict[str, KeyPath] = field(default_factory=lambda: {})
    problems: list[Problem] = field(default_factory=lambda: [])
    ignored_keys: list[str] = field(default_factory=lambda: [])
    notes: list[str] = field(default_factory=lambda: [])


def _orchestrator_reading(document: dict[str, object]) -> _Reading:
    # Top-level `x-` keys are the user's own (YAML anchors for shared server settings), as in
    # Docker Compose; every other unknown top-level key stays an error.
    reading = _Reading({key: value for key, value in document.items() if not str(key).startswith("x-")})
    for key in _LOADER_OWNED_KEYS:
        if key in reading.data:
            reading.problems.append(((key,), "unknown key (set by the loader, not the file)"))
            del reading.data[key]
    if "servers" in reading.data and "mcpServers" in reading.data:
        reading.problems.append((("mcpServers",), "use either 'servers' or 'mcpServers', not both"))
        del reading.data["mcpServers"]
    servers_key = "mcpServers" if "mcpServers" in reading.data else "servers"
    servers = reading.data.get(servers_key)
    if isinstance(servers, dict):
        reading.places = {str(key): (servers_key, str(key)) for key in cast("dict[object, object]", servers)}
    return reading


def _client_reading(
    kind: ConfigKind, document: dict[str, object], source: Path, env: Mapping[str, str], cwd: Path
) -> _Reading:
    found = client_servers(kind, document, cwd)
    reading = _Reading({}, found.places, found.problems, found.ignored_keys, found.notes)
    inputs = None
    if kind == "vscode" and "inputs" in document:
        inputs, input_problems = read_inputs(document["inputs"])
        reading.problems += input_problems
    elif kind == "vscode":
        inputs = {}
    home = home_dir(env, sys.platform)
    # A project's `.cursor/mcp.json` belongs to that project; the user-wide `~/.cursor/mcp.json`
    # to whatever folder the client has open, which here is the working folder.
    project = source.parent.parent
    in_project = source.parent.name in _EDITOR_FOLDERS and project.resolve() != home.resolve()
    variables = ClientVariables(home=home, workspace=project if in_project else cwd, env=env, inputs=inputs)
    reading.data = {
        "servers": {
            key: resolve_client_references(entry, kind, variables, ("servers", key), reading.problems)
            for key, entry in found.entries.items()
        }
    }
    return reading


def _file_path(path: KeyPath, places: Mapping[str, KeyPath]) -> KeyPath:
    """Where a problem found at ``servers.<key>...`` sits in the file the user wrote."""
    if len(path) >= 2 and path[0] in ("servers", "mcpServers") and str(path[1]) in places:
        return (*places[str(path[1])], *path[2:])
    return path


def _with_transport_typos_merged(problems: Iterable[Problem], data: Mapping[str, object]) -> list[Problem]:
    """Say a missing 'command' or 'url' once, in the most useful words.

    When the entry also has a misspelling of it (``comand``), its "did you mean 'command'?"
    already says what to do, so "required key is missing" is dropped; otherwise the missing key
    is reported on the entry as "needs 'command' or 'url'". Which entry misspells one is read
    from the entry's keys, not from the other problems' words.
    """
    entries: list[Problem] = []
    others: list[Problem] = []
    for path, message in problems:
        if len(path) == 3 and path[2] in _TRANSPORT_KEYS and message == MISSING_KEY:
            if not _misspells_a_transport_key(data, path[:2]):
                entries.append((path[:2], "needs 'command' (a stdio server) or 'url' (an HTTP server)"))
        else:
            others.append((path, message))
    return entries + others  # an entry's own problem first, before those of its keys on the same line


def _misspells_a_transport_key(data: Mapping[str, object], entry_path: KeyPath) -> bool:
    """Whether the server entry at ``entry_path`` has an unknown key that is most likely 'command' or 'url'."""
    section, key = entry_path
    servers = data.get(str(section))
    entry: object = cast("dict[object, object]", servers).get(key) if isinstance(servers, dict) else None
    if not isinstance(entry, dict):
        return False
    known = _keys_at(entry_path)
    return any(
        isinstance(name, str) and name not in known and closest_key(name, known) in _TRANSPORT_KEYS
        for name in cast("dict[object, object]", entry)
    )


def _read_env_files(data: Mapping[str, object], folder: Path, problems: list[Problem]) -> dict[str, dict[str, str]]:
    """Each server's ``envFile``, read (before validation, so its mistakes come with all the others)."""
    values: dict[str, dict[str, str]] = {}
    for key, entry in _entries(data):
        env_file = entry.get("envFile", entry.get("env_file"))
        if not isinstance(env_file, str) or not env_file or guess_server_kind(entry) != "stdio":
            continue  # an HTTP entry's envFile is reported as an unknown key instead
        path = folder / Path(env_file).expanduser()
        read = read_env_file(path)
        problems += [(("servers", key, "envFile"), f"{path}: {problem}") for problem in read.problems]
        values[key] = read.values
    return values


def _ignored_entry_keys(data: Mapping[str, object], places: Mapping[str, KeyPath]) -> list[str]:
    return [
        f"{format_key_path(_file_path(('servers', key, name), places))} ({IGNORED_ENTRY_KEYS[name]})"
        for key, entry in _entries(data)
        for name in entry
        if name in IGNORED_ENTRY_KEYS and not (name == "auth" and is_own_auth(entry[name]))
    ]


def _entries(data: Mapping[str, object]) -> list[tuple[str, dict[str, object]]]:
    servers = data.get("servers", data.get("mcpServers"))
    if not isinstance(servers, dict):
        return []
    items = cast("dict[str, object]", servers).items()
    return [(str(key), cast("dict[str, object]", entry)) for key, entry in items if isinstance(entry, dict)]


def _resolve_paths(
    config: OrchestratorConfig, source: Path, env_files: Mapping[str, Mapping[str, str]]
) -> OrchestratorConfig:
    folder = source.parent
    servers: dict[str, ServerSpec] = {}
    for key, spec in config.servers.items():
        if isinstance(spec, StdioServerSpec):
            update: dict[str, object] = {}
            if spec.cwd is not None:
                update["cwd"] = folder / spec.cwd
            if spec.env_file is not None:
                update["env_file"] = folder / spec.env_file.expanduser()
                from_file = {name: SecretStr(value) for name, value in env_files.get(key, {}).items()}
                update["env"] = {**from_file, **spec.env}
            spec = spec.model_copy(update=update) if update else spec
        servers[key] = spec
    workflows = tuple(folder / workflow for workflow in config.workflows)
    return config.model_copy(update={"servers": servers, "workflows": workflows, "source": source})
