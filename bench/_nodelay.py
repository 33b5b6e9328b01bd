"""Run a module with TCP_NODELAY on every TCP connection asyncio makes (a benchmark workaround).

    python -m bench._nodelay MODULE [ARGS...]

asyncio turns Nagle's algorithm off only for sockets whose ``proto`` is ``IPPROTO_TCP``. A
listening socket made as ``socket.socket(AF_INET, SOCK_STREAM)`` has ``proto == 0``, so the
connections uvicorn accepts on it keep Nagle on: a response written as two segments (headers,
then body) waits for the client's delayed ACK, about 40 ms per request on Linux. Older
checkouts of ``tests/fakes/_fault_app.py`` (``serve_http``) and ``orchestrator/server/_http.py``
(``bind_socket``) built their sockets that way; both now pass ``IPPROTO_TCP``. This wrapper runs
MODULE as ``python -m`` would, with asyncio's check relaxed, so such older servers can still be
measured fairly (``--tcp-nodelay`` in ``bench.proxy_latency``). It is a no-op for code that
already creates its sockets with ``IPPROTO_TCP``.
"""

from __future__ import annotations

import asyncio.base_events
import runpy
import socket
import sys


def _set_nodelay(sock: socket.socket) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def main() -> None:
    """Patch asyncio, then run ``sys.argv[1]`` as the main module with the remaining arguments."""
    if len(sys.argv) < 2:
        sys.exit("usage: python -m bench._nodelay MODULE [ARGS...]")
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    setattr(asyncio.base_events, "_set_nodelay", _set_nodelay)  # noqa: B010 - a private hook, on purpose
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
