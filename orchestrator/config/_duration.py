"""Durations written as strings: ``500ms``, ``20s``, ``2m``, ``1h``, ``90d`` (or a bare number of seconds)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field

__all__ = ["Seconds", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Return the duration in seconds.

    Raises:
        ValueError: ``value`` is not a number or a string like ``'500ms'``, ``'20s'``, ``'2m'``.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError(f"not a duration (use e.g. '500ms', '20s', '2m'): {value!r}")


def _duration_or_number(value: object) -> object:
    return parse_duration(value) if isinstance(value, str) else value


Seconds = Annotated[
    float,
    Field(gt=0),
    BeforeValidator(
        _duration_or_number,
        json_schema_input_type=Annotated[float, Field(gt=0)] | Annotated[str, Field(pattern=r"^\d")],
    ),
]
"""A positive duration in seconds, written as a number or a string such as ``'20s'``."""
