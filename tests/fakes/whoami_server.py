"""A downstream MCP server that tells who its client says it is (``clientInfo``), over stdio.

    python -m tests.fakes.whoami_server

Its one tool, ``client_info``, returns ``{name, version}`` of the connected client, or
nulls when the client sent none.
"""

from __future__ import annotations

from typing import TypedDict

from mcp.server import MCPServer
from mcp.server.mcpserver import Context

from tests.fakes import exit_served

server = MCPServer("whoami")


class ClientInfo(TypedDict):
    """What the client said it is."""

    name: str | None
    version: str | None


@server.tool()
def client_info(ctx: Context) -> ClientInfo:
    """The name and version the connected client gave."""
    params = ctx.session.client_params
    if params is None:
        return {"name": None, "version": None}
    return {"name": params.client_info.name, "version": params.client_info.version}


if __name__ == "__main__":
    server.run()
    exit_served()
