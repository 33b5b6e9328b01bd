"""The command line every example server shares: ``--transport stdio|http|sse --port N``.

Owns argument parsing, transport selection and wrapping the run in tracing (configured
from the ``OTEL_*`` variables, see ``_tracing``), nothing else. HTTP binds the loopback
address only: these servers have no authentication and are meant for local demos.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from mcp.server import MCPServer

from examples.servers._tracing import traced

__all__ = ["LOOPBACK_HOST", "run_server"]

LOOPBACK_HOST = "127.0.0.1"


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, got {port}")
    return port


def run_server(server: MCPServer, *, prog: str, default_port: int, argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve ``server`` until the client goes away (stdio) or Ctrl-C (HTTP).

    Spans are exported when the ``OTEL_*`` variables ask for it, and flushed when the
    server stops (stdin closed, Ctrl-C, SIGTERM under uvicorn).

    Args:
        server: The server to run.
        prog: Program name shown in ``--help``, e.g. ``python -m examples.servers.tracker``.
        default_port: HTTP port used when ``--port`` is not given.
        argv: Arguments to parse instead of ``sys.argv[1:]``.
    """
    parser = argparse.ArgumentParser(prog=prog, description=server.description)
    parser.add_argument(
        "--transport",
        choices=("stdio", "http", "sse"),
        default="stdio",
        help="stdio (default), streamable HTTP, or legacy SSE (GET /sse) on 127.0.0.1",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=default_port,
        help=f"HTTP port (default {default_port}; 0 picks a free one, printed on stderr)",
    )
    args = parser.parse_args(argv)
    with traced(server.name):
        if args.transport == "stdio":
            server.run()
        elif args.transport == "sse":
            server.run(transport="sse", host=LOOPBACK_HOST, port=args.port)
        else:
            server.run(transport="streamable-http", host=LOOPBACK_HOST, port=args.port)
