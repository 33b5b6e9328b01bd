"""``orchestrator install``: register the orchestrator in an MCP client, or move a client's servers into it.

Owns where each supported client keeps its MCP server list (Claude Desktop, Cursor, Claude
Code, per OS); editing that JSON file in place, keeping the other entries, the key order,
the indentation, line endings and file mode, with a timestamped backup before any change and
no write when nothing would change; and ``--from``, which imports a client's servers into an
``orchestrator.yaml`` (keeping that file's comments where it can) and leaves the single
meta-connector entry in the client.

The entry runs the interpreter running this command (``sys.executable``, absolute but not
resolved through symlinks, so a virtualenv's interpreter stays the virtualenv's) as
``python -m orchestrator serve --config <absolute path>``: it needs no ``PATH``, which GUI
clients start servers with a minimal version of.

Does not: start servers (``doctor`` does), or print or log a secret. Values under ``env`` and
``headers`` are masked in everything printed, ``--dry-run`` output included. The orchestrator
config it writes is validated by ``orchestrator.config`` before anything is replaced.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO, cast, get_args

import yaml
from pydantic import ValidationError

from orchestrator.config import OrchestratorConfig, find_config_path, load_config
from orchestrator.errors import ConfigError, OrchestratorError

__all__ = [
    "CLIENTS",
    "DEFAULT_ENTRY_NAME",
    "ClientName",
    "SubcommandAdder",
    "add_parser",
    "client_config_path",
    "mask_secrets",
    "meta_entry",
    "run",
]

ClientName = Literal["claude-desktop", "cursor", "claude-code"]
CLIENTS: tuple[ClientName, ...] = get_args(ClientName)
DEFAULT_ENTRY_NAME = "mcp-orchestrator"
MASK = "***"

_TITLES: Mapping[ClientName, str] = {
    "claude-desktop": "Claude Desktop",
    "cursor": "Cursor",
    "claude-code": "Claude Code",
}
_NEXT_STEP: Mapping[ClientName, str] = {
    "claude-desktop": "Quit Claude Desktop completely (not just its window) and open it again.",
    "cursor": "Restart Cursor (or toggle the server in Settings > MCP).",
    "claude-code": "Start a new Claude Code session; `claude mcp list` shows the entry.",
}
_SECRET_MAPS = frozenset({"env", "headers"})
_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$")
_CLIENT_REFERENCE = re.compile(r"\$\{([^}]*)\}|\$\{")
_SERVER_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SERVER_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_WRITABLE_SUFFIXES = (".yaml", ".yml", ".json")


class SubcommandAdder(Protocol):
    """What ``ArgumentParser.add_subparsers()`` returns, as far as these commands use it."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        """Add a subcommand parser."""
        ...


# --------------------------------------------------------------- locations


def _home(env: Mapping[str, str], platform: str) -> Path:
    names = ("USERPROFILE", "HOME") if platform == "win32" else ("HOME",)
    for name in names:
        if value := env.get(name):
            return Path(value)
    return Path.home()


def client_config_path(client: ClientName, env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """The file where ``client`` keeps its user-wide MCP servers.

    Claude Desktop: ``~/Library/Application Support/Claude`` (macOS), ``%APPDATA%\\Claude``
    (Windows), ``$XDG_CONFIG_HOME/Claude`` or ``~/.config/Claude`` (Linux), file
    ``claude_desktop_config.json``. Cursor: ``~/.cursor/mcp.json``. Claude Code: the top-level
    ``mcpServers`` of ``~/.claude.json`` (its user scope), in ``$CLAUDE_CONFIG_DIR`` when set.

    Args:
        client: Which client.
        env: Where ``HOME``, ``APPDATA`` etc. are read; default ``os.environ`` at call time.
        platform: A ``sys.platform`` value; default this one.
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    home = _home(env, platform)
    if client == "cursor":
        return home / ".cursor" / "mcp.json"
    if client == "claude-code":
        config_dir = env.get("CLAUDE_CONFIG_DIR")
        return (Path(config_dir) if config_dir else home) / ".claude.json"
    if platform == "darwin":
        base = home / "Library" / "Application Support"
    elif platform == "win32":
        appdata = env.get("APPDATA")
        base = Path(appdata) if appdata else home / "AppData" / "Roaming"
    else:
        xdg = env.get("XDG_CONFIG_HOME")
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".config"
    return base / "Claude" / "claude_desktop_config.json"


