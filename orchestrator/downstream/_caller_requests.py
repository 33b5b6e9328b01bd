"""What a downstream server asks of its client during a call: sampling, elicitation, roots, logs.

Each such request goes to the upstream client of the call it belongs to (``caller_of``), or
is refused with an error saying why. While the client's person answers, the clock of that
call stops (``_deadline``); the wait itself is bounded by the server's ``input_timeout``.
Owns the register of calls in flight with an upstream caller; it sends nothing downstream.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, TypeVar

import anyio
import mcp_types as types

from orchestrator.downstream._deadline import CallDeadline, current_deadline, paused
from orchestrator.downstream._upstream_peer import UpstreamPeer, caller_of

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator

    from mcp.client.session import ClientRequestContext

__all__ = ["CallerRequests"]

logger = logging.getLogger(__name__)

_AnswerT = TypeVar("_AnswerT")


class CallerRequests:
    """The calls in flight on one server with their callers, and the callbacks its client uses."""

    def __init__(self, server: str, input_timeout: Callable[[], float]) -> None:
        self._server = server
        self._input_timeout = input_timeout
        self._calls: list[tuple[UpstreamPeer, CallDeadline]] = []
        """The peer and deadline of each call in flight that has an upstream caller, oldest first."""

    @contextmanager
    def tracking(self, peer: UpstreamPeer | None, deadline: CallDeadline) -> Generator[None]:
        """Register a call in flight (and the client it came from) for as long as the block runs."""
        if peer is None:
            yield
            return
        call = (peer, deadline)
        self._calls.append(call)
        try:
            yield
        finally:
            self._calls.remove(call)

    def _callers(self) -> list[UpstreamPeer]:
        return [peer for peer, _ in self._calls]

    def _caller(self, what: str, capable: Callable[[UpstreamPeer], bool]) -> UpstreamPeer | types.ErrorData:
        """The peer to ask for ``what``, or the error the server gets instead."""
        peer = caller_of(self._server, what, self._callers())
        if isinstance(peer, str):
            logger.warning("%s", peer)
            return types.ErrorData(code=types.INVALID_REQUEST, message=peer)
        if not capable(peer):
            message = f"server {self._server!r} asked for {what}, but the upstream client does not support it"
            return types.ErrorData(code=types.INVALID_REQUEST, message=message)
        return peer

    def _waiting_on(self, peer: UpstreamPeer) -> AbstractContextManager[None]:
        """Stop the clock of the call(s) a request to ``peer`` is for, while a person answers it."""
        own = current_deadline.get()
        if own is not None:
            return paused([own])
        # No link to one call: every call of that client waits on the same person.
        client = peer.client_identity
        return paused(deadline for caller, deadline in self._calls if caller.client_identity == client)

    async def _ask(
        self, peer: UpstreamPeer, what: str, ask: Callable[[], Awaitable[_AnswerT]]
    ) -> _AnswerT | types.ErrorData:
        """Put a request to the caller's client, for at most ``input_timeout``, the call's clock stopped."""
        limit = self._input_timeout()
        with self._waiting_on(peer), anyio.move_on_after(limit):
            return await ask()
        message = f"the client did not answer server {self._server!r}'s {what} request within {limit:g}s"
        logger.info("%s", message)
        return types.ErrorData(code=types.REQUEST_TIMEOUT, message=message)

    async def on_sampling(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        """The client's sampling callback."""
        peer = self._caller("sampling", lambda peer: peer.supports_sampling())
        if isinstance(peer, types.ErrorData):
            return peer
        return await self._ask(peer, "sampling", lambda: peer.create_message(params))

    async def on_elicitation(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        """The client's elicitation callback."""
        peer = self._caller("elicitation", lambda peer: peer.supports_elicitation())
        if isinstance(peer, types.ErrorData):
            return peer
        return await self._ask(peer, "elicitation", lambda: peer.elicit(params))

    async def on_list_roots(self, context: ClientRequestContext) -> types.ListRootsResult | types.ErrorData:
        """The client's roots callback."""
        peer = self._caller("roots", lambda peer: peer.supports_roots())
        if isinstance(peer, types.ErrorData):
            return peer
        return await self._ask(peer, "roots", peer.list_roots)

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        """The client's logging callback: to our log, and to the caller where there is one."""
        logger.info("server %r log [%s]: %s", self._server, params.level, params.data)
        peer = caller_of(self._server, "logging", self._callers())
        if not isinstance(peer, str):
            await peer.log(params)
