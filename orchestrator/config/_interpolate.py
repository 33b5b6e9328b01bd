"""``${VAR}`` and ``${VAR:-default}`` in every string of a parsed config file.

Pure module: the environment arrives as a mapping. ``$${`` is a literal ``${``. As in the
shell, ``${VAR:-default}`` also uses the default when ``VAR`` is set but empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator._locations import KeyPath

__all__ = ["Interpolated", "interpolate"]

_TOKEN = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_REFERENCE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Interpolated:
    """The document with every reference replaced, and the references that could not be.

    Attributes:
        data: The document; an unresolvable reference is replaced by an empty string.
        problems: ``(key path, message)`` for each unresolvable reference.
    """

    data: object
    problems: list[tuple[KeyPath, str]] = field(default_factory=lambda: [])


def interpolate(data: object, env: Mapping[str, str]) -> Interpolated:
    """Replace ``${VAR}`` references in every string value (not keys) of ``data``.

    Args:
        data: A parsed document: dicts, lists and scalars.
        env: Where variables come from.

    Returns:
        The new document and the problems found; ``data`` is not modified.
    """
    problems: list[tuple[KeyPath, str]] = []
    return Interpolated(_walk(data, (), env, problems), problems)


def _walk(value: object, path: KeyPath, env: Mapping[str, str], problems: list[tuple[KeyPath, str]]) -> object:
    if isinstance(value, dict):
        items = cast("dict[str | int, object]", value).items()
        return {key: _walk(item, (*path, key), env, problems) for key, item in items}
    if isinstance(value, list):
        return [_walk(item, (*path, index), env, problems) for index, item in enumerate(cast("list[object]", value))]
    if isinstance(value, str) and "${" in value:
        return _substitute(value, path, env, problems)
    return value


def _substitute(text: str, path: KeyPath, env: Mapping[str, str], problems: list[tuple[KeyPath, str]]) -> str:
    def replace(match: re.Match[str]) -> str:
        token, body = match.group(0), match.group("body")
        if token == "$${":
            return "${"
        if body is None:
            problems.append((path, "unterminated '${'; write '$${' for a literal '${'"))
            return ""
        reference = _REFERENCE.fullmatch(body)
        if reference is None:
            problems.append((path, "invalid reference; write ${NAME} or ${NAME:-default}"))
            return ""
        name, default = reference.group("name"), reference.group("default")
        if default is not None:
            return env.get(name) or default
        if name in env:
            return env[name]
        problems.append((path, f"environment variable {name} is not set (write ${{{name}:-default}} for a default)"))
        return ""

    return _TOKEN.sub(replace, text)
