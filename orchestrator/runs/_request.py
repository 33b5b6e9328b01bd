"""What starting a durable run takes, and what the server lends the manager: light values only.

Kept apart from the manager, which loads the state database's modules, so the server can
name them on every start without that cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

    import mcp_types as types

    from orchestrator.store import RunPrincipal, RunRecord
    from orchestrator.workflow import Approver, RunResult, StepEventFn, ToolInvoker, WorkflowPlan

__all__ = ["RunHooks", "RunRequest"]


@dataclass(frozen=True, slots=True)
class RunRequest:
    """A run to start.

    Attributes:
        plan: The compiled workflow.
        arguments: Its arguments, validated and with defaults applied.
        principal: Who starts it: only they may see or cancel it.
        invoker: Where its steps' calls go (grants and audit already around it).
        catalogue_version: The served catalogue's version, recorded with the run.
        approver: Asks the user before approval steps, or ``None``.
        on_event: Told as steps start, retry and finish (progress), or ``None``.
    """

    plan: WorkflowPlan
    arguments: Mapping[str, Any]
    principal: RunPrincipal
    invoker: ToolInvoker
    catalogue_version: str | None = None
    approver: Approver | None = None
    on_event: StepEventFn | None = None


class RunHooks(Protocol):
    """What the server lends the manager to resume a run no live request is waiting on."""

    async def resumable_plan(self, record: RunRecord) -> WorkflowPlan:
        """The run's workflow as it began, compiled against the catalogue now served.

        Waits until the servers have started.

        Raises:
            WorkflowDefinitionError: It no longer fits the catalogue (a tool is gone or changed).
        """
        ...

    def resumed_invoker(self, record: RunRecord) -> ToolInvoker:
        """Where a resumed run's calls go, checked against its principal's grants as they are now."""
        ...

    def outcome(self, result: RunResult) -> types.CallToolResult:
        """The tool result a finished run returns (and a task's result gives)."""
        ...
