"""Requests written to a stdio child as JSON lines, their answers taken off its stdout untyped.

The SDK's client types every message both ways and writes through a task of its own. The
pass-through path needs none of that for a ``tools/call``: it writes the request line itself,
and the stdout reader hands the answer, untyped, to the waiting call in the order the SDK would
(``Handover``). Every other message (the SDK's own requests and answers, the server's requests,
notifications) goes through the SDK as before.

The request is what the SDK's dispatcher would send: the same CLIENT span
(``MCP send tools/call <tool>``) with the W3C trace context in ``_meta``, and a
``notifications/cancelled`` when the caller gives up on it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from typing import TYPE_CHECKING, Any, cast

import anyio
import mcp_types as types
from mcp import MCPError
from mcp_types import CONNECTION_CLOSED
from opentelemetry.trace import SpanKind, StatusCode

from orchestrator._sdk_internals import inject_trace_context, sdk_span

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from anyio.streams.memory import MemoryObjectSendStream

__all__ = ["Handover", "StdioCalls"]

logger = logging.getLogger(__name__)

_CANCEL_WRITE_LIMIT = 2.0
"""Seconds a courtesy ``notifications/cancelled`` may take to write before it is given up."""


class Handover:
    """An answer to a request of ours, handed to its caller when the SDK would have resolved it.

    It travels in the read stream with every other message, so it reaches its caller after the
    server's earlier messages (a log, a progress report) have been dispatched, as on the SDK's path.
    """

    def __init__(self, waiter: MemoryObjectSendStream[dict[str, Any]], answer: dict[str, Any]) -> None:
        self._waiter = waiter
        self._answer = answer

    def deliver(self) -> None:
        """Wake the caller with the answer (dropped if it left, as the SDK drops a late answer)."""
        with contextlib.suppress(anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._waiter.send_nowait(self._answer)


class StdioCalls:
    """Requests of ours on one stdio child, and the answers its stdout reader hands back."""

    def __init__(self, write_line: Callable[[bytes], Awaitable[None]]) -> None:
        """Write requests with ``write_line`` (a whole line; it serialises with the SDK's own writes)."""
        self._write_line = write_line
        self._waiting: dict[str, MemoryObjectSendStream[dict[str, Any]]] = {}
        # String ids in a namespace of their own: the SDK's client numbers its requests.
        self._ids = (f"orchestrator-{n}" for n in itertools.count(1))
        self._closed = False

    async def request(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Send one request and wait for its result object, as the server sent it.

        Raises:
            MCPError: The server answered with an error; or ``CONNECTION_CLOSED``.
        """
        if self._closed:
            raise MCPError(code=CONNECTION_CLOSED, message="Connection closed")
        request_id = next(self._ids)
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](1)
        self._waiting[request_id] = send
        out = dict(params)
        meta = dict(cast("Mapping[str, Any]", out.get("_meta") or {}))
        target = out.get("name")
        name = f"MCP send {method}{f' {target}' if isinstance(target, str) else ''}"
        written = False
        try:
            attributes = {"mcp.method.name": method, "jsonrpc.request.id": request_id}
            with sdk_span(name, kind=SpanKind.CLIENT, attributes=attributes) as span:
                inject_trace_context(meta)
                if meta:
                    out["_meta"] = meta
                line = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": out})
                written = True
                await self._write_line(line.encode() + b"\n")
                answer = await receive.receive()
                error = answer.get("error")
                if error is not None:
                    data = types.ErrorData.model_validate(error)
                    code = str(data.code)
                    span.set_attributes({"error.type": code, "rpc.response.status_code": code})
                    span.set_status(StatusCode.ERROR, data.message)
                    raise MCPError(code=data.code, message=data.message, data=data.data)
        except anyio.get_cancelled_exc_class():
            if written:  # the server may be at work on it: tell it to stop
                with anyio.move_on_after(_CANCEL_WRITE_LIMIT, shield=True):
                    await self._cancel(request_id)
            raise
        finally:
            self._waiting.pop(request_id, None)
            send.close()
            receive.close()
        result = answer.get("result")
        if not isinstance(result, dict):
            raise MCPError(code=types.INTERNAL_ERROR, message="Response has neither a result object nor an error")
        return cast("dict[str, Any]", result)

    def claim(self, message: object) -> Handover | None:
        """The hand-over of ``message`` (a parsed stdout line) to the request of ours it answers, if any."""
        if not isinstance(message, dict):
            return None
        body = cast("dict[str, Any]", message)
        request_id: object = body.get("id")
        waiter = self._waiting.get(request_id) if isinstance(request_id, str) else None
        if waiter is None or ("result" not in body and "error" not in body):
            return None
        return Handover(waiter, body)

    @property
    def waiting(self) -> bool:
        """Whether any request of ours awaits its answer (the reader parses lines for it only then)."""
        return bool(self._waiting)

    def close(self) -> None:
        """The connection ended: every waiting request fails with ``CONNECTION_CLOSED``, later ones at once."""
        self._closed = True
        closed = {"error": {"code": CONNECTION_CLOSED, "message": "Connection closed"}}
        for waiter in list(self._waiting.values()):
            with contextlib.suppress(anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                waiter.send_nowait(closed)

    async def _cancel(self, request_id: str) -> None:
        params = {"requestId": request_id, "reason": "caller cancelled"}
        notice = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params}
        try:
            await self._write_line(json.dumps(notice).encode() + b"\n")
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            logger.debug("could not send the cancellation of %s: the child stopped reading", request_id)