def meta_entry(client: ClientName, config: Path, python: str | None = None) -> dict[str, Any]:
    """The ``mcpServers`` entry that serves ``config`` over stdio.

    Args:
        client: Claude Code entries also carry ``"type": "stdio"``, as ``claude mcp add`` writes them.
        config: The orchestrator config; made absolute.
        python: The interpreter; default the running one.
    """
    command = python if python is not None else os.path.abspath(sys.executable)
    args = ["-m", "orchestrator", "serve", "--config", str(config.absolute())]
    entry: dict[str, Any] = {"command": command, "args": args}
    return {"type": "stdio", **entry} if client == "claude-code" else entry


def _is_meta_entry(entry: object) -> bool:
    """Whether an ``mcpServers`` entry runs ``orchestrator serve`` (ours, under any name)."""
    if not isinstance(entry, dict):
        return False
    fields = cast("dict[str, Any]", entry)
    args = [str(a) for a in cast("list[object]", fields.get("args") or []) if isinstance(a, str | int)]
    command = Path(str(fields.get("command", ""))).stem
    via_module = any(args[i : i + 2] == ["orchestrator", "serve"] for i in range(len(args)))
    return via_module or (command == "orchestrator" and args[:1] == ["serve"])


# ------------------------------------------------------------ JSON editing


@dataclass(frozen=True, slots=True)
class _JsonStyle:
    """How a JSON file was written, so a rewrite changes only what it must."""

    indent: str | None = "  "
    item_separator: str = ","
    key_separator: str = ": "
    newline: str = "\n"
    final_newline: bool = True
    bom: bool = False
    ensure_ascii: bool = False

    @classmethod
    def of(cls, raw: str) -> _JsonStyle:
        bom = raw.startswith("\ufeff")
        text = raw.removeprefix("\ufeff")
        newline = "\r\n" if "\r\n" in text else "\n"
        body = text.strip()
        ensure_ascii = "\\u" in text and text.isascii()
        if "\n" not in body:
            if len(body) <= 2:  # "{}" or empty: nothing to learn from
                return cls(newline=newline, bom=bom)
            compact = '":' in body and '": ' not in body
            return cls(
                indent=None,
                item_separator="," if compact else ", ",
                key_separator=":" if compact else ": ",
                newline=newline,
                final_newline=text.endswith("\n"),
                bom=bom,
                ensure_ascii=ensure_ascii,
            )
        match = re.search(r"^([ \t]+)\S", text, re.MULTILINE)
        return cls(
            indent=match.group(1) if match else "  ",
            newline=newline,
            final_newline=text.endswith("\n"),
            bom=bom,
            ensure_ascii=ensure_ascii,
        )

    def dump(self, data: object) -> str:
        text = json.dumps(
            data,
            indent=self.indent,
            separators=(self.item_separator, self.key_separator),
            ensure_ascii=self.ensure_ascii,
        )
        if self.final_newline:
            text += "\n"
        if self.newline != "\n":
            text = text.replace("\n", self.newline)
        return ("\ufeff" if self.bom else "") + text


