"""Serving over stdio, the transport Claude Desktop and most local clients use.

stdin is read without a worker thread, so a signal can stop the server at once even while
the client keeps the pipe open and silent.
"""

from __future__ import annotations

import os
from typing import Any, cast

import anyio
from mcp.server.stdio import stdio_server

from orchestrator.server._app import OrchestratorServer

__all__ = ["serve_stdio"]

_READ_CHUNK = 65536


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
        return line.decode("utf-8", errors="replace") + "\n"

    async def aclose(self) -> None:
        return None


async def serve_stdio(server: OrchestratorServer) -> None:
    """Serve until the client closes stdin (or the caller cancels)."""
    # stdio_server only iterates stdin; it takes any async line iterator.
    stdin = cast(Any, _StdinLines(0))
    async with stdio_server(stdin=stdin) as (read_stream, write_stream):
        await server.lowlevel.run(read_stream, write_stream, server.lowlevel.create_initialization_options())
