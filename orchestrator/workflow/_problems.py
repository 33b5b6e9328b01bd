"""Word workflow problems as ``path:line: key.path: message``; the one place that formats them.

Pure module: no I/O. A problem is found as (key path, message) by whoever knows what is
wrong; the line comes from the map the loader recorded, falling back to the nearest
enclosing key that has one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from orchestrator.workflow._spec import KeyPath

__all__ = ["LineMap", "Problem", "format_key_path", "format_problems"]

LineMap = Mapping[KeyPath, int]
"""1-based line of each mapping key and list item."""

Problem = tuple[KeyPath, str]
"""Where a problem is, and what it is."""


def format_key_path(path: KeyPath) -> str:
    """Spell a key path as a user reads it: ``steps.fetch.needs[1]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text or "(top level)"


def format_problems(path: str, problems: Iterable[Problem], lines: LineMap) -> list[str]:
    """``path:line: key.path: message`` per problem, in file order where lines are known; duplicates dropped."""
    located: list[tuple[int | None, KeyPath, str]] = []
    seen: set[Problem] = set()
    for key_path, message in problems:
        if (key_path, message) not in seen:
            seen.add((key_path, message))
            located.append((_nearest_line(key_path, lines), key_path, message))
    located.sort(key=lambda item: item[0] if item[0] is not None else float("inf"))
    return [
        f"{path}{f':{line}' if line is not None else ''}: {format_key_path(key_path)}: {message}"
        for line, key_path, message in located
    ]


def _nearest_line(path: KeyPath, lines: LineMap) -> int | None:
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None
