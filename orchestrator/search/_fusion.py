"""Fusing dense similarities with sparse scores into one ranking (numpy: only with the ``search`` extra).

Each dense signal's similarities are scaled to [0, 1] over the whole catalogue (lowest to highest)
before they are weighed and summed: a cosine of 0.85 means much in one model and little in another,
but the best tool of a catalogue is the best in both. The sparse scores (BM25, boosts) arrive
already scaled and weighed, for the few tools that have them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
else:
    try:
        import numpy as np
    except ImportError:  # the search extra is optional: nothing here is called without it
        np = None

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from numpy.typing import NDArray

__all__ = ["best_positions", "fused"]


def fused(
    dense: Sequence[tuple[float, NDArray[np.float32]]], sparse: Mapping[int, float], size: int
) -> NDArray[np.float32]:
    """The weighed sum of the signals, one value per tool.

    Args:
        dense: (weight, similarity of every tool) per dense signal.
        sparse: Further score by position (already weighed).
        size: How many tools.

    Returns:
        One score per tool.
    """
    total = np.zeros(size, dtype=np.float32)
    for weight, similarities in dense:
        low, high = float(similarities.min()), float(similarities.max())
        if high > low:
            total += similarities * np.float32(weight / (high - low))
            total -= np.float32(weight * low / (high - low))
    if sparse:
        total[np.fromiter(sparse.keys(), dtype=np.int64)] += np.fromiter(sparse.values(), dtype=np.float32)
    return total


def best_positions(total: NDArray[np.float32], limit: int, keep: Callable[[int], bool] | None) -> list[int]:
    """Positions of the highest scores, best first; ties go to the earlier position.

    Args:
        total: One score per tool.
        limit: How many at most.
        keep: Keeps a position only if true; applied before ``limit``.

    Returns:
        Up to ``limit`` positions.
    """
    if keep is None and limit < len(total):
        top = np.argpartition(-total, limit)[:limit]
        ordered = top[np.lexsort((top, -total[top]))]
        return [int(position) for position in ordered]
    found: list[int] = []
    for position in np.argsort(-total, kind="stable"):
        if keep is None or keep(int(position)):
            found.append(int(position))
            if len(found) >= limit:
                break
    return found
