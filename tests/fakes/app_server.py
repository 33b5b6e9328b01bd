"""A downstream MCP server with an app (MCP Apps and OpenAI Apps SDK keys), over stdio.

    python -m tests.fakes.app_server --label alpha [--legacy-only]

Every copy serves the same ``ui://widget/view.html`` (so two copies behind the aggregator
clash), with HTML, structured results and ``_meta`` that name ``--label``, so a test can tell
whose widget and whose results reach it:

- ``show_view(city)``: a tool with an app (``_meta.ui.resourceUri``, and the Apps SDK's
  ``openai/outputTemplate`` and invocation strings); its result carries ``structuredContent``,
  widget-only ``_meta`` (one app link inside) and a resource link to the widget;
- ``refresh_view()``: only the app may call it (``_meta.ui.visibility: ["app"]``);
- ``client_extensions()``: the extensions the connected client declared (what the aggregator
  passes down).

``--declare-only`` leaves out the app (its tools and resource) and declares the MCP Apps
extension in the server's capabilities instead. ``--legacy-only`` makes it a 2025-11-25
server (the client's capabilities come with the handshake); otherwise an SDK client speaks
2026-07-28 to it (they come with each request).
"""

from __future__ import annotations

import argparse
from typing import Any

import anyio
import mcp_types as types
from mcp.server import MCPServer
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import Context
from mcp.server.runner import serve_loop
from mcp.server.stdio import stdio_server

from tests.fakes import exit_served
from tests.fakes._fault_app import refuse_modern_era

VIEW_URI = "ui://widget/view.html"
APP_MIME_TYPE = "text/html;profile=mcp-app"
UI_EXTENSION = "io.modelcontextprotocol/ui"

RESOURCE_META: dict[str, Any] = {
    "ui": {
        "csp": {"connectDomains": ["https://api.example.com"], "resourceDomains": ["https://cdn.example.com"]},
        "domain": "widget.example.com",
        "permissions": {"clipboardWrite": {}},
        "prefersBorder": True,
    },
    "openai/widgetDescription": "A view of the weather",
}


def tool_meta(label: str) -> dict[str, Any]:
    """``show_view``'s ``_meta``, as the server lists it."""
    return {
        "ui": {"resourceUri": VIEW_URI},
        "ui/resourceUri": VIEW_URI,
        "openai/outputTemplate": VIEW_URI,
        "openai/widgetAccessible": True,
        "openai/toolInvocation/invoking": f"Asking {label}…",
        "openai/toolInvocation/invoked": f"{label} answered",
    }


def result_meta(label: str, city: str) -> dict[str, Any]:
    """``show_view``'s result ``_meta``: data for the widget only, one app link among it."""
    return {
        "widget": {"label": label, "city": city, "series": [1, 2.5, None, {"deep": ["ü", True]}]},
        "openai/outputTemplate": VIEW_URI,
        "openai/widgetSessionId": f"session-{label}",
    }


def html(label: str) -> str:
    """The widget's HTML: it says whose it is."""
    return f'<!doctype html><html><body><div id="app" data-label="{label}">{label} view</div></body></html>'


async def serve_legacy_only(lowlevel: Server[Any]) -> None:
    """Serve stdio in the 2025-11-25 era only (as the fault server's ``--legacy-only`` does)."""
    lowlevel.middleware.append(refuse_modern_era)
    async with stdio_server() as (read_stream, write_stream), lowlevel.lifespan(lowlevel) as state:
        await serve_loop(
            lowlevel,
            read_stream,
            write_stream,
            lifespan_state=state,
            init_options=lowlevel.create_initialization_options(),
        )


def build(label: str, *, with_app: bool = True) -> MCPServer:
    server = MCPServer(f"apps-{label}")

    @server.tool()
    def client_extensions(ctx: Context) -> dict[str, Any]:
        """The extensions the connected client declared in its capabilities."""
        capabilities = ctx.session.client_capabilities
        return {"extensions": (capabilities.extensions if capabilities is not None else None) or {}}

    if not with_app:
        server._lowlevel_server.extensions[UI_EXTENSION] = {}  # pyright: ignore[reportPrivateUsage]
        return server

    @server.tool(meta=tool_meta(label))
    def show_view(city: str) -> types.CallToolResult:
        """Show the weather of a city in the app."""
        return types.CallToolResult(
            content=[
                types.TextContent(text=f"{label}: weather of {city}"),
                types.ResourceLink(uri=VIEW_URI, name="view", mime_type=APP_MIME_TYPE),
            ],
            structured_content={"label": label, "city": city},
            _meta=result_meta(label, city),
        )

    @server.tool(meta={"ui": {"resourceUri": VIEW_URI, "visibility": ["app"]}})
    def refresh_view() -> types.CallToolResult:
        """Refresh the view (the app calls this; the model never does)."""
        return types.CallToolResult(
            content=[types.TextContent(text=f"{label} refreshed")],
            structured_content={"label": label, "refreshed": True},
        )

    @server.resource(VIEW_URI, name="view", mime_type=APP_MIME_TYPE, meta=RESOURCE_META)
    def view() -> str:
        return html(label)

    return server


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--label", required=True)
    parser.add_argument("--legacy-only", action="store_true")
    parser.add_argument("--declare-only", action="store_true")
    args = parser.parse_args()
    server = build(args.label, with_app=not args.declare_only)
    if args.legacy_only:
        anyio.run(serve_legacy_only, server._lowlevel_server)  # pyright: ignore[reportPrivateUsage]
    else:
        server.run()
    exit_served()
