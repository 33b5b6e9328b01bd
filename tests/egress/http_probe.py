"""A tiny HTTP server on 127.0.0.1 for egress tests: it records each request and answers from a handler."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import anyio.abc

__all__ = ["Probe", "ReceivedRequest", "probe_server"]


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """The request line and headers one connection sent."""

    line: str
    headers: dict[str, str]


@dataclass(slots=True)
class Probe:
    """A running probe server: where it listens and what it received."""

    port: int
    received: list[ReceivedRequest] = field(default_factory=lambda: [])

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"


AnswerFn = Callable[[ReceivedRequest], tuple[int, dict[str, str]]]


@asynccontextmanager
async def probe_server(answer: AnswerFn) -> AsyncGenerator[Probe, None]:
    """Serve on a free port of 127.0.0.1; each request gets ``answer``'s status and headers, no body."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    probe = Probe(listener.extra(anyio.abc.SocketAttribute.local_port))

    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                try:
                    data += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
            head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
            request = ReceivedRequest(head[0], headers)
            probe.received.append(request)
            status, extra = answer(request)
            lines = [f"HTTP/1.1 {status} Probe", "Content-Length: 0", "Connection: close"]
            lines += [f"{k}: {v}" for k, v in extra.items()]
            await stream.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        try:
            yield probe
        finally:
            tg.cancel_scope.cancel()
