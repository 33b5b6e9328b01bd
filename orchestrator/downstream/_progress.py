"""A call's progress notifications, relayed in order and before the call's result.

The SDK hands each progress notification to the callback in a task of its own. Without
care, the last report of a call is forwarded after the call has returned its result, and
the caller, whose progress token is gone by then, drops it. The relay counts the forwards
in flight and passes them on one at a time, in the order they came; the call waits for
them before it returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import anyio

if TYPE_CHECKING:
    from mcp.shared.dispatcher import ProgressFnT

__all__ = ["ProgressRelay"]

_DRAIN_LIMIT: Final = 5.0
"""Seconds a call's result waits for its progress forwards: a stalled caller must not hold the result."""


class ProgressRelay:
    """Forwards progress to ``forward``; ``drained()`` waits until every forward received so far is done."""

    def __init__(self, forward: ProgressFnT) -> None:
        self._forward = forward
        self._in_flight = 0
        self._idle = anyio.Event()
        self._idle.set()
        # anyio's lock is fair: the forwards run in the order their tasks started, which is
        # the order the notifications arrived.
        self._order = anyio.Lock()

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        """Forward one report (the SDK's progress callback)."""
        # Counted before the first await: the SDK starts this task before it reads the
        # call's response, so the count is up by the time the call waits in `drained`.
        if self._in_flight == 0:
            self._idle = anyio.Event()
        self._in_flight += 1
        try:
            async with self._order:
                await self._forward(progress, total, message)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def drained(self) -> None:
        """Wait (at most a few seconds) until every report received so far has been forwarded."""
        with anyio.move_on_after(_DRAIN_LIMIT):
            await self._idle.wait()
