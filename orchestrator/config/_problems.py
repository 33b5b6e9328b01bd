"""Turn what went wrong into ``key.path: message`` lines; the only place that words config problems.

Pure module: no I/O. It never quotes an input value, so a secret in ``env`` or ``headers``
cannot reach an error message, a log line or a terminal.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from pydantic import AliasChoices, BaseModel, ValidationError

from orchestrator.config._models import SERVER_KIND_TAGS

__all__ = ["KeyPath", "LineMap", "Problem", "format_key_path", "format_problems", "model_keys", "validation_problems"]

KeyPath = tuple[str | int, ...]
"""Where a value sits in the file: mapping keys and list indexes from the top."""

LineMap = Mapping[KeyPath, int]
"""1-based line of each mapping key, for formats that can tell (YAML)."""

Problem = tuple[KeyPath, str]
"""Where a problem is, and what it is; worded for a user, without any value from the file."""

_MESSAGE_PREFIXES = ("Value error, ", "Assertion failed, ")
_SERVER_MAPS = frozenset({"servers", "mcpServers"})


def format_key_path(path: KeyPath) -> str:
    """Spell a key path the way a user reads it: ``servers.docs.args[2]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text or "(top level)"


def format_problems(problems: Iterable[Problem], lines: LineMap) -> list[str]:
    """``key.path (line N): message`` for each problem, in file order where lines are known."""
    located = [(_nearest_line(path, lines), path, message) for path, message in problems]
    located.sort(key=lambda item: item[0] if item[0] is not None else float("inf"))
    return [
        f"{format_key_path(path)}{f' (line {line})' if line is not None else ''}: {message}"
        for line, path, message in located
    ]


def validation_problems(
    error: ValidationError,
    keys_at: Callable[[KeyPath], Iterable[str]],
    skip: Iterable[KeyPath] = (),
) -> Iterator[Problem]:
    """Word each pydantic error as a problem, without its input value.

    Args:
        error: What pydantic rejected.
        keys_at: The keys accepted inside a given mapping, to suggest a fix for a typo.
        skip: Paths already reported (e.g. a missing variable); errors at or below them are dropped.
    """
    skipped = tuple(skip)
    for details in error.errors(include_url=False):
        path = _key_path(details["loc"])
        if any(path[: len(prefix)] == prefix for prefix in skipped):
            continue
        yield path, _message(details["type"], details["msg"], details.get("input"), path, keys_at)


def model_keys(*models: type[BaseModel]) -> set[str]:
    """The field names and aliases (``AliasChoices`` included) of ``models``."""
    keys: set[str] = set()
    for model in models:
        for field_name, info in model.model_fields.items():
            keys |= {field_name, *([info.alias] if info.alias else [])}
            if isinstance(info.validation_alias, AliasChoices):
                keys |= {choice for choice in info.validation_alias.choices if isinstance(choice, str)}
    return keys


def _key_path(loc: tuple[str | int, ...]) -> KeyPath:
    # pydantic adds the union tag after a server key ('servers', 'docs', 'http', 'url') and
    # '[key]' when a dict key itself is invalid; neither is something the user wrote.
    parts = [part for part in loc if part != "[key]"]
    if len(parts) >= 3 and parts[0] in _SERVER_MAPS and parts[2] in SERVER_KIND_TAGS:
        del parts[2]
    return tuple(parts)


def _message(kind: str, message: str, value: Any, path: KeyPath, keys_at: Callable[[KeyPath], Iterable[str]]) -> str:
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else ""
        known_here = keys_at(path[:-1])
        if key in known_here:
            # Known, but to the other transport (server entries): `headers` on a stdio server.
            return "not a key of this kind of server (stdio servers have 'command', HTTP servers 'url')"
        # Case-insensitive, so `Command` or `URL` also get their suggestion.
        by_lower = {known.lower(): known for known in sorted(known_here)}
        close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.75)
        return f"unknown key (did you mean {by_lower[close[0]]!r}?)" if close else "unknown key"
    if kind == "missing":
        return "required key is missing"
    for prefix in _MESSAGE_PREFIXES:
        message = message.removeprefix(prefix)
    # Our own validators may quote what they rejected (a duration such as '5q'); anything
    # longer than a short scalar, or anything under env/headers, is blanked as a possible secret.
    secret_place = "env" in path or "headers" in path
    if isinstance(value, str) and value and value in message and (len(value) > 24 or secret_place):
        message = message.replace(repr(value), "the value").replace(value, "***")
    return message


def _nearest_line(path: KeyPath, lines: LineMap) -> int | None:
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None
