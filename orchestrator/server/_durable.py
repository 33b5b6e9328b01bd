"""What the server lends durable runs: principals as the journal keeps them, and resumed runs' plans.

A run is bound to the principal that started it (client and subject); its grant goes with it,
so a run resumed by another process calls no more than it could when it began. A resumed run
is compiled from the workflow it began with against the catalogue served now: a tool that
went away, or no longer fits, fails the run with the compiler's located messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator import workflow
from orchestrator.auth import EVERYTHING, OWNER, Grant, Principal
from orchestrator.runs import RunHooks
from orchestrator.server._composites import PoolInvoker, run_result_to_tool_result
from orchestrator.store import RunPrincipal

if TYPE_CHECKING:
    from collections.abc import Callable

    import mcp_types as types

    from orchestrator.downstream import DownstreamPool
    from orchestrator.store import RunRecord
    from orchestrator.workflow import RunResult, ToolInvoker, WorkflowPlan

__all__ = ["ServerRunHooks", "principal_of_run", "run_principal"]

_STARTUP_WAIT = 60.0
"""Seconds a resumed run waits for the servers' first start before it is compiled anyway."""


def run_principal(principal: Principal) -> RunPrincipal:
    """How the journal keeps ``principal``: client, subject and grant (``None`` for everything)."""
    grant = None if principal.grant.everything else tuple(principal.grant.as_list())
    return RunPrincipal(principal.client_id, principal.subject, grant)


def principal_of_run(record: RunRecord) -> Principal:
    """The principal a resumed run acts for: who started it, with the grant it had then."""
    kept = record.principal
    if kept.client_id is None and kept.grant is None:
        return OWNER
    grant = EVERYTHING if kept.grant is None else Grant.of(kept.grant)
    kind = "token" if (kept.client_id or "").startswith("token:") else "oauth"
    return Principal(kind=kind, client_id=kept.client_id, subject=kept.subject, grant=grant)


class ServerRunHooks(RunHooks):
    """Resumes runs against the live pool, through the same checks as a call (grants, audit)."""

    def __init__(
        self,
        pool: DownstreamPool,
        wrap_for: Callable[[Principal, str], Callable[[ToolInvoker], ToolInvoker] | None],
    ) -> None:
        """
        Args:
            pool: The downstream servers.
            wrap_for: The checks around a run's step calls for a principal and composite.
        """
        self._pool = pool
        self._wrap_for = wrap_for

    async def resumable_plan(self, record: RunRecord) -> WorkflowPlan:
        """The run's workflow as it began, compiled against the catalogue served now.

        Raises:
            WorkflowDefinitionError: It no longer fits (a tool is gone, withheld or changed).
        """
        await self._pool.wait_settled(_STARTUP_WAIT, initial_only=True)
        label = f"run {record.id} ({record.workflow})"
        spec = workflow.load_workflow_text(record.workflow_snapshot, label)
        return workflow.compile_workflow(spec, label, catalog=self._pool.catalog)

    def resumed_invoker(self, record: RunRecord) -> ToolInvoker:
        """The pool, through the run's principal's grant and the audit log."""
        invoker: ToolInvoker = PoolInvoker(self._pool)
        wrap = self._wrap_for(principal_of_run(record), record.workflow)
        return invoker if wrap is None else wrap(invoker)

    def outcome(self, result: RunResult) -> types.CallToolResult:
        """The composite's result, as a synchronous call returns it."""
        return run_result_to_tool_result(result)