@dataclass(frozen=True, slots=True)
class _JsonFile:
    """A client's config file as read: its data, its style, and whether it existed."""

    path: Path
    data: dict[str, Any]
    style: _JsonStyle
    existed: bool

    @classmethod
    def read(cls, path: Path, *, must_exist: bool = False) -> _JsonFile:
        """Read ``path``; a missing (or empty) file reads as ``{}``.

        Raises:
            ConfigError: The file cannot be read, is not a JSON object, or its ``mcpServers`` is
                not an object; or it is missing and ``must_exist``.
        """
        try:
            raw = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            if must_exist:
                raise ConfigError(
                    str(path), ["no such file; is the client installed? (--config-path names it)"]
                ) from None
            return cls(path, {}, _JsonStyle(), existed=False)
        except UnicodeDecodeError as exc:
            raise ConfigError(str(path), [f"not UTF-8 text (bad byte at offset {exc.start})"]) from exc
        except OSError as exc:
            raise ConfigError(str(path), [f"cannot read the file: {exc.strerror or type(exc).__name__}"]) from exc
        style = _JsonStyle.of(raw)
        if not raw.strip().removeprefix("\ufeff").strip():
            return cls(path, {}, style, existed=True)
        try:
            data: object = json.loads(raw.removeprefix("\ufeff"))
        except json.JSONDecodeError as exc:
            # Not chained: the decoder's exception holds the whole text, secrets included.
            problem = f"line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg}); fix it, or restore a backup"
            raise ConfigError(str(path), [problem]) from None
        if not isinstance(data, dict):
            raise ConfigError(str(path), [f"expected a JSON object at the top level, found {type(data).__name__}"])
        document = cast("dict[str, Any]", data)
        if not isinstance(document.get("mcpServers", {}), dict):
            raise ConfigError(str(path), ["mcpServers: expected an object of server entries"])
        return cls(path, document, style, existed=True)

    @property
    def servers(self) -> dict[str, Any]:
        """The ``mcpServers`` object (empty when absent)."""
        return cast("dict[str, Any]", self.data.get("mcpServers", {}))

    def with_servers(self, servers: dict[str, Any]) -> dict[str, Any]:
        """The document with ``mcpServers`` replaced, keeping its position (or appended)."""
        return {**self.data, "mcpServers": servers}


def mask_secrets(value: object) -> object:
    """``value`` with every value under an ``env`` or ``headers`` mapping replaced by ``***``.

    A value that is only a ``${VAR}`` reference is kept: it is not a secret, and shows where one comes from.
    """
    if isinstance(value, dict):
        items = cast("dict[str, object]", value).items()
        return {
            key: {name: _mask_one(v) for name, v in cast("dict[str, object]", item).items()}
            if key in _SECRET_MAPS and isinstance(item, dict)
            else mask_secrets(item)
            for key, item in items
        }
    if isinstance(value, list):
        return [mask_secrets(item) for item in cast("list[object]", value)]
    return value


def _mask_one(value: object) -> object:
    return value if isinstance(value, str) and _REFERENCE.match(value) else MASK


def _translate(value: object, client: ClientName, home: Path) -> object:
    """A client's entry with its ``${...}`` made to mean in our config what they meant in the client's.

    Claude Code expands ``${VAR}`` and ``${VAR:-default}`` as we do. Claude Desktop expands nothing,
    so a ``${`` there is literal (``$${`` here). Cursor's ``${env:NAME}`` is our ``${NAME}`` and its
    ``${userHome}`` the home folder; its other variables have no meaning here and stay literal.
    """
    if isinstance(value, dict):
        return {k: _translate(v, client, home) for k, v in cast("dict[str, object]", value).items()}
    if isinstance(value, list):
        return [_translate(v, client, home) for v in cast("list[object]", value)]
    if not isinstance(value, str) or client == "claude-code":
        return value

    def one(match: re.Match[str]) -> str:
        body = match.group(1)
        if client == "cursor" and body is not None and body.startswith("env:"):
            return f"${{{body[4:]}}}"
        if client == "cursor" and body == "userHome":
            return str(home)
        return "$" + match.group(0)

    return _CLIENT_REFERENCE.sub(one, value)


def _secret_names(servers: Mapping[str, Any]) -> list[str]:
    """``server env NAME`` for every literal (non-``${VAR}``) secret value in ``servers``."""
    found: list[str] = []
    for key, entry in servers.items():
        if not isinstance(entry, dict):
            continue
        for section in sorted(_SECRET_MAPS):
            values = cast("dict[str, Any]", entry).get(section)
            if isinstance(values, dict):
                for name, value in cast("dict[str, object]", values).items():
                    if _mask_one(value) == MASK and value not in ("", None):
                        found.append(f"{key} {section} {name}")
    return found


