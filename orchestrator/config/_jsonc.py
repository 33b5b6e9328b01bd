"""JSON as editors write it: ``//`` and ``/* */`` comments and trailing commas, with the line of every key.

VS Code's ``mcp.json`` is "JSON with comments", so a file accepted verbatim must allow them.
Pure module: no I/O. Comments are blanked (newlines kept), so the standard parser's line and
column numbers still point into the original text, and so do the key lines found here.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from orchestrator._locations import KeyPath

__all__ = ["key_lines", "strip_comments"]

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+')


def strip_comments(text: str) -> str:
    """``text`` with comments and trailing commas blanked out, same length and same lines.

    Text inside strings is kept as it is, so ``"http://x"`` stays a URL. An unterminated string
    or block comment is left for the JSON parser to report.
    """
    out = list(text)
    index, length = 0, len(text)
    last_comma: int | None = None
    while index < length:
        char = text[index]
        if char == '"':
            index = _string_end(text, index)
            last_comma = None
            continue
        if text.startswith("//", index):
            end = text.find("\n", index)
            end = length if end < 0 else end
            _blank(out, index, end)
            index = end
            continue
        if text.startswith("/*", index):
            end = text.find("*/", index + 2)
            if end < 0:
                break
            _blank(out, index, end + 2)
            index = end + 2
            continue
        if char in "]}" and last_comma is not None:
            out[last_comma] = " "
        if char == ",":
            last_comma = index
        elif not char.isspace():
            last_comma = None
        index += 1
    return "".join(out)


def key_lines(text: str) -> dict[KeyPath, int]:
    """1-based line of every mapping key and list item of a valid JSON text (comments already blanked)."""
    lines: dict[KeyPath, int] = {}
    tokens = _tokens(text)
    first = next(tokens, None)
    if first is not None:
        _value(first, tokens, (), lines)
    return lines


def _blank(out: list[str], start: int, end: int) -> None:
    for position in range(start, end):
        if out[position] != "\n":
            out[position] = " "


def _string_end(text: str, start: int) -> int:
    index = start + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == '"':
            return index + 1
        index += 1
    return len(text)


def _tokens(text: str) -> Iterator[tuple[str, int]]:
    line, position = 1, 0
    for match in _TOKEN.finditer(text):
        line += text.count("\n", position, match.start())
        position = match.start()
        yield match.group(0), line


def _value(token: tuple[str, int], tokens: Iterator[tuple[str, int]], path: KeyPath, lines: dict[KeyPath, int]) -> None:
    text = token[0]
    if text == "{":
        for key_token in tokens:
            if key_token[0] == "}":
                return
            if key_token[0] == ",":
                continue
            key = str(json.loads(key_token[0]))
            lines[(*path, key)] = key_token[1]
            next(tokens)  # the colon
            _value(next(tokens), tokens, (*path, key), lines)
    elif text == "[":
        index = 0
        for item in tokens:
            if item[0] == "]":
                return
            if item[0] == ",":
                continue
            lines[(*path, index)] = item[1]
            _value(item, tokens, (*path, index), lines)
            index += 1
