"""Canonical JSON of definitions: the one form that both pins and the catalogue version hash.

RFC 8785 (JCS) gives each JSON value exactly one byte form, so a hash of it changes when what a
definition says changes, and never with key order or whitespace. ``VOLATILE_META_KEYS`` are the
``_meta`` keys left out of what is hashed. Pure: no I/O.
"""

from __future__ import annotations

import math
from typing import Any, Final, cast

import rfc8785

__all__ = ["VOLATILE_META_KEYS", "canonical_json", "without_volatile_meta"]

VOLATILE_META_KEYS: Final = frozenset({"progressToken", "traceparent", "tracestate", "baggage"})
"""``_meta`` keys left out of a definition's hash.

These are per-message plumbing, not part of what a definition says: a progress token, and W3C
trace context (``traceparent``, ``tracestate``, ``baggage``) that a traced server may stamp on
whatever it sends. They change from one listing to the next without the definition changing,
so hashing them would make every re-list look like a rug pull (and bump the catalogue
version). Every other ``_meta`` key (e.g. an MCP Apps UI resource) is what the server says
about the definition and is hashed.
"""

# RFC 8785 numbers are IEEE 754 doubles: an integer beyond 2**53 has no exact canonical form.
# Such integers (a uint64 ``maximum`` in a schema) are hashed as their decimal text instead of
# being refused; that ``18446744073709551615`` and ``"18446744073709551615"`` then hash alike
# is a loss no model notices. Non-finite floats cannot come from JSON and are hashed by name.
_EXACT_INTEGER = 2**53 - 1


def _canonicalisable(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -_EXACT_INTEGER <= value <= _EXACT_INTEGER else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {str(key): _canonicalisable(item) for key, item in cast("dict[Any, Any]", value).items()}
    if isinstance(value, (list, tuple)):
        return [_canonicalisable(item) for item in cast("list[Any] | tuple[Any, ...]", value)]
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 (JCS) canonical form of a JSON value: sorted keys, no whitespace, UTF-8.

    Raises:
        TypeError: ``value`` holds something JSON has no form for (a set, bytes, an object).
    """
    return rfc8785.dumps(_canonicalisable(value))


def without_volatile_meta(wire: dict[str, Any]) -> dict[str, Any]:
    """``wire`` (a definition's wire form) less the ``VOLATILE_META_KEYS`` of its ``_meta`` (an emptied one goes)."""
    meta = wire.get("_meta")
    if not isinstance(meta, dict):
        return wire
    kept = {key: item for key, item in cast("dict[str, Any]", meta).items() if key not in VOLATILE_META_KEYS}
    trimmed = {key: item for key, item in wire.items() if key != "_meta"}
    if kept:
        trimmed["_meta"] = kept
    return trimmed
