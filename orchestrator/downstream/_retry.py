"""Reconnect back-off for supervised downstream connections: the one home of tenacity.

Attempts wait with capped, fully jittered exponential back-off and never give up: a
server that is down for an hour is tried again, at most every ``max_delay`` seconds.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tenacity import AsyncRetrying, AttemptManager, retry_if_exception_type, stop_never, wait_random_exponential

from orchestrator.errors import DownstreamUnavailable

__all__ = ["BackoffPolicy", "reconnect_attempts"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How a supervised server is retried after it failed to start or died.

    Attributes:
        initial_delay: Scale of the first wait, in seconds (the wait is uniform in [0, scale]).
        max_delay: Cap of any single wait, in seconds.
        stable_after: Seconds a connection must stay healthy before the back-off resets.
    """

    initial_delay: float = 0.5
    max_delay: float = 30.0
    stable_after: float = 10.0


async def reconnect_attempts(server: str, policy: BackoffPolicy) -> AsyncIterator[AttemptManager]:
    """Yield attempt contexts until one finishes without ``DownstreamUnavailable``.

    Other exceptions (and cancellation) propagate at once and end the iteration.
    """
    retrying = AsyncRetrying(
        stop=stop_never,
        wait=wait_random_exponential(multiplier=policy.initial_delay, max=policy.max_delay),
        retry=retry_if_exception_type(DownstreamUnavailable),
        reraise=True,
        before_sleep=lambda state: logger.warning(
            "server %r unavailable (attempt %d): %s; retrying in %.1fs",
            server,
            state.attempt_number,
            state.outcome.exception() if state.outcome else "",
            state.next_action.sleep if state.next_action else 0.0,
        ),
    )
    async for attempt in retrying:
        yield attempt
