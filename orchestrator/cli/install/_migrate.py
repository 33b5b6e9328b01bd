"""``install --from``'s import: a client's server entries made into servers of an orchestrator config.

Owns merging the imported entries with the config's own (renamed, already there,
conflicting); checking them as orchestrator servers; reading the target config (YAML or
JSON); and rendering it with the servers added: appended to a block-style YAML server map with all
else kept byte for byte, so its comments survive, and the whole file rewritten only when that
cannot be done.

Translating a client's ``${...}`` references into what they meant in that client, and fitting
entry names to server keys, are the config layer's (``orchestrator.config``), which reads client
files with ``-c`` too.

Does not: read or edit the client's file (``_client_files``), write or back up anything, print,
or decide what to do about conflicts and warnings (``_command`` runs the flow: it plans the whole
import and validates the rendered text before anything is replaced).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import yaml
from pydantic import ValidationError

from orchestrator._locations import Problem, config_error, validator_message
from orchestrator.cli.install._client_files import JsonStyle
from orchestrator.config import OrchestratorConfig, server_key_for

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = [
    "ImportPlan",
    "TargetConfig",
    "entry_problems",
    "plan_import",
    "yaml_dump",
]

_SERVER_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_WRITABLE_SUFFIXES = (".yaml", ".yml", ".json")
_NEW_FILE_HEADER = (
    "# mcp-orchestrator configuration (`orchestrator install --from` wrote it; edit freely).\n"
    "# Servers: `command` + `args` (+ `env`, `cwd`) for stdio, `url` (+ `headers`) for HTTP.\n"
    "# Check it with `orchestrator doctor -c <this file>`.\n"
)


# ---------------------------------------------------------------- entries


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What importing a client's entries into a server map would do."""

    imported: dict[str, Any]
    """Entries to add (or, with ``force``, to replace), by server key."""
    renamed: list[str]
    """``'name' -> 'key'`` for each entry whose name is not a valid server key."""
    conflicts: list[str]
    """Keys already defined differently (and not forced)."""
    already: list[str]
    """Keys already defined the same way: nothing to do."""


def plan_import(existing: Mapping[str, Any], entries: Mapping[str, Any], *, force: bool) -> ImportPlan:
    """Merge ``entries`` (a client's, translated) into ``existing`` (the config's server map), on paper.

    Args:
        existing: The orchestrator config's servers.
        entries: The client's entries to import, by the client's names.
        force: Replace an existing server of the same key that differs, rather than report a conflict.
    """
    plan = ImportPlan({}, [], [], [])
    taken = set(existing)
    for name, entry in entries.items():
        key = name if _SERVER_KEY.fullmatch(name) else server_key_for(name, taken)
        if key != name:
            plan.renamed.append(f"{name!r} -> {key!r}")
        taken.add(key)
        if key not in existing or (existing[key] != entry and force):
            plan.imported[key] = entry
        elif existing[key] != entry:
            plan.conflicts.append(key)
        else:
            plan.already.append(key)
    return plan


def entry_problems(servers: Mapping[str, Any]) -> list[Problem]:
    """Why these ``mcpServers`` entries would not load as orchestrator servers (keys, never values).

    Each problem is at ``mcpServers.<entry>...``, as the client's file spells it.
    """
    try:
        OrchestratorConfig.model_validate({"servers": dict(servers)})
    except ValidationError as exc:
        problems: list[Problem] = []
        for error in exc.errors(include_input=False, include_url=False):
            parts = list(error["loc"][1:])  # drop "servers"
            if len(parts) > 1 and parts[1] in ("stdio", "http"):
                del parts[1]  # the union's tag, not a key of the file
            problems.append((("mcpServers", *parts), validator_message(error["msg"])))
        return list(dict.fromkeys(problems))
    return []


# ----------------------------------------------------------------- target


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """The orchestrator config ``--from`` writes: its text (if any), data, and server-map key."""

    path: Path
    text: str | None
    data: dict[str, Any]
    servers_key: str

    @classmethod
    def read(cls, path: Path) -> TargetConfig:
        """Read the file if it exists.

        Raises:
            ConfigError: Wrong suffix, unreadable, not a mapping, or its server map is not a mapping.
        """
        name = str(path)
        if path.suffix.lower() not in _WRITABLE_SUFFIXES:
            raise config_error(name, "--from writes .yaml, .yml or .json files; name one with -c")
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path, None, {}, "servers")
        except (OSError, UnicodeDecodeError) as exc:
            raise config_error(name, f"cannot read the file: {type(exc).__name__}") from exc
        try:
            data: object = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError):
            raise config_error(name, "not valid YAML/JSON; run `orchestrator doctor -c` on it") from None
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise config_error(name, f"expected a mapping, found {type(data).__name__}")
        document = cast("dict[str, Any]", data)
        key = "mcpServers" if "mcpServers" in document and "servers" not in document else "servers"
        if not isinstance(document.get(key) or {}, dict):
            raise config_error(name, "expected a mapping of servers", path=(key,))
        return cls(path, text, document, key)

    @property
    def servers(self) -> dict[str, Any]:
        """The server map (empty when absent)."""
        return cast("dict[str, Any]", self.data.get(self.servers_key) or {})

    def render(self, servers: dict[str, Any], notes: list[str]) -> str:
        """The file with ``servers`` as its server map; existing text is kept where only entries are added."""
        document = {**self.data, self.servers_key: servers}
        if self.path.suffix.lower() == ".json":
            style = JsonStyle.of(self.text) if self.text is not None else JsonStyle()
            return style.dump(document)
        if self.text is None:
            return _NEW_FILE_HEADER + yaml_dump(document)
        added = {k: v for k, v in servers.items() if k not in self.servers}
        if all(self.servers.get(k) == v for k, v in servers.items() if k in self.servers):
            kept = _yaml_insert(self.text, self.servers_key, added)
            if kept is not None and yaml.safe_load(kept) == document:
                return kept
        notes.append(f"{self.path} was rewritten as a whole: its comments were not kept (see the backup)")
        return yaml_dump(document)


def yaml_dump(data: object) -> str:
    """``data`` as block-style YAML, keys in their order."""
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
        return "".join(lines) + yaml_dump({servers_key: added})
    servers = found[0]
    if not isinstance(servers, yaml.MappingNode) or servers.flow_style or not servers.value:
        return None
    first_key = cast("list[tuple[yaml.Node, yaml.Node]]", servers.value)[0][0]
    indent = first_key.start_mark.column
    if indent == 0:
        return None
    block = "".join(
        " " * indent + line if line.strip() else line for line in yaml_dump(added).splitlines(keepends=True)
    )
    at = _last_line(servers) + 1
    return "".join(lines[:at]) + block + "".join(lines[at:])
