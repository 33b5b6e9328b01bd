"""Serving over stdio, the transport Claude Desktop and most local clients use.

stdin and stdout are served without worker threads: a signal stops the server at once even
while the client keeps the pipe open and silent, and no message pays two thread hand-offs
(write, flush) on its way out. While serving, fd 1 points at stderr, so a stray print
cannot corrupt the protocol stream.
"""

from __future__ import annotations

import json
import os
import re
from contextlib import suppress
from typing import TYPE_CHECKING, Any, cast

import anyio
import mcp_types as types
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from orchestrator._sdk_internals import ReadStream, WrappedReadStream, WriteStream

if TYPE_CHECKING:
    from orchestrator.server._app import OrchestratorServer

__all__ = ["serve_stdio"]

_READ_CHUNK = 65536
"""Most bytes one ``os.read`` of stdin takes (the size anyio reads a child's pipes with, too)."""
_WRITE_STALL_LIMIT = 30.0
"""Seconds a client may leave the stdout pipe full before a write gives up."""


class _StdinLines:
    """Async iteration over the lines of a file descriptor, cancellable at any await."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""
        self._eof = False

    def __aiter__(self) -> _StdinLines:
        return self

    async def __anext__(self) -> str:
        while b"\n" not in self._buffer:
            if self._eof:
                if self._buffer:
                    line, self._buffer = self._buffer, b""
                    return line.decode("utf-8", errors="replace")
                raise StopAsyncIteration
            await anyio.wait_readable(self._fd)
            try:
                chunk = os.read(self._fd, _READ_CHUNK)
            except BlockingIOError:
                continue
            if not chunk:
                self._eof = True
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        if _NULL_ID.search(line) and _is_request_with_null_id(line):
            # The SDK would take it for a notification and never answer; the spec says -32600.
            return _INVALID_REQUEST_LINE
        return line.decode("utf-8", errors="replace") + "\n"

    async def aclose(self) -> None:
        return None


_NULL_ID = re.compile(rb'"id"\s*:\s*null')
_INVALID_REQUEST_LINE = '{"jsonrpc": "2.0", "id": null}\n'
"""Stands in for a request with a null id: it fails validation, so it is answered with -32600."""


def _is_request_with_null_id(line: bytes) -> bool:
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        return False
    return isinstance(message, dict) and "method" in message and "id" in message and message["id"] is None


class _StdoutLines:
    """Writes whole messages to a non-blocking descriptor, waiting on the event loop."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        os.set_blocking(fd, False)

    async def write(self, text: str) -> int:
        view = memoryview(text.encode())
        with suppress(BlockingIOError):  # usually the pipe takes it all at once: no scopes to enter for that
            view = view[os.write(self._fd, view) :]
        if not view:
            return len(text)
        # A message is written whole or not at all: half a line would corrupt the stream.
        with anyio.CancelScope(shield=True), anyio.move_on_after(_WRITE_STALL_LIMIT):
            while view:
                try:
                    written = os.write(self._fd, view)
                except BlockingIOError:
                    await anyio.wait_writable(self._fd)
                    continue
                view = view[written:]
        return len(text)

    async def flush(self) -> None:
        return None


def _rejection(exc: Exception) -> SessionMessage:
    """The JSON-RPC error (id null) answering a line that failed to parse or validate."""
    unparseable = isinstance(exc, ValidationError) and any(e["type"] == "json_invalid" for e in exc.errors())
    code, message = (types.PARSE_ERROR, "Parse error") if unparseable else (types.INVALID_REQUEST, "Invalid request")
    return SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=None, error=types.ErrorData(code=code, message=message)))


class _AnsweringReadStream(WrappedReadStream):
    """Passes messages on; answers each line that failed to parse with -32700 / -32600.

    The SDK's dispatcher drops such lines (exception items) without any reply.
    """

    def __init__(self, inner: ReadStream[SessionMessage | Exception], replies: WriteStream[SessionMessage]) -> None:
        super().__init__(inner)
        self._replies = replies

    async def receive(self) -> SessionMessage | Exception:
        while True:
            item = await self._inner.receive()
            if not isinstance(item, Exception):
                return item
            await self._replies.send(_rejection(item))


async def serve_stdio(server: OrchestratorServer) -> None:
    """Serve until the client closes stdin (or the caller cancels)."""
    wire = os.dup(1)
    os.dup2(2, 1)
    try:
        # stdio_server only iterates stdin and calls write/flush on stdout; any such objects do.
        stdin, stdout = cast("Any", _StdinLines(0)), cast("Any", _StdoutLines(wire))
        async with stdio_server(stdin=stdin, stdout=stdout) as (read_stream, write_stream):
            answering = _AnsweringReadStream(read_stream, write_stream)
            await server.lowlevel.run(answering, write_stream, server.lowlevel.create_initialization_options())
    finally:
        os.set_blocking(wire, True)
        os.dup2(wire, 1)
        os.close(wire)
