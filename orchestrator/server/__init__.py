"""The upstream MCP server: serves the merged catalogue over stdio or streamable HTTP.

Owns the MCP handlers, the composite tools (workflow plans kept in step with the live
catalogue, run through ``orchestrator.workflow``), validation of call arguments against a
tool's ``inputSchema`` before forwarding, the mapping of orchestrator errors to the wire (in
``_errors``), forwarding of progress, cancellation, logs, sampling, elicitation and roots
between the upstream client and the downstream servers (as input-required rounds for
2026-07-28 clients), MCP tasks over durable runs (the 2025-11-25 task methods and the
2026-07-28 tasks extension, ``_task_methods``), HTTP security (loopback binding, Origin/Host
checks, bearer tokens), health and status endpoints, and live reload of a changed config.
It does not connect to downstream servers itself, nor read config files (it is handed a
function that does).
"""

from orchestrator.server._access import CallControls
from orchestrator.server._app import CATALOGUE_VERSION_META_KEY, TRACE_META_KEY, OrchestratorServer
from orchestrator.server._composites import RUN_META_KEY, Composites, PoolInvoker, run_result_to_tool_result
from orchestrator.server._errors import ERROR_META_KEY
from orchestrator.server._http import PROBE_PATHS, STATUS_PATH, HttpSecurity, bind_socket, http_app, serve_http
from orchestrator.server._http_auth import HttpAuth, http_auth, resource_metadata_url, resource_url_for
from orchestrator.server._plans import RUN_PLAN_TOOL_NAME, reserved_tool_names
from orchestrator.server._reload import Loaded, LoadFn, Reloader, ReloadRecord
from orchestrator.server._replica_feed import ReplicaFeed
from orchestrator.server._replicas import ROUND_OWNER_PURPOSE, ReplicaMark
from orchestrator.server._search_mode import META_TOOL_NAMES
from orchestrator.server._status import StatusReporter, is_ready
from orchestrator.server._stdio import serve_stdio
from orchestrator.server._workers import WorkerSeat, write_consent_key

__all__ = [
    "CATALOGUE_VERSION_META_KEY",
    "ERROR_META_KEY",
    "META_TOOL_NAMES",
    "PROBE_PATHS",
    "ROUND_OWNER_PURPOSE",
    "RUN_META_KEY",
    "RUN_PLAN_TOOL_NAME",
    "STATUS_PATH",
    "TRACE_META_KEY",
    "CallControls",
    "Composites",
    "HttpAuth",
    "HttpSecurity",
    "LoadFn",
    "Loaded",
    "OrchestratorServer",
    "PoolInvoker",
    "ReloadRecord",
    "Reloader",
    "ReplicaFeed",
    "ReplicaMark",
    "StatusReporter",
    "WorkerSeat",
    "bind_socket",
    "http_app",
    "http_auth",
    "is_ready",
    "reserved_tool_names",
    "resource_metadata_url",
    "resource_url_for",
    "run_result_to_tool_result",
    "serve_http",
    "serve_stdio",
    "write_consent_key",
]
