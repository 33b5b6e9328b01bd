"""Which kind of file a config is, and the server entries of an MCP client's own file.

The rule (also in the README, "Configuration"), applied in this order:

1. A ``.yaml``, ``.yml`` or ``.toml`` file is an orchestrator config.
2. A JSON file is an orchestrator config when it has a top-level section only the orchestrator
   uses (``workflows``, ``naming``, ``serve``, ``tracing``), a key within typo distance of one
   (``workflow``, ``tracng``), or both ``servers`` and ``mcpServers``.
3. Otherwise a JSON file with a server map is a client's file: ``projects`` or the name
   ``.claude.json`` makes it Claude Code's user file; ``mcpServers`` an mcpServers file, named
   after the client its name or content points to; ``servers`` with ``inputs``, or in a file
   named ``mcp.json``, a VS Code file.
4. Any other JSON file is an orchestrator config.

An orchestrator config is strict: every unknown key is an error. A client's file is read for its
server entries only, and its other top-level keys are ignored (``doctor`` lists them). Entries
are checked as strictly in both. Pure module: no I/O; the working folder arrives as an argument.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator._locations import KeyPath, Problem
    from orchestrator.config._models import ConfigKind

__all__ = [
    "ORCHESTRATOR_SECTIONS",
    "ClientServers",
    "client_servers",
    "detect_kind",
    "home_dir",
    "server_key_for",
]

ORCHESTRATOR_SECTIONS = ("workflows", "naming", "serve", "tracing")
_SERVER_MAPS = ("mcpServers", "servers")
_NEAR_MISS = 0.8
_CLAUDE_DESKTOP_KEYS = frozenset({"globalShortcut", "preferences", "isUsingBuiltInNodeForMcp"})
_SERVER_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SERVER_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def detect_kind(path: Path, document: Mapping[str, object]) -> ConfigKind:
    """Decide what kind of file ``document`` (read from ``path``) is, by the rule in the module docstring."""
    if path.suffix.lower() != ".json" or _has_orchestrator_section(document):
        return "orchestrator"
    if isinstance(document.get("projects"), dict) or path.name == ".claude.json":
        return "claude-code-user"
    if "mcpServers" in document:
        return _mcp_servers_kind(path, document)
    if "servers" in document and ("inputs" in document or path.name == "mcp.json"):
        return "vscode"
    return "orchestrator"


def _has_orchestrator_section(document: Mapping[str, object]) -> bool:
    if all(key in document for key in _SERVER_MAPS):
        return True
    for key in document:
        if key in _SERVER_MAPS:
            continue
        if difflib.get_close_matches(key.lower(), ORCHESTRATOR_SECTIONS, n=1, cutoff=_NEAR_MISS):
            return True
    return False


def _mcp_servers_kind(path: Path, document: Mapping[str, object]) -> ConfigKind:
    servers = document.get("mcpServers")
    values = cast("dict[str, object]", servers).values() if isinstance(servers, dict) else ()
    entries = [cast("dict[str, object]", entry) for entry in values if isinstance(entry, dict)]
    if path.name == "claude_desktop_config.json" or _CLAUDE_DESKTOP_KEYS & set(document):
        return "claude-desktop"
    if path.name == "mcp_config.json" or any("serverUrl" in e or "disabledTools" in e for e in entries):
        return "windsurf"
    if path.name == ".mcp.json":
        return "claude-code"
    if path.parent.name == ".cursor" or any("envFile" in e for e in entries):
        return "cursor"
    return "mcp-servers"


@dataclass(slots=True)
class ClientServers:
    """The server entries of a client's file, and what was left out.

    Attributes:
        entries: Server key -> the entry as written, in file order.
        places: Server key -> where its entry sits in the file (``("mcpServers", "name")``).
        ignored_keys: Top-level keys of the file that were not read.
        notes: What else a user should know (a renamed entry, the project section used).
        problems: Why the file's server map could not be read.
    """

    entries: dict[str, object] = field(default_factory=lambda: {})
    places: dict[str, KeyPath] = field(default_factory=lambda: {})
    ignored_keys: list[str] = field(default_factory=lambda: [])
    notes: list[str] = field(default_factory=lambda: [])
    problems: list[Problem] = field(default_factory=lambda: [])

    def add(self, place: KeyPath, servers: object) -> None:
        """Add the entries of the server map at ``place``; a later entry of the same name wins."""
        if not isinstance(servers, dict):
            self.problems.append((place, "expected a mapping of server entries"))
            return
        for name, entry in cast("dict[str, object]", servers).items():
            key = next((k for k, where in self.places.items() if where[-1] == name), None)
            if key is None:
                key = server_key_for(name, set(self.entries))
                if key != name:
                    self.notes.append(f"server {name!r} is served as {key!r} (server keys are letters, digits, _ . -)")
            self.entries[key] = entry
            self.places[key] = (*place, name)


def client_servers(kind: ConfigKind, document: Mapping[str, object], cwd: Path) -> ClientServers:
    """The server entries of a client's file of ``kind``.

    Args:
        kind: What ``detect_kind`` decided (not ``"orchestrator"``).
        document: The parsed file.
        cwd: The working folder, which picks the project section of Claude Code's user file.
    """
    found = ClientServers()
    map_key = "servers" if kind == "vscode" else "mcpServers"
    read = {map_key, "inputs"} if kind == "vscode" else {map_key}
    if map_key in document:
        found.add((map_key,), document[map_key])
    if kind == "claude-code-user":
        read.add("projects")
        _add_project(found, document.get("projects"), cwd)
    found.ignored_keys = [key for key in document if key not in read]
    return found


def _add_project(found: ClientServers, projects: object, cwd: Path) -> None:
    """Claude Code's local scope: the project section of the working folder, or of its nearest ancestor."""
    if not isinstance(projects, dict):
        return
    sections = cast("dict[str, object]", projects)
    by_folder = {Path(key): key for key in sections}
    folders = [cwd, *cwd.parents]
    resolved = cwd.resolve()
    folders += [resolved, *resolved.parents] if resolved != cwd else []
    match = next((by_folder[folder] for folder in folders if folder in by_folder), None)
    others = len(sections) - (match is not None)
    if match is None:
        found.notes.append(f"no project section matches {cwd} or a folder above it: only user-scope servers are read")
        return
    found.notes.append(f"project section {match!r} is read (Claude Code's local scope, over the user scope)")
    if others:
        found.notes.append(f"{others} other project section(s) ignored")
    section = sections[match]
    if not isinstance(section, dict):
        found.problems.append((("projects", match), "expected a mapping"))
        return
    servers: object = cast("dict[str, object]", section).get("mcpServers")
    if servers is None:
        return
    names = cast("dict[str, object]", servers) if isinstance(servers, dict) else {}
    for name in names:
        if any(where[-1] == name for where in found.places.values()):
            found.notes.append(f"server {name!r} of the project section overrides the user-scope one")
    found.add(("projects", match, "mcpServers"), cast("object", servers))


def home_dir(env: Mapping[str, str], platform: str) -> Path:
    """The user's home folder as the clients find it: ``HOME`` (``USERPROFILE`` first on Windows)."""
    names = ("USERPROFILE", "HOME") if platform == "win32" else ("HOME",)
    for name in names:
        if value := env.get(name):
            return Path(value)
    return Path.home()


def server_key_for(name: str, taken: set[str]) -> str:
    """A valid server key for a client's entry name: the name itself if it is one, else an adapted one.

    Characters outside ``[A-Za-z0-9_.-]`` become ``-``; the result is distinct from ``taken``.
    """
    if _SERVER_KEY.fullmatch(name) and name not in taken:
        return name
    key = _SERVER_KEY_UNSAFE.sub("-", name).strip("-_.")[:64] or "server"
    if not key[0].isalnum():
        key = f"s{key}"[:64]
    candidate, counter = key, 1
    while candidate in taken:
        counter += 1
        candidate = f"{key[: 64 - len(str(counter)) - 1]}-{counter}"
    return candidate