# ------------------------------------------------------------------ files


def _backup(path: Path) -> Path:
    """Copy ``path`` to ``<name>.<timestamp>.bak`` beside it (mode and times kept)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.name}.{stamp}.bak")
    counter = 1
    while candidate.exists():
        counter += 1
        candidate = path.with_name(f"{path.name}.{stamp}-{counter}.bak")
    shutil.copy2(path, candidate)
    return candidate


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` in one rename; a new file is private (0600), an old one keeps its mode.

    A symlinked file (dotfile managers) is written through the link, which stays a link.
    """
    target = path.resolve() if path.is_symlink() else path
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        if target.exists():
            shutil.copymode(target, temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# ------------------------------------------------------------- validation


class _LenientEnv(dict[str, str]):
    """The environment, with every unset variable read as empty: checks structure, not the shell."""

    def __missing__(self, key: str) -> str:
        return ""

    def __contains__(self, key: object) -> bool:
        return True


def _validate_config(path: Path, shown_as: Path, warnings: list[str]) -> None:
    """Load ``path`` as the orchestrator will; unset ``${VAR}``s are warnings, not errors.

    The client starts the orchestrator with its own environment (and the entry's ``env``), so a
    variable missing from this shell may well be set there.

    Raises:
        ConfigError: The file is invalid whatever the environment (named as ``shown_as``).
    """
    try:
        load_config(path)
    except ConfigError as strict:
        try:
            load_config(path, _LenientEnv(os.environ))
        except ConfigError as lenient:
            raise ConfigError(str(shown_as), lenient.problems) from None
        warnings += [f"{shown_as}: {problem}" for problem in strict.problems]


def _entry_problems(servers: Mapping[str, Any]) -> list[str]:
    """Why these ``mcpServers`` entries would not load as orchestrator servers (keys, never values)."""
    try:
        OrchestratorConfig.model_validate({"servers": dict(servers)})
    except ValidationError as exc:
        problems: list[str] = []
        for error in exc.errors(include_input=False, include_url=False):
            parts = [str(part) for part in error["loc"][1:]]  # drop "servers"
            if len(parts) > 1 and parts[1] in ("stdio", "http"):
                del parts[1]  # the union's tag, not a key of the file
            problems.append(f"{'.'.join(parts)}: {error['msg']}")
        return list(dict.fromkeys(problems))
    return []


def _check_interpreter(python: str) -> str | None:
    """Why ``python -m orchestrator`` would fail when started from elsewhere, or ``None``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    try:
        done = subprocess.run(
            [python, "-c", "import orchestrator"],
            cwd=Path(python).anchor or "/",
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {python}: {exc}"
    if done.returncode != 0:
        return (
            f"{python} cannot import the orchestrator outside this folder; install the package "
            "(`pip install mcp-orchestrator`, or `pip install -e .` in a checkout) and run this command again"
        )
    return None


# ------------------------------------------------------------- the command


@dataclass(frozen=True, slots=True)
class _Options:
    client: ClientName | None
    from_client: ClientName | None
    config: str | None
    name: str
    config_path: str | None
    dry_run: bool
    force: bool

    @classmethod
    def of(cls, args: argparse.Namespace) -> _Options:
        return cls(
            client=args.client,
            from_client=args.from_client,
            config=args.config,
            name=args.name,
            config_path=args.config_path,
            dry_run=bool(args.dry_run),
            force=bool(args.force),
        )


@dataclass(slots=True)
class _Output:
    """Where messages go: stdout, except in a dry run, whose stdout is the resulting document."""

    dry_run: bool

    @property
    def stream(self) -> TextIO:
        return sys.stderr if self.dry_run else sys.stdout

    def say(self, message: str) -> None:
        print(message, file=self.stream)

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    def document(self, text: str) -> None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


@dataclass(frozen=True, slots=True)
class _Change:
    """A planned edit of a client's config file."""

    file: _JsonFile
    document: dict[str, Any]
    action: Literal["created", "added", "updated", "unchanged"]

    @property
    def text(self) -> str:
        return self.file.style.dump(self.document)


def _plan_entry(file: _JsonFile, name: str, entry: dict[str, Any], drop: tuple[str, ...] = ()) -> _Change:
    """The client's document with ``entry`` under ``name``, and ``drop``ped servers removed.

    Keys a user added to an existing entry (``env``, say) are kept; ours are updated.
    """
    servers = {key: value for key, value in file.servers.items() if key not in drop}
    existing = servers.get(name)
    if isinstance(existing, dict):
        merged = {**cast("dict[str, Any]", existing), **entry}
        action: Literal["added", "updated", "unchanged"] = "unchanged" if merged == existing else "updated"
    else:
        merged, action = entry, "added"
    servers[name] = merged
    if len(servers) != len(file.servers) + (action == "added"):
        action = "updated"  # servers were dropped: the file changes even if our entry does not
    elif action == "unchanged":
        return _Change(file, file.data, "unchanged")
    return _Change(file, file.with_servers(servers), action if file.existed else "created")


def _apply(change: _Change) -> Path | None:
    """Write the change (after a backup of the old file); return the backup's path."""
    backup = _backup(change.file.path) if change.file.existed else None
    _write_atomically(change.file.path, change.text)
    return backup


def _resolve_client_path(options: _Options, client: ClientName) -> Path:
    return Path(options.config_path).expanduser().absolute() if options.config_path else client_config_path(client)


def _install(options: _Options, client: ClientName, out: _Output) -> int:
    config_path = find_config_path(Path(options.config) if options.config else None).resolve()
    warnings: list[str] = []
    _validate_config(config_path, config_path, warnings)
    python = os.path.abspath(sys.executable)
    if (problem := _check_interpreter(python)) is not None:
        if not options.dry_run:
            raise ConfigError(python, [problem])
        warnings.append(problem)
    file = _JsonFile.read(_resolve_client_path(options, client))
    _refuse_same_file(config_path, file.path)
    change = _plan_entry(file, options.name, meta_entry(client, config_path, python))
    for warning in warnings:
        out.warn(warning)
    return _finish(options, client, change, out, config_path)


def _refuse_same_file(config: Path, client_file: Path) -> None:
    """Refuse to make a client's own file the orchestrator's config: it would start itself.

    Raises:
        ConfigError: Both paths name the same file.
    """
    if config.resolve() == client_file.resolve():
        raise ConfigError(str(config), ["this is the client's own file; use --from to copy its servers out of it"])


def _finish(options: _Options, client: ClientName, change: _Change, out: _Output, config_path: Path) -> int:
    title, path, name = _TITLES[client], change.file.path, options.name
    verbs = {"created": ("create", "created"), "added": ("add", "added"), "updated": ("update", "updated")}
    if change.action == "unchanged":
        out.say(f"{title}: nothing to do, {name!r} in {path} already serves {config_path}")
        if options.dry_run:
            out.document(change.file.style.dump(mask_secrets(change.document)))
        return 0
    what = f"{path} with the entry {name!r}" if change.action == "created" else f"the entry {name!r} in {path}"
    if options.dry_run:
        out.document(change.file.style.dump(mask_secrets(change.document)))
        out.say(f"dry run: would {verbs[change.action][0]} {what}; nothing written (env and headers values: {MASK})")
        return 0
    backup = _apply(change)
    saved = f" (backup: {backup})" if backup is not None else ""
    out.say(f"{title}: {verbs[change.action][1]} {what}{saved}")
    out.say(f"  it runs: {sys.executable} -m orchestrator serve --config {config_path}")
    out.say(f"Next: {_NEXT_STEP[client]}")
    return 0


# ------------------------------------------------------------------ --from


def _server_key(name: str, taken: set[str]) -> str:
    """A valid orchestrator server key for a client's entry name, distinct from ``taken``."""
    key = _SERVER_KEY_UNSAFE.sub("-", name).strip("-_.")[:64] or "server"
    if not key[0].isalnum():
        key = f"s{key}"[:64]
    candidate, counter = key, 1
    while candidate in taken:
        counter += 1
        candidate = f"{key[: 64 - len(str(counter)) - 1]}-{counter}"
    return candidate


@dataclass(frozen=True, slots=True)
class _Target:
    """The orchestrator config ``--from`` writes: its text (if any), data, and server-map key."""

    path: Path
    text: str | None
    data: dict[str, Any]
    servers_key: str

    @classmethod
    def read(cls, path: Path) -> _Target:
        """Read the file if it exists.

        Raises:
            ConfigError: Wrong suffix, unreadable, not a mapping, or its server map is not a mapping.
        """
        if path.suffix.lower() not in _WRITABLE_SUFFIXES:
            raise ConfigError(str(path), ["--from writes .yaml, .yml or .json files; name one with -c"])
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path, None, {}, "servers")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(str(path), [f"cannot read the file: {type(exc).__name__}"]) from exc
        try:
            data: object = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError):
            raise ConfigError(str(path), ["not valid YAML/JSON; run `orchestrator doctor -c` on it"]) from None
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ConfigError(str(path), ["expected a mapping at the top level"])
        document = cast("dict[str, Any]", data)
        key = "mcpServers" if "mcpServers" in document and "servers" not in document else "servers"
        if not isinstance(document.get(key) or {}, dict):
            raise ConfigError(str(path), [f"{key}: expected a mapping of servers"])
        return cls(path, text, document, key)

    @property
    def servers(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self.data.get(self.servers_key) or {})

    def render(self, servers: dict[str, Any], notes: list[str]) -> str:
        """The file with ``servers`` as its server map; existing text is kept where only entries are added."""
        document = {**self.data, self.servers_key: servers}
        if self.path.suffix.lower() == ".json":
            style = _JsonStyle.of(self.text) if self.text is not None else _JsonStyle()
            return style.dump(document)
        if self.text is None:
            return _NEW_FILE_HEADER + _yaml_dump(document)
        added = {k: v for k, v in servers.items() if k not in self.servers}
        if all(self.servers.get(k) == v for k, v in servers.items() if k in self.servers):
            kept = _yaml_insert(self.text, self.servers_key, added)
            if kept is not None and yaml.safe_load(kept) == document:
                return kept
        notes.append(f"{self.path} was rewritten as a whole: its comments were not kept (see the backup)")
        return _yaml_dump(document)


