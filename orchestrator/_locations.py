"""Where a problem sits in a user's file, and the one way a located problem is worded.

Config files and workflow files report their mistakes alike, one line per problem::

    FILE[:LINE]: KEY.PATH: MESSAGE

    orchestrator.yaml:4: servers.time.arg: unknown key (did you mean 'args'?)
    workflows/digest.yaml:15: steps.details.needs[1]: needs unknown step 'tickts'
    workflows/broken.yaml:7: (top level): invalid YAML at column 3: expected ',' or '}', but got '{'

- ``FILE`` is the file as the user (or the config) named it.
- ``LINE`` is the 1-based line of the key, or of the nearest enclosing key whose line is known;
  it is left out (with its colon) where the format cannot tell (TOML) or nothing in the file is
  at fault (the file cannot be read).
- ``KEY.PATH`` is where in the document: mapping keys joined by dots, list indexes in brackets
  (``servers.docs.args[2]``, ``steps.fetch.with.query``); ``(top level)`` is the document as a whole.
- ``MESSAGE`` says what is wrong and never quotes a value that might be a secret.

A list of problems comes in file order (those without a line last), each once. The format
is kept stable: editors jump to ``FILE:LINE``, and scripts may rely on it.

This module also reads YAML text into data and the line of every key (``read_yaml``): the one
walker of YAML nodes, so config and workflow files count lines alike. Pure module: no I/O
besides ``read_text``; of the orchestrator it imports only ``errors``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final, cast

import yaml

from orchestrator.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "MISSING_KEY",
    "TOP_LEVEL",
    "KeyPath",
    "LineMap",
    "Problem",
    "UnreadableSource",
    "YamlDocument",
    "closest_key",
    "config_error",
    "format_key_path",
    "format_problem",
    "format_problems",
    "nearest_line",
    "read_text",
    "read_yaml",
    "unknown_key",
    "validator_message",
]

KeyPath = tuple[str | int, ...]
"""Where a value sits in a file: mapping keys and list indexes from the top."""

LineMap = Mapping[KeyPath, int]
"""1-based line of each mapping key and list item, for formats that can tell (YAML, JSON)."""

Problem = tuple[KeyPath, str]
"""Where a problem is, and what it is; worded for a user, without any value from the file."""

TOP_LEVEL: Final = "(top level)"
"""How the key path of the document as a whole is spelled."""

MISSING_KEY: Final = "required key is missing"
"""The message of a required key that is not there."""

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_VALIDATOR_PREFIXES = ("Value error, ", "Assertion failed, ")


def format_key_path(path: KeyPath) -> str:
    """Spell a key path the way a user reads it: ``servers.docs.args[2]``, ``(top level)`` when empty."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text or TOP_LEVEL


def format_problem(file: str, line: int | None, path: KeyPath, message: str) -> str:
    """One problem as ``FILE[:LINE]: KEY.PATH: MESSAGE``."""
    where = f"{file}:{line}" if line is not None else file
    return f"{where}: {format_key_path(path)}: {message}"


def format_problems(file: str, problems: Iterable[Problem], lines: LineMap) -> list[str]:
    """Each problem of ``file`` as ``FILE[:LINE]: KEY.PATH: MESSAGE``, in file order, duplicates dropped.

    The sort is stable, so problems on one line keep the order they were found in.
    """
    located: list[tuple[int | None, KeyPath, str]] = []
    seen: set[Problem] = set()
    for path, message in problems:
        if (path, message) not in seen:
            seen.add((path, message))
            located.append((nearest_line(path, lines), path, message))
    located.sort(key=lambda item: item[0] if item[0] is not None else float("inf"))
    return [format_problem(file, line, path, message) for line, path, message in located]


def config_error(file: str, message: str, *, line: int | None = None, path: KeyPath = ()) -> ConfigError:
    """A ``ConfigError`` with one problem of ``file`` (by default about the file as a whole)."""
    return ConfigError(file, [format_problem(file, line, path, message)])


def nearest_line(path: KeyPath, lines: LineMap) -> int | None:
    """The line of ``path``, or of its nearest enclosing key that has one."""
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None


