"""Whether one downstream server is fit to serve: probes while idle, and what they conclude.

A connected server is probed once it has been quiet for ``health.interval`` (``ping`` on
2025-11-25, ``server/discover`` on 2026-07-28), and at once when one of its calls timed out.
Any answer, even an error, proves it alive. ``health.failures`` probes in a row without an
answer make it unhealthy; the next answer makes it healthy again. A server that lost its
connection and is not back within ``health.timeout`` is unhealthy too. A lazy server that is
stopped (cold) counts as healthy: it is not probed, and a call starts it. Each change is
reported to ``on_change`` (the pool withdraws or restores the server's tools).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from orchestrator.config import HealthSpec

__all__ = ["HealthMonitor", "ProbeFn"]

logger = logging.getLogger(__name__)

ProbeFn = Callable[[], Awaitable[None]]
"""One probe: returns when the server answered; raises when the transport failed."""

ProbeFaults = (TimeoutError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream)
"""How a probe fails when the server does not answer at all."""


class HealthMonitor:
    """The health of one server: a flag, the reason when unhealthy, and the probe loop."""

    def __init__(self, server: str, spec: HealthSpec, on_change: Callable[[], Awaitable[None]]) -> None:
        self._server = server
        self._spec = spec
        self._on_change = on_change
        self.healthy = False
        self.reason: str | None = "starting"
        self._failures = 0
        self._last_activity = 0.0
        self._probe_now = anyio.Event()

    def reconfigure(self, spec: HealthSpec) -> None:
        """Use ``spec`` from the next probe on."""
        self._spec = spec
        self._probe_now.set()  # re-evaluate when the next probe is due

    def saw_activity(self) -> None:
        """The server answered something: no probe is due for another interval."""
        self._last_activity = anyio.current_time()

    def request_probe(self) -> None:
        """Probe as soon as possible (a call timed out: is the server hung, or the tool slow?)."""
        self._probe_now.set()

    async def mark_healthy(self) -> None:
        """The server is fit to serve (connected, and answering)."""
        self._failures = 0
        if self.healthy:
            return
        was = self.reason
        self.healthy, self.reason = True, None
        if was != "starting":
            logger.warning("server %r is healthy again", self._server)
        await self._on_change()

    async def mark_cold(self) -> None:
        """A lazy server was stopped on purpose (or never started): fit to serve, since a call starts it."""
        self._failures = 0
        if self.healthy:
            return
        self.healthy, self.reason = True, None
        await self._on_change()

    async def mark_unhealthy(self, reason: str) -> None:
        """The server is not fit to serve, for ``reason`` (no secrets: it is shown to clients)."""
        changed = self.healthy
        self.healthy, self.reason = False, reason
        if changed:
            logger.warning("server %r is unhealthy: %s", self._server, reason)
            await self._on_change()

    async def probe_while_connected(self, probe: ProbeFn) -> None:
        """Probe the connected server whenever a probe is due; runs until cancelled."""
        self._failures = 0
        self._last_activity = anyio.current_time()
        if not self._spec.enabled:
            await anyio.sleep_forever()
        last_attempt = self._last_activity
        while True:
            # After a failed probe the next one comes sooner, so a hung server is caught quickly.
            interval = self._spec.interval if self._failures == 0 else min(self._spec.interval, self._spec.timeout)
            wait = max(self._last_activity, last_attempt) + interval - anyio.current_time()
            if wait > 0 and not self._probe_now.is_set():
                with anyio.move_on_after(wait):
                    await self._probe_now.wait()
                continue  # re-evaluate: an answer in the meantime postpones the probe
            self._probe_now = anyio.Event()
            last_attempt = anyio.current_time()
            try:
                with anyio.fail_after(self._spec.timeout):
                    await probe()
            except ProbeFaults as exc:
                self._failures += 1
                what = "no answer within the timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
                logger.info("server %r: probe %d failed: %s", self._server, self._failures, what)
                if self._failures >= self._spec.failures:
                    await self.mark_unhealthy(f"{self._failures} health probes failed (last: {what})")
                continue
            self.saw_activity()
            await self.mark_healthy()

    async def watch_downtime(self, reconnected: anyio.Event, last_error: Callable[[], str | None]) -> None:
        """After a lost connection: unhealthy unless ``reconnected`` is set within ``health.timeout``."""
        with anyio.move_on_after(self._spec.timeout):
            await reconnected.wait()
            return
        error = last_error()
        await self.mark_unhealthy(f"not connected for {self._spec.timeout:g}s" + (f" ({error})" if error else ""))
