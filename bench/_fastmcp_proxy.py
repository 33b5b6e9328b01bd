"""FastMCP's proxy in a process of its own, in front of the fault server, for ``bench.proxy_latency``.

    python -m bench._fastmcp_proxy [--transport stdio|http] [--port 0] [--backend-url URL]
                                   [--backend-mode auto|legacy] [--fresh-sessions] [-- PYTHON ARGS...]

The proxy is ``FastMCPProxy`` with one backend ``ProxyClient``, connected before serving and held
for the proxy's life, handed to it as its ``client_factory``: FastMCP's documented "session reuse"
configuration (docs/servers/providers/proxy.mdx). ``create_proxy(target)``, the default, builds a
fresh backend client per request, in the era of the request's own client; over HTTP that is a
new MCP session per call. ``--fresh-sessions`` serves that default instead (not measured by
``bench.proxy_latency``; docs/benchmarks.md quotes one run of it). A stdio backend keeps its
process across those clients either way (``keep_alive``).

The backend is a stdio server, a child of this process: the fault server (``python -m
tests.fakes.fault_server``), or ``sys.executable`` with the arguments after ``--`` (``-- -m
bench._many_tools_server``); or, with ``--backend-url``, a streamable HTTP server.

``--backend-mode`` is the backend client's era: ``auto`` (default, as the aggregator's downstream
connections) or ``legacy`` (a ``ProxyClient``'s own default). Tools are exposed under their own
names (``echo``). Logging is at WARNING, as the fault server's. Over HTTP the listener is bound
with ``IPPROTO_TCP`` on 127.0.0.1 (``--port 0`` picks a free port), as the aggregator's and the
fault server's are, and ``LISTENING <port>`` goes to stderr once it listens.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Literal

import anyio
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport
from fastmcp.server import create_proxy
from fastmcp.server.providers.proxy import FastMCPProxy, ProxyClient

from tests.fakes import REPO_ROOT, fault_server_argv

if TYPE_CHECKING:
    from fastmcp import Client
    from fastmcp.client.transports import ClientTransport

__all__ = ["main"]

LOG_LEVEL = "WARNING"


def _listen(port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio turns Nagle off on accepted connections only then.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


async def serve(
    transport: Literal["stdio", "http"],
    port: int,
    backend_url: str | None,
    backend_mode: Literal["auto", "legacy"],
    backend_args: list[str],
    fresh_sessions: bool = False,
) -> None:
    """Connect the backend client, then serve the proxy until the front closes (stdio) or a signal (HTTP)."""
    backend_transport: ClientTransport
    if backend_url is None:
        backend_transport = StdioTransport(command=sys.executable, args=backend_args, cwd=str(REPO_ROOT))
    else:
        backend_transport = StreamableHttpTransport(backend_url)
    async with AsyncExitStack() as stack:
        if fresh_sessions:
            proxy = create_proxy(backend_transport, name="fastmcp-proxy")
        else:
            backend: ProxyClient[ClientTransport] = ProxyClient(backend_transport, mode=backend_mode)
            await stack.enter_async_context(backend)

            def shared_backend() -> Client[ClientTransport]:
                return backend

            proxy = FastMCPProxy(client_factory=shared_backend, name="fastmcp-proxy")
        if transport == "stdio":
            await proxy.run_stdio_async(show_banner=False, log_level=LOG_LEVEL)
            return
        sock = _listen(port)
        # Connections made from now on wait in the backlog until uvicorn accepts them.
        print(f"LISTENING {sock.getsockname()[1]}", file=sys.stderr, flush=True)
        await proxy.run_http_async(
            show_banner=False,
            transport="http",
            host="127.0.0.1",
            port=sock.getsockname()[1],
            path="/mcp",
            log_level=LOG_LEVEL,
            sockets=[sock],
        )


def main() -> None:
    """Parse the options and serve."""
    parser = argparse.ArgumentParser(prog="python -m bench._fastmcp_proxy", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--port", type=int, default=0, help="HTTP port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--backend-url", default=None, help="the fault server's streamable HTTP URL (default: stdio)")
    parser.add_argument("--backend-mode", choices=("auto", "legacy"), default="auto")
    parser.add_argument(
        "--fresh-sessions", action="store_true", help="FastMCP's default create_proxy(): a backend client per request"
    )
    parser.add_argument("backend_args", nargs="*", help="after --: the stdio backend's Python arguments")
    args = parser.parse_args()
    backend_args = list(args.backend_args) or fault_server_argv()
    # Stopped by SIGINT (as bench.proxy_latency stops its HTTP servers): no traceback for that.
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(
            serve, args.transport, args.port, args.backend_url, args.backend_mode, backend_args, args.fresh_sessions
        )


if __name__ == "__main__":
    main()