def closest_key(key: str, known: Iterable[str]) -> str | None:
    """The one of ``known`` that ``key`` is most likely a misspelling of (case aside), if any is close."""
    # Case-insensitive, so `Command` or `URL` also find theirs.
    by_lower = {name.lower(): name for name in sorted(known)}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.75)
    return by_lower[close[0]] if close else None


def unknown_key(key: str, known: Iterable[str]) -> str:
    """``unknown key``, with the closest of ``known`` suggested when one is close (case aside)."""
    suggestion = closest_key(key, known)
    return f"unknown key (did you mean {suggestion!r}?)" if suggestion else "unknown key"


def validator_message(message: str) -> str:
    """A pydantic error message without the prefix pydantic puts before a validator's own words."""
    for prefix in _VALIDATOR_PREFIXES:
        message = message.removeprefix(prefix)
    return message


class UnreadableSource(Exception):
    """A file cannot be read as data at all: unreadable, not UTF-8, or a syntax error.

    Never escapes a loader: the config loader raises a ``ConfigError`` with ``problem(file)``,
    the workflow reader reports it as the file's one problem.

    Attributes:
        message: What is wrong, without the text of the offending line (it may hold a secret).
        line: The 1-based line at fault, when known.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def problem(self, file: str) -> str:
        """The problem worded as ``FILE[:LINE]: (top level): MESSAGE``."""
        return format_problem(file, self.line, (), self.message)


def read_text(path: Path) -> str:
    """The text of ``path`` (UTF-8, a byte-order mark allowed).

    Raises:
        UnreadableSource: The file cannot be read, or is not UTF-8.
    """
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableSource(f"not UTF-8 text (bad byte at offset {exc.start})") from exc
    except OSError as exc:
        raise UnreadableSource(f"cannot read the file: {exc.strerror or type(exc).__name__}") from exc


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """YAML text as data, with the line of every key.

    Attributes:
        data: Dicts, lists and JSON scalars, as the text wrote them.
        lines: 1-based line of each mapping key and list item.
        problems: Problems found while reading that do not stop validation (duplicate keys).
    """

    data: object
    lines: dict[KeyPath, int] = field(default_factory=lambda: {})
    problems: list[Problem] = field(default_factory=lambda: [])


class _JsonLoader(yaml.SafeLoader):
    """A safe loader whose scalars are JSON's: ``2024-01-01`` stays a string."""


_JsonLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml(text: str) -> YamlDocument:
    """Parse YAML ``text`` into JSON data (timestamps stay strings) and the line of every key.

    Raises:
        UnreadableSource: The text is not valid YAML; names the line and column, never quotes the line.
    """
    # Parsed once into nodes, which know their lines. The lines are read before the data is built
    # from the same nodes: building merges `<<: *anchor` keys into the nodes themselves.
    loader = _JsonLoader(text)
    document = YamlDocument(None)
    try:
        node = loader.get_single_node()
        if node is not None:
            _record_lines(node, (), document)
            # PyYAML's stubs leave construct_document and dispose untyped.
            data = cast("object", loader.construct_document(node))  # pyright: ignore[reportUnknownMemberType]
            document = replace(document, data=data)
    except yaml.MarkedYAMLError as exc:
        # str(exc) would include a snippet of the offending line; report only where and what.
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(part for part in (exc.context, exc.problem) if part) or "syntax error"
        if mark is None:
            raise UnreadableSource(f"invalid YAML: {what}") from exc
        raise UnreadableSource(f"invalid YAML at column {mark.column + 1}: {what}", mark.line + 1) from exc
    except yaml.YAMLError as exc:
        raise UnreadableSource(f"invalid YAML: {type(exc).__name__}") from exc
    finally:
        loader.dispose()  # pyright: ignore[reportUnknownMemberType]
    return document


def _record_lines(node: yaml.Node, path: KeyPath, document: YamlDocument) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in cast("list[tuple[yaml.Node, yaml.Node]]", node.value):
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key, line = cast("str", key_node.value), key_node.start_mark.line + 1
            if key in seen:
                document.problems.append(((*path, key), f"duplicate key (first on line {seen[key]})"))
            seen[key] = line
            document.lines[(*path, key)] = line
            _record_lines(value_node, (*path, key), document)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(cast("list[yaml.Node]", node.value)):
            document.lines[(*path, index)] = item.start_mark.line + 1
            _record_lines(item, (*path, index), document)
