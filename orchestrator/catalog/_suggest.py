""" "Did you mean": the existing names closest to a misspelt one. Pure module: no I/O.

Used only on error paths (an unknown tool, prompt or workflow name), so its cost never
touches a call that succeeds.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["close_names"]

_CUTOFF = 0.6
_NEAR_TIE = 0.05
"""Names scoring within this of the best are offered too: the best alone could be the wrong one."""
_MAX = 3


def close_names(name: str, candidates: Iterable[str]) -> list[str]:
    """The candidates most like ``name``, best first: the best, and those nearly as close (at most three)."""
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(name)
    scored: list[tuple[float, str]] = []
    for candidate in set(candidates):
        matcher.set_seq1(candidate)
        # The cheap upper bounds first, as difflib.get_close_matches does.
        if matcher.real_quick_ratio() >= _CUTOFF and matcher.quick_ratio() >= _CUTOFF:
            score = matcher.ratio()
            if score >= _CUTOFF:
                scored.append((score, candidate))
    if not scored:
        return []
    scored.sort(key=lambda item: (-item[0], item[1]))
    best = scored[0][0]
    return [candidate for score, candidate in scored[:_MAX] if score >= best - _NEAR_TIE]
