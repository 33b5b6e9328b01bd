"""A downstream's successful ``tools/call`` result as the JSON object it sent (the pass-through path)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["WireResult"]


@dataclass(frozen=True, slots=True)
class WireResult:
    """A successful ``tools/call`` result, neither typed nor re-validated."""

    wire: dict[str, Any]
    era: str
    """The protocol version the server answered in: ``wire`` is shaped for it."""

    @property
    def is_error(self) -> bool:
        """Never: an error result is typed on its way (it gets the error object added)."""
        return False
