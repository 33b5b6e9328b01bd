"""Input-required rounds: sampling and elicitation forwarded to 2026-07-28 clients.

A 2026-07-28 client answers a server's request for input only by retrying its call with
``inputResponses``. When a downstream server asks for input in the middle of a call, the
downstream call is kept running in a task of its own, the upstream call returns
``InputRequiredResult`` (with an unguessable ``requestState``), and the client's retry
delivers the answer to the waiting downstream call, which then goes on. A call whose client
never comes back is cancelled after ``ttl`` seconds. A call that ends while its client is away
(an approval step not answered in time declines the run) keeps its result for the client's
next round, as long as a round would have waited.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import mcp_types as types

from orchestrator.downstream import UpstreamPeer
from orchestrator.errors import InputRoundExpired
from orchestrator.server._errors import internal_error_result, tool_error_result
from orchestrator.server._request_peer import client_identity

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
    from mcp.server.context import ServerRequestContext

__all__ = ["InputRounds", "RoundCallFn", "RoundState"]

logger = logging.getLogger(__name__)

RoundCallFn = Callable[[UpstreamPeer, "RoundState"], Awaitable[types.CallToolResult]]
"""Runs the downstream call with the given peer; progress goes to the state's current ctx."""


@dataclass
class _PendingInput:
    """A downstream's request for input, waiting for the client's answer in a later round."""

    key: str
    request: types.InputRequest
    answered: anyio.Event = field(default_factory=anyio.Event)
    response: types.InputResponse | types.ErrorData | None = None


@dataclass
class RoundState:
    """One suspended call: its current upstream request and what it waits for."""

    ctx: ServerRequestContext[Any, Any]
    events: MemoryObjectSendStream[_PendingInput | types.CallToolResult]
    receive: MemoryObjectReceiveStream[_PendingInput | types.CallToolResult]
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    pending: dict[str, _PendingInput] = field(default_factory=dict[str, _PendingInput])
    counter: int = 0
    cancelled_by_client: bool = False
    collected: anyio.Event = field(default_factory=anyio.Event)
    """Set when a round has handed the call's result to the client."""
    identity: Hashable = field(default_factory=object)
    """Who the call belongs to, from its first round (see ``_request_peer.client_identity``)."""

    async def report_progress(self, progress: float, total: float | None, message: str | None) -> None:
        """Progress goes to whichever upstream request is current."""
        await self.ctx.session.report_progress(progress, total, message)


