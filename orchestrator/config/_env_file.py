"""``envFile``: a dotenv-style file of environment variables for one stdio server.

The format is the common subset of dotenv files (and of what VS Code and Cursor read)::

    # a comment
    NAME=value                 # unquoted: trimmed; ' #' starts a comment
    export NAME=value          # 'export ' is allowed and ignored
    NAME="line 1\\nline 2"      # double quotes: \\n \\r \\t \\" \\\\ escapes; may span lines
    NAME='literal $text'       # single quotes: taken as written; may span lines

Nothing is interpolated inside the file. Values are secrets: problems name the line, never the
text on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["EnvFile", "parse_env_file", "read_env_file"]

_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=[ \t]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


@dataclass(frozen=True, slots=True)
class EnvFile:
    """What an env file defines, and what is wrong in it.

    Attributes:
        values: Variable name -> value, in file order (a later line wins).
        problems: ``line N: message`` for each line that could not be read.
    """

    values: dict[str, str] = field(default_factory=lambda: {})
    problems: list[str] = field(default_factory=lambda: [])


def read_env_file(path: Path) -> EnvFile:
    """Read and parse ``path``; an unreadable file is one problem, not an exception."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        return EnvFile(problems=[f"not UTF-8 text (bad byte at offset {exc.start})"])
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror or type(exc).__name__
        return EnvFile(problems=[f"cannot read the file: {reason}"])
    return parse_env_file(text)


def parse_env_file(text: str) -> EnvFile:
    """Parse the text of an env file (see the module docstring for the format)."""
    result = EnvFile()
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index]
        index += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ASSIGNMENT.match(line)
        if match is None:
            result.problems.append(f"line {number}: expected NAME=value")
            continue
        name, rest = match.group(1), line[match.end() :]
        if not rest.startswith(("'", '"')):
            result.values[name] = re.split(r"\s#", rest, maxsplit=1)[0].strip()
            continue
        quote, body, closed_at = rest[0], rest[1:], -1
        while (closed_at := _closing_quote(body, quote)) < 0 and index < len(lines):
            body += "\n" + lines[index]
            index += 1
        if closed_at < 0:
            result.problems.append(f"line {number}: the quoted value is never closed")
            continue
        after = body[closed_at + 1 :].strip()
        if after and not after.startswith("#"):
            result.problems.append(f"line {number}: unexpected text after the closing quote")
            continue
        value = body[:closed_at]
        result.values[name] = _unescape(value) if quote == '"' else value
    return result


def _closing_quote(body: str, quote: str) -> int:
    index = 0
    while index < len(body):
        if quote == '"' and body[index] == "\\":
            index += 2
            continue
        if body[index] == quote:
            return index
        index += 1
    return -1


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), value, flags=re.DOTALL)
