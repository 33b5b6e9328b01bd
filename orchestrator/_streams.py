"""A base for read streams that wrap another one (bottom layer: no orchestrator imports).

Subclasses override ``receive`` (and ``aclose`` if they must); iteration, the context
manager protocol and ``last_context`` (the sender's context variables, which the SDK's
dispatchers restore around each message's handler) come from here.
"""

from __future__ import annotations

import contextvars
from types import TracebackType
from typing import Self

import anyio
from mcp.shared._stream_protocols import ReadStream
from mcp.shared.message import SessionMessage

__all__ = ["WrappedReadStream"]


class WrappedReadStream:
    """Delegates to ``inner``; a subclass changes what ``receive`` does."""

    def __init__(self, inner: ReadStream[SessionMessage | Exception]) -> None:
        self._inner = inner

    @property
    def last_context(self) -> contextvars.Context | None:
        """The context the last item was sent in, where the wrapped stream keeps it.

        Over streamable HTTP that is the task that posted the request whose response stream
        carried the item: a server-to-client request then runs in its caller's context.
        """
        context: object = getattr(self._inner, "last_context", None)
        return context if isinstance(context, contextvars.Context) else None

    async def receive(self) -> SessionMessage | Exception:
        """The next item of the wrapped stream."""
        return await self._inner.receive()

    async def aclose(self) -> None:
        """Close the wrapped stream."""
        await self._inner.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.aclose()
