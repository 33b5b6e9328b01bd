"""The upstream MCP server: serves the merged catalogue over stdio or streamable HTTP.

Owns the MCP handlers, the mapping of orchestrator errors to the wire (in ``_errors``),
forwarding of progress, cancellation, logs, sampling and elicitation between the upstream
client and the downstream servers, and HTTP security (loopback binding, Origin/Host
checks, bearer tokens). It does not connect to downstream servers itself.
"""

from orchestrator.server._app import OrchestratorServer
from orchestrator.server._composites import RUN_META_KEY, Composites, PoolInvoker, run_result_to_tool_result
from orchestrator.server._http import HttpSecurity, serve_http
from orchestrator.server._stdio import serve_stdio

__all__ = [
    "RUN_META_KEY",
    "Composites",
    "HttpSecurity",
    "OrchestratorServer",
    "PoolInvoker",
    "run_result_to_tool_result",
    "serve_http",
    "serve_stdio",
]