class _RoundPeer:
    """An ``UpstreamPeer`` that turns each downstream request into an input-required round."""

    def __init__(self, state: RoundState) -> None:
        self._state = state

    def _caps(self) -> types.ClientCapabilities | None:
        return self._state.ctx.session.client_capabilities

    @property
    def client_identity(self) -> Hashable:
        # Each round of a stateless client may arrive on a new connection; the call is the unit.
        return self._state.identity

    def supports_sampling(self) -> bool:
        caps = self._caps()
        return caps is not None and caps.sampling is not None

    def supports_elicitation(self) -> bool:
        caps = self._caps()
        return caps is not None and caps.elicitation is not None

    def supports_roots(self) -> bool:
        caps = self._caps()
        return caps is not None and caps.roots is not None

    async def _ask(self, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        self._state.counter += 1
        ask = _PendingInput(key=f"{request.method}-{self._state.counter}", request=request)
        self._state.pending[ask.key] = ask
        await self._state.events.send(ask)
        await ask.answered.wait()
        assert ask.response is not None
        return ask.response

    async def create_message(
        self, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        response = await self._ask(types.CreateMessageRequest(params=params))
        if isinstance(response, types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData):
            return response
        return types.ErrorData(code=types.INVALID_PARAMS, message="the client answered sampling with another type")

    async def elicit(self, params: types.ElicitRequestParams) -> types.ElicitResult | types.ErrorData:
        response = await self._ask(types.ElicitRequest(params=params))
        if isinstance(response, types.ElicitResult | types.ErrorData):
            return response
        return types.ErrorData(code=types.INVALID_PARAMS, message="the client answered elicitation with another type")

    async def list_roots(self) -> types.ListRootsResult | types.ErrorData:
        response = await self._ask(types.ListRootsRequest())
        if isinstance(response, types.ListRootsResult | types.ErrorData):
            return response
        return types.ErrorData(code=types.INVALID_PARAMS, message="the client answered roots/list with another type")

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        await self._state.ctx.session.send_log_message(  # pyright: ignore[reportDeprecated]
            params.level, params.data, params.logger, related_request_id=self._state.ctx.request_id
        )


class InputRounds:
    """Suspended calls awaiting their client's next round, keyed by request state."""

    def __init__(self, task_group: anyio.abc.TaskGroup, ttl: float = 300.0, token_prefix: str = "") -> None:
        self._task_group = task_group
        self._ttl = ttl
        self._calls: dict[str, RoundState] = {}
        self.token_prefix = token_prefix
        """Begins every request state handed out: one worker of several marks its rounds (``_workers``)."""

    def owns(self, request_state: str | None) -> bool:
        """Whether ``request_state`` names a call suspended here."""
        return request_state is not None and request_state in self._calls

    async def start(
        self, ctx: ServerRequestContext[Any, Any], call: RoundCallFn
    ) -> types.CallToolResult | types.InputRequiredResult:
        """Run ``call`` detached; return its result, or the first round of input it needs."""
        send, receive = anyio.create_memory_object_stream[_PendingInput | types.CallToolResult](1)
        state = RoundState(ctx=ctx, events=send, receive=receive, identity=client_identity(ctx))
        token = self.token_prefix + secrets.token_urlsafe(24)

        async def run() -> None:
            ended = False
            try:
                with state.scope:
                    state.scope.deadline = anyio.current_time() + self._ttl
                    try:
                        result = await call(_RoundPeer(state), state)
                    # Boundary: a detached task must always answer the round that waits for it.
                    except Exception as exc:
                        logger.exception("a call with input rounds failed")
                        result = internal_error_result(exc)
                    await send.send(result)
                    ended = True
                send.close()
                if ended:
                    # The client may be away (answering an approval the run stopped waiting for):
                    # its next round gets the result, if it comes as soon as a round would.
                    with anyio.move_on_after(self._ttl):
                        await state.collected.wait()
            finally:
                # However it ends (answered, expired, cancelled), the round is gone, and a retry
                # waiting on it learns so from the closed stream instead of hanging.
                self._calls.pop(token, None)
                send.close()
            if state.scope.cancelled_caught and not state.cancelled_by_client:
                logger.info("a call waiting for client input expired after %gs", self._ttl)

        self._calls[token] = state
        self._task_group.start_soon(run)
        return await self._next(token, state)

    async def resume(
        self, ctx: ServerRequestContext[Any, Any], request_state: str, responses: types.InputResponses | None
    ) -> types.CallToolResult | types.InputRequiredResult:
        """Deliver a client's answers to its suspended call and wait for what comes next."""
        state = self._calls[request_state]
        state.ctx = ctx
        for key, response in (responses or {}).items():
            ask = state.pending.pop(key, None)
            if ask is not None:
                ask.response = response
                ask.answered.set()
        for ask in list(state.pending.values()):
            # A request the client did not answer is refused, so the downstream can go on.
            ask.response = types.ErrorData(code=types.INVALID_PARAMS, message="no response to this input request")
            ask.answered.set()
        state.pending.clear()
        return await self._next(request_state, state)

    async def _next(self, token: str, state: RoundState) -> types.CallToolResult | types.InputRequiredResult:
        try:
            event = await state.receive.receive()
        except anyio.EndOfStream:
            return tool_error_result(InputRoundExpired())
        except anyio.get_cancelled_exc_class():
            # The client cancelled this round: the whole call goes with it.
            self._calls.pop(token, None)
            state.cancelled_by_client = True
            state.scope.cancel()
            raise
        if isinstance(event, types.CallToolResult):
            state.collected.set()
            return event
        requests: dict[str, types.InputRequest] = {event.key: event.request}
        # Gather every request asked at about the same time into one round.
        while True:
            try:
                more = state.receive.receive_nowait()
            except anyio.WouldBlock:
                break
            if isinstance(more, types.CallToolResult):  # pragma: no cover - asks block their call
                state.collected.set()
                return more
            requests[more.key] = more.request
        return types.InputRequiredResult(input_requests=requests, request_state=token)
