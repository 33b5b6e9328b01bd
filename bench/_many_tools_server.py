"""A stdio MCP server listing N real-shaped tools (the bundled snapshot's, repeated), for the catalogue bench.

    python -m bench._many_tools_server --tools 10000

Its tools are the 184 real definitions of ``bench/data/tool_catalogue.json`` cycled and
numbered (``read_file_0042``) until there are ``--tools`` of them. The list is built once at
start, so a ``tools/list`` costs what the SDK's server spends answering it, as any server's.
``echo(text)`` is one more tool, to call.
"""

from __future__ import annotations

import argparse
import json
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel.server import Server
from mcp.server.stdio import stdio_server

DATA = Path(__file__).resolve().parent / "data" / "tool_catalogue.json"


def real_tools(count: int) -> list[types.Tool]:
    """``count`` tools made from the snapshot's definitions, each with a unique name."""
    snapshot: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
    definitions = [tool for server in snapshot["servers"] for tool in server["tools"]]
    return [
        types.Tool.model_validate({**definition, "name": f"{definition['name']}_{index:04d}"})
        for index, definition in enumerate(islice(cycle(definitions), count))
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tools", type=int, default=10_000)
    count = parser.parse_args().tools
    listed = types.ListToolsResult(tools=real_tools(count))
    echo = types.Tool(name="echo", input_schema={"type": "object", "properties": {"text": {"type": "string"}}})
    listed.tools.append(echo)

    async def list_tools(_ctx: Any, _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return listed

    async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        text = str((params.arguments or {}).get("text", ""))
        return types.CallToolResult(content=[types.TextContent(text=text)])

    server: Server[Any] = Server("many-tools", on_list_tools=list_tools, on_call_tool=call_tool)

    async def serve() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(serve)


if __name__ == "__main__":
    main()
