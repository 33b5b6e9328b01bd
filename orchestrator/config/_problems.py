"""Word what pydantic rejected in a config file as problems: the only place that words them.

Pure module: no I/O. It never quotes an input value, so a secret in ``env`` or ``headers``
cannot reach an error message, a log line or a terminal. Where a problem is, and how a located
problem is printed, is ``orchestrator._locations``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, BaseModel, ValidationError

from orchestrator._locations import MISSING_KEY, KeyPath, Problem, unknown_key, validator_message
from orchestrator._masking import SECRET_MAPS, SecretMasker
from orchestrator.config._models import SERVER_KIND_TAGS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = ["model_keys", "validation_problems"]

_SERVER_MAPS = frozenset({"servers", "mcpServers"})


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
        return unknown_key(key, known_here)
    if kind == "missing":
        return MISSING_KEY
    message = validator_message(message)
    # Our own validators may quote what they rejected (a duration such as '5q'); anything
    # longer than a short scalar, or anything under env/headers, is blanked as a possible secret.
    secret_place = not SECRET_MAPS.isdisjoint(path)
    if isinstance(value, str) and value and value in message and (len(value) > 24 or secret_place):
        message = SecretMasker((value,), min_length=1).mask(message.replace(repr(value), "the value"))
    return message