_NEW_FILE_HEADER = (
    "# mcp-orchestrator configuration (`orchestrator install --from` wrote it; edit freely).\n"
    "# Servers: `command` + `args` (+ `env`, `cwd`) for stdio, `url` (+ `headers`) for HTTP.\n"
    "# Check it with `orchestrator doctor -c <this file>`.\n"
)


def _yaml_dump(data: object) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)


def _last_line(node: yaml.Node) -> int:
    """0-based index of the last line holding ``node``'s content (trailing comments excluded)."""
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.value and not node.flow_style:
        last = cast("list[Any]", node.value)[-1]
        if isinstance(node, yaml.MappingNode):
            key, value = cast("tuple[yaml.Node, yaml.Node]", last)
            empty = isinstance(value, yaml.ScalarNode) and value.start_mark.index == value.end_mark.index
            return _last_line(key if empty else value)
        return _last_line(cast("yaml.Node", last))
    end = node.end_mark
    return end.line - 1 if end.column == 0 and end.line > node.start_mark.line else end.line


def _yaml_insert(text: str, servers_key: str, added: dict[str, Any]) -> str | None:
    """``text`` with ``added`` appended to its block-style server map, all else byte for byte; else ``None``."""
    if not added:
        return text
    try:
        root = yaml.SafeLoader(text).get_single_node()
    except yaml.YAMLError:
        return None
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        return None
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    pairs = cast("list[tuple[yaml.Node, yaml.Node]]", root.value)
    found = [value for key, value in pairs if isinstance(key, yaml.ScalarNode) and key.value == servers_key]
    if not found:
        return "".join(lines) + _yaml_dump({servers_key: added})
    servers = found[0]
    if not isinstance(servers, yaml.MappingNode) or servers.flow_style or not servers.value:
        return None
    first_key = cast("list[tuple[yaml.Node, yaml.Node]]", servers.value)[0][0]
    indent = first_key.start_mark.column
    if indent == 0:
        return None
    block = "".join(
        " " * indent + line if line.strip() else line for line in _yaml_dump(added).splitlines(keepends=True)
    )
    at = _last_line(servers) + 1
    return "".join(lines[:at]) + block + "".join(lines[at:])


