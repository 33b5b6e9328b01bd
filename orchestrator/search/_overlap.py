"""Work a search starts on another core while it does the rest (the query's embedding).

The e5 engine is C behind ctypes, which lets go of the GIL while it computes: on two cores a
query's embedding (most of a cold search) runs beside BM25 and the word vectors instead of
before them. On one core there is nothing to gain, so the work runs in the calling thread.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from orchestrator._cores import usable_cores

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["in_background", "usable_cores"]

_T = TypeVar("_T")


_WORKERS = 4
"""Threads that run started work. The query engine embeds one query at a time (under its lock);
more than one worker lets a search whose query embedding is kept go on beside one embedding."""

_executor = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="tool-search") if usable_cores() > 1 else None
"""Threads start on first use only; None on one core."""


def in_background(work: Callable[[], _T]) -> Callable[[], _T]:
    """Start work on a worker thread where there is a core for it.

    Args:
        work: What to compute; it must not wait for the caller.

    Returns:
        Waits for the work and returns its result (re-raising its error); on one core the work
        has already run in the calling thread.
    """
    if _executor is None:
        value = work()
        return lambda: value
    return _executor.submit(work).result
