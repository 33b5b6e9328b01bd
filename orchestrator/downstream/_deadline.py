"""A call's time limit that does not run while a person answers for it.

A downstream server may ask the calling client for sampling or elicitation in the middle of
a call; a person may take minutes to fill a form. That time is not the server's, so the
call's clock stops while such a request waits upstream and resumes with what was left. (The
MCP SDK keeps a clock of the same kind for its own requests, but not as public API.)
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Generator, Iterable

__all__ = ["CallDeadline", "current_deadline", "paused"]


class CallDeadline:
    """The deadline of one call's cancel scope, as a budget spent only while the clock runs."""

    def __init__(self, scope: anyio.CancelScope, limit: float) -> None:
        self._scope = scope
        self._budget = limit
        self._pauses = 0
        scope.deadline = anyio.current_time() + limit

    def pause(self) -> None:
        """Stop the clock (pauses nest)."""
        if not self._pauses:
            self._budget = max(0.0, self._scope.deadline - anyio.current_time())
            self._scope.deadline = math.inf
        self._pauses += 1

    def resume(self) -> None:
        """Let the clock run again with what was left, once every pause has ended."""
        self._pauses -= 1
        if not self._pauses:
            self._scope.deadline = anyio.current_time() + self._budget


current_deadline: ContextVar[CallDeadline | None] = ContextVar("orchestrator_call_deadline", default=None)
"""The deadline of the call running in this context (set around every downstream request)."""


@contextmanager
def paused(deadlines: Iterable[CallDeadline]) -> Generator[None]:
    """Stop the clocks of ``deadlines`` while the block runs."""
    held = list(deadlines)
    for deadline in held:
        deadline.pause()
    try:
        yield
    finally:
        for deadline in held:
            deadline.resume()
