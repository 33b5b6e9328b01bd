"""MCP clients' config files: where each one is, and editing its JSON in place.

Owns where Claude Desktop, Cursor and Claude Code keep their user-wide MCP server list, per OS;
reading that file (a missing or empty one reads as ``{}``); learning how it was written (indent,
separators, line endings, final newline, BOM, ASCII escapes) so a rewrite changes only what it
must; planning an edit of its ``mcpServers`` that keeps the other entries, their order and the
keys a user added; a timestamped backup; an atomic write that keeps the file's mode and writes
through a symlink; and masking the values under ``env`` and ``headers`` in what is shown.

Does not: decide what the orchestrator's own entry says, validate entries as orchestrator
servers, or print anything (``_install`` does all three). ``backup`` and ``write_atomically``
work on any text file; ``_install`` also uses them for the orchestrator config ``--from`` writes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from orchestrator._files import write_atomically
from orchestrator._locations import config_error
from orchestrator._masking import MASK, SECRET_MAPS
from orchestrator.config import home_dir

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "CLIENTS",
    "Change",
    "ClientName",
    "JsonFile",
    "JsonStyle",
    "apply_change",
    "backup",
    "client_config_path",
    "home_dir",
    "mask_secrets",
    "plan_entry",
    "secret_names",
    "write_atomically",
]

ClientName = Literal["claude-desktop", "cursor", "claude-code"]
CLIENTS: tuple[ClientName, ...] = get_args(ClientName)
_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$")


# --------------------------------------------------------------- locations


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
    home = home_dir(env, platform)
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


# ------------------------------------------------------------ JSON editing


@dataclass(frozen=True, slots=True)
class JsonStyle:
    """How a JSON file was written, so a rewrite changes only what it must."""

    indent: str | None = "  "
    item_separator: str = ","
    key_separator: str = ": "
    newline: str = "\n"
    final_newline: bool = True
    bom: bool = False
    ensure_ascii: bool = False

    @classmethod
    def of(cls, raw: str) -> JsonStyle:
        """The style ``raw`` was written in; an empty or ``{}`` text gets the default."""
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
        """``data`` as JSON text in this style."""
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
class JsonFile:
    """A client's config file as read: its data, its style, and whether it existed."""

    path: Path
    data: dict[str, Any]
    style: JsonStyle
    existed: bool

    @classmethod
    def read(cls, path: Path, *, must_exist: bool = False) -> JsonFile:
        """Read ``path``; a missing (or empty) file reads as ``{}``.

        Raises:
            ConfigError: The file cannot be read, is not a JSON object, or its ``mcpServers`` is
                not an object; or it is missing and ``must_exist``.
        """
        name = str(path)
        try:
            raw = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            if must_exist:
                raise config_error(name, "no such file; is the client installed? (--config-path names it)") from None
            return cls(path, {}, JsonStyle(), existed=False)
        except UnicodeDecodeError as exc:
            raise config_error(name, f"not UTF-8 text (bad byte at offset {exc.start})") from exc
        except OSError as exc:
            raise config_error(name, f"cannot read the file: {exc.strerror or type(exc).__name__}") from exc
        style = JsonStyle.of(raw)
        if not raw.strip().removeprefix("\ufeff").strip():
            return cls(path, {}, style, existed=True)
        try:
            data: object = json.loads(raw.removeprefix("\ufeff"))
        except json.JSONDecodeError as exc:
            # Not chained: the decoder's exception holds the whole text, secrets included.
            message = f"invalid JSON at column {exc.colno}: {exc.msg}; fix it, or restore a backup"
            raise config_error(name, message, line=exc.lineno) from None
        if not isinstance(data, dict):
            raise config_error(name, f"expected a JSON object, found {type(data).__name__}")
        document = cast("dict[str, Any]", data)
        if not isinstance(document.get("mcpServers", {}), dict):
            raise config_error(name, "expected an object of server entries", path=("mcpServers",))
        return cls(path, document, style, existed=True)

    @property
    def servers(self) -> dict[str, Any]:
        """The ``mcpServers`` object (empty when absent)."""
        return cast("dict[str, Any]", self.data.get("mcpServers", {}))

    def with_servers(self, servers: dict[str, Any]) -> dict[str, Any]:
        """The document with ``mcpServers`` replaced, keeping its position (or appended)."""
        return {**self.data, "mcpServers": servers}


@dataclass(frozen=True, slots=True)
class Change:
    """A planned edit of a client's config file."""

    file: JsonFile
    document: dict[str, Any]
    action: Literal["created", "added", "updated", "unchanged"]

    @property
    def text(self) -> str:
        """The edited document, in the file's own style."""
        return self.file.style.dump(self.document)


def plan_entry(file: JsonFile, name: str, entry: dict[str, Any], drop: tuple[str, ...] = ()) -> Change:
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
        return Change(file, file.data, "unchanged")
    return Change(file, file.with_servers(servers), action if file.existed else "created")


def apply_change(change: Change) -> Path | None:
    """Write the change (after a backup of the old file); return the backup's path."""
    saved = backup(change.file.path) if change.file.existed else None
    write_atomically(change.file.path, change.text)
    return saved


# ---------------------------------------------------------------- secrets


def mask_secrets(value: object) -> object:
    """``value`` with every value under an ``env`` or ``headers`` mapping replaced by ``***``.

    A value that is only a ``${VAR}`` reference is kept: it is not a secret, and shows where one comes from.
    """
    if isinstance(value, dict):
        items = cast("dict[str, object]", value).items()
        return {
            key: {name: _mask_one(v) for name, v in cast("dict[str, object]", item).items()}
            if key in SECRET_MAPS and isinstance(item, dict)
            else mask_secrets(item)
            for key, item in items
        }
    if isinstance(value, list):
        return [mask_secrets(item) for item in cast("list[object]", value)]
    return value


def _mask_one(value: object) -> object:
    return value if isinstance(value, str) and _REFERENCE.match(value) else MASK


def secret_names(servers: Mapping[str, Any]) -> list[str]:
    """``server env NAME`` for every literal (non-``${VAR}``) secret value in ``servers``."""
    found: list[str] = []
    for key, entry in servers.items():
        if not isinstance(entry, dict):
            continue
        for section in sorted(SECRET_MAPS):
            values = cast("dict[str, Any]", entry).get(section)
            if isinstance(values, dict):
                for name, value in cast("dict[str, object]", values).items():
                    if _mask_one(value) == MASK and value not in ("", None):
                        found.append(f"{key} {section} {name}")
    return found


# ------------------------------------------------------------------ files


def backup(path: Path) -> Path:
    """Copy ``path`` to ``<name>.<timestamp>.bak`` beside it (mode and times kept)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.name}.{stamp}.bak")
    counter = 1
    while candidate.exists():
        counter += 1
        candidate = path.with_name(f"{path.name}.{stamp}-{counter}.bak")
    shutil.copy2(path, candidate)
    return candidate
