"""Read one config file into plain data: YAML, JSON (with comments) or TOML, chosen by the file's suffix.

The only I/O in the package. Syntax errors become ``ConfigError`` with a line number and
without the offending line's text, which might hold a secret.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import yaml

from orchestrator.config._jsonc import key_lines, strip_comments
from orchestrator.config._problems import KeyPath, Problem
from orchestrator.errors import ConfigError

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
    if suffix not in SUFFIXES:
        raise ConfigError(str(path), [f"unsupported file type {suffix or '(none)'!r}; use {', '.join(SUFFIXES)}"])
    try:
        text = path.read_text(encoding="utf-8-sig") if text is None else text
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [f"not UTF-8 text (bad byte at offset {exc.start})"]) from exc
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror or type(exc).__name__}"]) from exc
    if suffix == ".json":
        return _read_json(path, text)
    if suffix == ".toml":
        return _read_toml(path, text)
    return _read_yaml(path, text)


def _read_json(path: Path, text: str) -> Document:
    # Comments and trailing commas are allowed, as in VS Code's mcp.json ("JSON with comments").
    plain = strip_comments(text)
    try:
        data: object = json.loads(plain)
    except json.JSONDecodeError as exc:
        # Not chained: the decoder's exception holds the whole text, secrets included.
        raise ConfigError(str(path), [f"line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}"]) from None
    return Document(data, key_lines(plain))


def _read_toml(path: Path, text: str) -> Document:
    try:
        return Document(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"invalid TOML: {exc}"]) from exc


def _read_yaml(path: Path, text: str) -> Document:
    # Parsed twice: once into nodes, which know their lines, once into data. Config files are small.
    try:
        node = yaml.SafeLoader(text).get_single_node()
        data: object = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(str(path), [_yaml_problem(exc)]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"invalid YAML: {type(exc).__name__}"]) from exc
    document = Document(data)
    if node is not None:
        _record_lines(node, (), document)
    return document


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    # str(exc) would include a snippet of the offending line; report only where and what.
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    what = " ".join(part for part in (exc.context, exc.problem) if part)
    return f"{where}invalid YAML: {what or 'syntax error'}"


def _record_lines(node: yaml.Node, path: KeyPath, document: Document) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in cast("list[tuple[yaml.Node, yaml.Node]]", node.value):
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = cast("str", key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                document.problems.append(((*path, key), f"duplicate key (first on line {seen[key]})"))
            seen[key] = line
            document.lines[(*path, key)] = line
            _record_lines(value_node, (*path, key), document)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(cast("list[yaml.Node]", node.value)):
            document.lines[(*path, index)] = item.start_mark.line + 1
            _record_lines(item, (*path, index), document)
