"""When a lazy server runs: the start requests ask for, and the stop idleness asks for.

Owns the bookkeeping of one server's ``start: lazy`` life: whether it is connected only on
demand, the one start that concurrent requests share (and how it ended), when a request last
started or ended, and the watch that says when it has been idle for ``idle_timeout``.

Does not: connect, stop or list anything (``DownstreamServer`` does, told by this), nor know
whether a request is in flight (it asks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable

    from orchestrator.errors import DownstreamError

__all__ = ["DemandStart", "PendingStart"]


@dataclass(eq=False)
class PendingStart:
    """One start of a cold lazy server, shared by every request that waits for it."""

    done: anyio.Event = field(default_factory=anyio.Event)
    error: DownstreamError | None = None
    """Why it did not come up (a ``DownstreamUnavailable`` or one of its kind built from the server
    and a message); ``None`` once it did."""


class DemandStart:
    """One server's on-demand state (see the module docstring)."""

    def __init__(self, lazy: bool) -> None:
        self.lazy = lazy
        self.on_demand = False
        """Lazy, and its listing is known: connected only when a request needs it."""
        self.idle_stop = False
        """Set while the current connection is being closed for idleness."""
        self.pending: PendingStart | None = None
        """The start requests wait for, while one is asked for or under way."""
        self._requested = anyio.Event()
        self._last_request = 0.0
        self._changed = anyio.Event()
        """Set (and replaced) whenever a request starts or ends, or the settings change."""

    def reconfigure(self, lazy: bool) -> None:
        """Switched to eager, a server waiting for a request is started now and not stopped when idle."""
        self.lazy = lazy
        if not lazy and self.on_demand:
            self.on_demand = False
            self._requested.set()
        self._poke()

    def request_start(self) -> PendingStart:
        """The start to wait for: the one under way, or a new one asked of the supervisor."""
        if self.pending is None:
            self.pending = PendingStart()
            self._requested.set()
        return self.pending

    async def wait_for_request(self) -> None:
        """Until a start is asked for (by a request, or by a switch to eager)."""
        await self._requested.wait()
        self._requested = anyio.Event()

    def finish_start(self, error: DownstreamError | None) -> None:
        """The pending start is over: up (``None``), or not, and why."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.error = error
            pending.done.set()

    def went_cold(self) -> None:
        """Stopped: from now on only a request starts it."""
        self.on_demand = True
        self.idle_stop = False

    def request_started_or_ended(self) -> None:
        """A request went out or came back: the idle time counts from now."""
        self.restart_idle_clock()
        self._poke()

    def restart_idle_clock(self) -> None:
        """Count the idle time from now (a fresh connection is not idle from the start)."""
        self._last_request = anyio.current_time()

    def _poke(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def wait_idle(self, in_flight: Callable[[], bool], idle_timeout: Callable[[], float]) -> None:
        """Return once lazy with no request in flight for ``idle_timeout()`` s; marks the stop as idle."""
        while True:
            changed = self._changed
            if not self.lazy or in_flight():
                await changed.wait()
                continue
            remaining = self._last_request + idle_timeout() - anyio.current_time()
            if remaining <= 0:
                break
            with anyio.move_on_after(remaining):
                await changed.wait()
        self.idle_stop = True
        self.on_demand = True  # a request from now on waits for the next start