def _migrate(options: _Options, client: ClientName, out: _Output) -> int:
    title = _TITLES[client]
    file = _JsonFile.read(_resolve_client_path(options, client), must_exist=True)
    target_path = Path(options.config or "orchestrator.yaml").expanduser().absolute()
    _refuse_same_file(target_path, file.path)
    target = _Target.read(target_path)
    ours = tuple(k for k, v in file.servers.items() if k == options.name or _is_meta_entry(v))
    home = _home(os.environ, sys.platform)
    to_import = {k: _translate(v, client, home) for k, v in file.servers.items() if k not in ours}
    if not to_import:
        if target.text is None:
            raise ConfigError(str(file.path), [f"no servers to import, and {target_path} does not exist"])
        out.say(f"{title}: no servers to import from {file.path} (already migrated?)")
        return _install(replace(options, config=str(target_path)), client, out)

    servers = dict(target.servers)
    renamed: list[str] = []
    conflicts: list[str] = []
    already: list[str] = []
    imported: dict[str, Any] = {}
    taken = set(servers)
    for name, entry in to_import.items():
        key = name if _SERVER_KEY.fullmatch(name) else _server_key(name, taken)
        if key != name:
            renamed.append(f"{name!r} -> {key!r}")
        taken.add(key)
        if key not in servers or (servers[key] != entry and options.force):
            imported[key] = entry
        elif servers[key] != entry:
            conflicts.append(key)
        else:
            already.append(key)
    if conflicts:
        raise ConfigError(
            str(target_path),
            [
                f"servers.{key}: already defined differently; rename it in either file, or use --force"
                for key in conflicts
            ],
        )
    if problems := _entry_problems(imported):
        raise ConfigError(str(file.path), [f"mcpServers.{p}" for p in problems])
    servers.update(imported)
    notes: list[str] = []
    new_text = target.render(servers, notes)

    warnings: list[str] = []
    fd, scratch = tempfile.mkstemp(dir=target_path.parent, prefix=f".{target_path.name}.", suffix=target_path.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            stream.write(new_text)
        _validate_config(Path(scratch), target_path, warnings)
    finally:
        Path(scratch).unlink(missing_ok=True)
    change = _plan_entry(file, options.name, meta_entry(client, target_path), drop=tuple(to_import))

    for warning in warnings:
        out.warn(warning)
    if renamed:
        out.warn(f"server keys changed to fit [A-Za-z0-9_.-]: {', '.join(renamed)}")
    if options.dry_run:
        out.say(f"dry run: would add to {target_path}:")
        out.document(_yaml_dump({target.servers_key: mask_secrets(imported)}))
        out.say(f"dry run: and {file.path} would become:")
        out.document(file.style.dump(mask_secrets(change.document)))
        out.say(f"nothing written (values under env and headers shown as {MASK})")
        return 0

    target_backup = _backup(target_path) if target.text is not None and new_text != target.text else None
    if target.text != new_text:
        _write_atomically(target_path, new_text)
    for note in notes:
        out.warn(note)
    saved = f" (backup: {target_backup})" if target_backup else ""
    out.say(f"Imported {len(imported)} server(s) from {title} into {target_path}{saved}: {', '.join(imported)}")
    if already:
        out.say(f"  already there, unchanged: {', '.join(already)}")
    _secrets_notice(target_path, imported, out)
    client_backup = _apply(change)
    out.say(f"{title}: replaced them in {file.path} by {options.name!r} (backup: {client_backup})")
    out.say(f"Check them all with: orchestrator doctor -c {_quoted(target_path)}")
    out.say(f"Next: {_NEXT_STEP[client]}")
    return 0


def _secrets_notice(path: Path, imported: Mapping[str, Any], out: _Output) -> None:
    names = _secret_names(imported)
    if not names:
        return
    out.warn(
        f"{path} now holds the secret values of: {'; '.join(names)} (copied as they were; not shown). "
        "Keep the file private, or replace each value by a ${VAR} reference and set VAR in the environment "
        "the client starts the orchestrator with (the entry's \"env\" in the client's config)."
    )
    try:
        loose = path.stat().st_mode & 0o077
    except OSError:
        return
    if loose:
        out.warn(f"{path} is readable by other users; consider `chmod 600 {_quoted(path)}`")


def _quoted(path: Path) -> str:
    text = str(path)
    return f'"{text}"' if re.search(r"\s", text) else text


# ------------------------------------------------------------------- entry


def add_parser(subparsers: SubcommandAdder) -> None:
    """Register ``orchestrator install`` with the CLI's subcommands."""
    parser = subparsers.add_parser(
        "install",
        help="register the orchestrator in Claude Desktop, Cursor or Claude Code (or migrate into it)",
        description=(
            "Write one MCP server entry that runs `orchestrator serve` on your config into a client's config "
            "file (backed up first; other entries kept). With --from, first import the servers that client "
            "already lists into orchestrator.yaml, then leave only the orchestrator's entry there."
        ),
    )
    parser.add_argument("client", nargs="?", choices=CLIENTS, help="the client to register in")
    parser.add_argument(
        "--from",
        dest="from_client",
        choices=CLIENTS,
        metavar="CLIENT",
        help="import this client's servers into the orchestrator config, then register in it",
    )
    parser.add_argument(
        "-c",
        "--config",
        help=(
            "config file to serve (default: $ORCHESTRATOR_CONFIG, then ./orchestrator.yaml); "
            "with --from, the file to write or merge into (default ./orchestrator.yaml)"
        ),
    )
    parser.add_argument("--name", default=DEFAULT_ENTRY_NAME, help=f"entry name (default {DEFAULT_ENTRY_NAME})")
    parser.add_argument(
        "--config-path", metavar="PATH", help="the client's config file (default: its standard location)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the result instead of writing anything")
    parser.add_argument(
        "--force", action="store_true", help="with --from: replace servers of the same name in the orchestrator config"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``orchestrator install`` as parsed by ``add_parser``'s parser.

    Returns:
        0 when done (or nothing needed doing), 2 when refused: bad arguments, an invalid file, a
        conflicting server, an interpreter that cannot run the orchestrator.
    """
    options = _Options.of(args)
    out = _Output(options.dry_run)
    if options.client and options.from_client and options.client != options.from_client:
        print("error: --from migrates a client into itself; drop the positional client", file=sys.stderr)
        return 2
    if not options.name.strip():
        print("error: --name must not be empty", file=sys.stderr)
        return 2
    try:
        if options.from_client is not None:
            return _migrate(options, options.from_client, out)
        if options.client is None:
            print(f"error: name a client ({', '.join(CLIENTS)}) or --from CLIENT", file=sys.stderr)
            return 2
        return _install(options, options.client, out)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if any("no configuration file found" in p for p in exc.problems):
            print(
                "hint: write an orchestrator.yaml (see docs/first-minute.md), or import the servers a client "
                "already has: orchestrator install --from claude-desktop",
                file=sys.stderr,
            )
        return 2
    except OrchestratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
