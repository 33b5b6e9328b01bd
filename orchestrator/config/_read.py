"""Read one config file into plain data: YAML, JSON (with comments) or TOML, chosen by the file's suffix.

The only I/O in the package. A file that cannot be parsed becomes ``ConfigError`` with one
problem worded as ``orchestrator._locations`` words every problem (``FILE:LINE: (top level): …``),
without the offending line's text, which might hold a secret.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator._locations import KeyPath, Problem, UnreadableSource, read_text, read_yaml
from orchestrator.config._jsonc import key_lines, strip_comments
from orchestrator.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["SUFFIXES", "Document", "read_document"]

SUFFIXES = (".yaml", ".yml", ".json", ".toml")


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed file.

    Attributes:
        data: Dicts, lists and scalars, as the file wrote them.
        lines: 1-based line of each mapping key and list item (YAML and JSON; empty for TOML).
        problems: Problems found while parsing that do not stop validation (duplicate keys).
    """

    data: object
    lines: dict[KeyPath, int] = field(default_factory=lambda: {})
    problems: list[Problem] = field(default_factory=lambda: [])


def read_document(path: Path, text: str | None = None) -> Document:
    """Read and parse ``path``, or parse ``text`` as if ``path`` held it.

    Raises:
        ConfigError: The file cannot be read, is not UTF-8, has an unsupported suffix or a syntax error.
    """
    suffix = path.suffix.lower()
    try:
        if suffix not in SUFFIXES:
            raise UnreadableSource(f"unsupported file type {suffix or '(none)'!r}; use {', '.join(SUFFIXES)}")
        text = read_text(path) if text is None else text
        if suffix == ".json":
            return _read_json(text)
        if suffix == ".toml":
            return _read_toml(text)
        yaml_document = read_yaml(text)
    except UnreadableSource as exc:
        # Not chained: a parser's exception may hold the whole text, secrets included.
        raise ConfigError(str(path), [exc.problem(str(path))]) from None
    return Document(yaml_document.data, yaml_document.lines, yaml_document.problems)


def _read_json(text: str) -> Document:
    # Comments and trailing commas are allowed, as in VS Code's mcp.json ("JSON with comments").
    plain = strip_comments(text)
    try:
        data: object = json.loads(plain)
    except json.JSONDecodeError as exc:
        raise UnreadableSource(f"invalid JSON at column {exc.colno}: {exc.msg}", exc.lineno) from None
    return Document(data, key_lines(plain))


def _read_toml(text: str) -> Document:
    try:
        return Document(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise UnreadableSource(f"invalid TOML: {exc}") from None
