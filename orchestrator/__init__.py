"""mcp-orchestrator: one MCP meta-connector for many MCP servers.

It connects as a client to many downstream MCP servers, merges their tools, prompts and
resources under provider-safe names, and serves the result as one MCP server.
"""

from orchestrator._version import __version__

__all__ = ["__version__"]
