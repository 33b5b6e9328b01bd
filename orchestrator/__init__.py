"""mcp-orchestrator: one MCP meta-connector for many MCP servers.

It connects as a client to many downstream MCP servers, merges their tools, prompts and
resources under provider-safe names, adds composite workflow tools, and serves the result
as one MCP server. Embed it with ``Aggregator``::

    from orchestrator import Aggregator, load_config

    async with Aggregator(load_config("orchestrator.yaml")) as aggregator:
        result = await aggregator.call("analytics_get_metrics", {"service": "api"})

The names below are the public API; everything in a ``_module`` is private. The heavy
parts (the MCP server, the workflow engine) load on first use of a name that needs them,
so a process that only imports ``orchestrator.tracing`` or ``orchestrator.errors`` (an
example server, say) does not pay for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator._lazy import lazy_names
from orchestrator._version import __version__
from orchestrator.errors import (
    CatalogError,
    ConfigError,
    ConfigNotFoundError,
    DefinitionWithheld,
    DownstreamCircuitOpen,
    DownstreamError,
    DownstreamLoginRequired,
    DownstreamNotConnected,
    DownstreamOutputInvalid,
    DownstreamTimeout,
    DownstreamToolError,
    DownstreamUnavailable,
    InputRoundExpired,
    InternalError,
    InvalidArgumentsError,
    OrchestratorError,
    RateLimitedError,
    RateLimitsUnavailable,
    RecordingError,
    RunAlreadyOver,
    RunLeaseLost,
    RunNotResumable,
    SecretKeyError,
    StepNotGranted,
    StoreError,
    UnknownToolError,
    UsageError,
    WorkflowDefinitionError,
    WorkflowError,
    WorkflowExecutionError,
    WorkflowUnavailable,
)

if TYPE_CHECKING:
    from orchestrator._aggregator import Aggregator
    from orchestrator.config import OrchestratorConfig, find_config_path, load_config
    from orchestrator.downstream import ServerStatus
    from orchestrator.server import ReloadRecord
    from orchestrator.workflow import RunResult, StepEvent, WorkflowPlan, WorkflowSpec

__all__ = [
    "Aggregator",
    "CatalogError",
    "ConfigError",
    "ConfigNotFoundError",
    "DefinitionWithheld",
    "DownstreamCircuitOpen",
    "DownstreamError",
    "DownstreamLoginRequired",
    "DownstreamNotConnected",
    "DownstreamOutputInvalid",
    "DownstreamTimeout",
    "DownstreamToolError",
    "DownstreamUnavailable",
    "InputRoundExpired",
    "InternalError",
    "InvalidArgumentsError",
    "OrchestratorConfig",
    "OrchestratorError",
    "RateLimitedError",
    "RateLimitsUnavailable",
    "RecordingError",
    "ReloadRecord",
    "RunAlreadyOver",
    "RunLeaseLost",
    "RunNotResumable",
    "RunResult",
    "SecretKeyError",
    "ServerStatus",
    "StepEvent",
    "StepNotGranted",
    "StoreError",
    "UnknownToolError",
    "UsageError",
    "WorkflowDefinitionError",
    "WorkflowError",
    "WorkflowExecutionError",
    "WorkflowPlan",
    "WorkflowSpec",
    "WorkflowUnavailable",
    "__version__",
    "find_config_path",
    "load_config",
]

_LAZY: dict[str, str] = {
    "Aggregator": "orchestrator._aggregator",
    "OrchestratorConfig": "orchestrator.config",
    "find_config_path": "orchestrator.config",
    "load_config": "orchestrator.config",
    "ServerStatus": "orchestrator.downstream",
    "ReloadRecord": "orchestrator.server",
    "RunResult": "orchestrator.workflow",
    "StepEvent": "orchestrator.workflow",
    "WorkflowPlan": "orchestrator.workflow",
    "WorkflowSpec": "orchestrator.workflow",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__, globals())
