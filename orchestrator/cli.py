"""Command line: the composition root.

Reads the config, configures logging (to stderr: stdout belongs to the MCP protocol when
serving over stdio), starts the downstream pool and runs one command. The only module
that wires the layers together.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import anyio
import mcp_types as types

from orchestrator.config import OrchestratorConfig, find_config_path, load_config
from orchestrator.downstream import DownstreamPool
from orchestrator.errors import OrchestratorError, UnknownToolError
from orchestrator.server import HttpSecurity, OrchestratorServer, serve_http, serve_stdio

__all__ = ["main"]

logger = logging.getLogger("orchestrator")

_SETTLE_TIMEOUT = 30.0
"""How long one-shot commands wait for every server's first start attempt."""


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING - 10 * verbosity if verbosity else logging.INFO
    logging.basicConfig(
        level=max(level, logging.DEBUG),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The SDK and HTTP libraries are chatty at INFO; their warnings still show.
    for noisy in ("mcp", "httpx", "httpx2", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, level))


def _load(path: str | None) -> OrchestratorConfig:
    return load_config(find_config_path(Path(path) if path else None))


# ---------------------------------------------------------------------- serve


async def _watch_signals(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            logger.info("received %s; shutting down", signal.Signals(signum).name)
            scope.cancel()
            return


async def _serve(config: OrchestratorConfig, transport: str, host: str, port: int) -> int:
    security = None
    if transport == "http":
        security = HttpSecurity.from_config(config.serve, host, os.environ, str(config.source))
    async with DownstreamPool.running(config) as pool, OrchestratorServer(pool) as server:
        if transport == "stdio":
            # stdio_server restores the descriptors when done; nothing else may touch stdout.
            async with anyio.create_task_group() as tg:
                tg.start_soon(_watch_signals, tg.cancel_scope)
                await serve_stdio(server)
                logger.info("client closed stdin; shutting down")
                tg.cancel_scope.cancel()
        else:
            assert security is not None

            def announce(url: str) -> None:
                print(f"mcp-orchestrator listening on {url}", file=sys.stderr, flush=True)

            await serve_http(server, security, port=port, path=config.serve.path, on_listening=announce)
    return 0


# ---------------------------------------------------------------------- tools


async def _tools(config: OrchestratorConfig, as_json: bool) -> int:
    async with DownstreamPool.running(config) as pool:
        await pool.wait_settled(_SETTLE_TIMEOUT)
        catalog = pool.catalog
        statuses = pool.statuses()
    descriptions = {tool.name: tool.description or "" for tool in catalog.tools}
    rows = [
        {
            "name": mapping.exposed,
            "server": mapping.server,
            "tool": mapping.original,
            "description": descriptions.get(mapping.exposed, ""),
        }
        for mapping in catalog.mappings
        if mapping.kind == "tool"
    ]
    rows.sort(key=lambda row: row["name"])
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        width = max((len(r["name"]) for r in rows), default=4)
        for row in rows:
            print(f"{row['name']:<{width}}  {row['server']}.{row['tool']}")
        notes = [m for m in catalog.mappings if m.notes]
        if notes:
            print("\nNames changed to fit the model-API rules:", file=sys.stderr)
            for m in notes:
                print(f"  {m.exposed}  <-  {m.server}.{m.original}  ({', '.join(m.notes)})", file=sys.stderr)
    for status in statuses:
        if status.state != "ready":
            print(f"warning: server {status.server!r} is not available: {status.last_error}", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------- call


def _print_result(result: types.CallToolResult) -> None:
    if result.structured_content is not None:
        print(json.dumps(result.structured_content, indent=2, ensure_ascii=False))
        return
    for block in result.content:
        if isinstance(block, types.TextContent):
            print(block.text)
        else:
            print(block.model_dump_json(by_alias=True, exclude_none=True))


async def _call(config: OrchestratorConfig, name: str, arguments: dict[str, Any]) -> int:
    async with DownstreamPool.running(config) as pool:
        await pool.wait_settled(_SETTLE_TIMEOUT)
        server = OrchestratorServer(pool)
        try:
            result = await server.call(name, arguments)
        except UnknownToolError as exc:
            print(f"error: {exc} (see `orchestrator tools`)", file=sys.stderr)
            return 2
    _print_result(result)
    return 1 if result.is_error else 0


# ----------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="One MCP meta-connector: many MCP servers served as one, with composite workflow tools.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (repeatable)")
    commands = parser.add_subparsers(dest="command", required=True)

    def with_config(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "-c",
            "--config",
            help="config file (default: $ORCHESTRATOR_CONFIG, then ./orchestrator.yaml)",
        )
        return sub

    serve = with_config(commands.add_parser("serve", help="serve the merged catalogue as one MCP server"))
    serve.add_argument("--transport", choices=["stdio", "http"], help="default: serve.transport, else stdio")
    serve.add_argument("--host", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default 8765; 0 picks a free one)")

    tools = with_config(commands.add_parser("tools", help="list the merged tools and their name mapping"))
    tools.add_argument("--json", action="store_true", help="machine-readable output")

    call = with_config(commands.add_parser("call", help="call one tool by its exposed name and print the result"))
    call.add_argument("name", help="exposed tool name (see `orchestrator tools`)")
    call.add_argument("--args", default="{}", help="arguments as a JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        config = _load(args.config)
        if args.command == "serve":
            transport = args.transport or config.serve.transport
            host = args.host or config.serve.host
            port = args.port if args.port is not None else config.serve.port
            return anyio.run(_serve, config, transport, host, port)
        if args.command == "tools":
            return anyio.run(_tools, config, args.json)
        if args.command == "call":
            try:
                arguments = json.loads(args.args)
            except json.JSONDecodeError as exc:
                print(f"error: --args is not valid JSON: {exc}", file=sys.stderr)
                return 2
            if not isinstance(arguments, dict):
                print("error: --args must be a JSON object", file=sys.stderr)
                return 2
            return anyio.run(_call, config, args.name, cast(dict[str, Any], arguments))
    except OrchestratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
