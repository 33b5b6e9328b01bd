"""Composite tools: compiled workflows served next to the catalogue's tools.

Each workflow file is one tool. Its wiring is checked against the live catalogue whenever
that changes: a composite whose servers or tools are missing (or no longer fit) is
withdrawn from the tool list with a logged reason, and comes back once it is whole again.
A run reports one progress notification per finished step and returns its run id in the
result's ``_meta``; cancelling the call cancels every downstream call in flight. Failures
become error results through ``_errors`` only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import mcp_types as types

from orchestrator import workflow
from orchestrator.errors import (
    DownstreamUnavailable,
    InvalidArgumentsError,
    UnknownToolError,
    WorkflowDefinitionError,
    WorkflowExecutionError,
    WorkflowUnavailable,
)
from orchestrator.runs import RunRequest
from orchestrator.server._errors import tool_error_result
from orchestrator.store import RunPrincipal
from orchestrator.tracing import current_trace_id
from orchestrator.workflow import RUN_STEP

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from mcp.shared.dispatcher import ProgressFnT

    from orchestrator.catalog import Catalog
    from orchestrator.config import OrchestratorConfig
    from orchestrator.downstream import DownstreamPool, UpstreamPeer, Withheld
    from orchestrator.runs import RunManager
    from orchestrator.store import RunRecord
    from orchestrator.workflow import (
        Approver,
        RunResult,
        StepEvent,
        StepEventFn,
        ToolInvoker,
        WorkflowPlan,
        WorkflowSpec,
    )

__all__ = [
    "RUN_META_KEY",
    "Composites",
    "PoolInvoker",
    "progress_reporter",
    "run_result_to_tool_result",
    "step_invoker",
]

logger = logging.getLogger(__name__)

RUN_META_KEY = "io.github.mcp-orchestrator/run"
"""``_meta`` key of a composite's result: its ``run_id``, ``trace_id``, ``status``, ``catalogue_version``
and, unless it succeeded, ``failed_step``."""


class PoolInvoker:
    """The workflow executor's way out: calls downstream tools through the pool."""

    def __init__(self, pool: DownstreamPool, peer: UpstreamPeer | None = None) -> None:
        self._pool = pool
        self._peer = peer

    async def call_tool(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        timeout: float | None,
        meta: dict[str, Any] | None,
    ) -> types.CallToolResult:
        """Call ``tool`` on ``server``.

        Raises:
            DownstreamError: The server is unknown, unavailable, timed out or answered an error.
        """
        try:
            downstream = self._pool.server(server)
        except UnknownToolError:
            raise DownstreamUnavailable(server, "no such server is configured") from None
        return await downstream.call_tool(tool, arguments, timeout=timeout, meta=meta, peer=self._peer)


def step_invoker(
    pool: DownstreamPool, peer: UpstreamPeer | None, wrap_invoker: Callable[[ToolInvoker], ToolInvoker] | None
) -> ToolInvoker:
    """How a run's steps call their tools: the pool, through ``wrap_invoker`` (grants, audit) when given."""
    invoker: ToolInvoker = PoolInvoker(pool, peer)
    return invoker if wrap_invoker is None else wrap_invoker(invoker)


def progress_reporter(progress: ProgressFnT | None) -> StepEventFn:
    """A run's step events as the caller's progress notifications: one per finished step."""

    async def on_event(event: StepEvent) -> None:
        if progress is not None and event.kind == "finished":
            await progress(event.finished_steps, event.total_steps, f"{event.step_id}: {event.status}")

    return on_event


def run_result_to_tool_result(result: RunResult, trace_id: str | None = None) -> types.CallToolResult:
    """The composite's ``tools/call`` result for a finished run: an error unless it succeeded.

    The run's ``status`` (``succeeded``, ``failed``, ``declined``: an approval was refused or
    not answered, ``interrupted``) is in ``_meta``, with the step that stopped it.
    """
    run: dict[str, Any] = {"run_id": result.run_id, "trace_id": trace_id, "status": result.status}
    if result.catalogue_version is not None:
        run["catalogue_version"] = result.catalogue_version
    meta: dict[str, Any] = {RUN_META_KEY: run}
    if result.status != "succeeded":
        error = result.error or WorkflowExecutionError(result.run_id, RUN_STEP, "the run failed")
        meta[RUN_META_KEY]["failed_step"] = error.step_id
        return tool_error_result(error, meta)
    output = result.output
    structured = cast("dict[str, Any]", output) if isinstance(output, dict) else None
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(output, ensure_ascii=False, default=str))],
        structured_content=structured,
        _meta=meta,
    )


def _held_back_steps(spec: WorkflowSpec, withheld: Mapping[str, tuple[Withheld, ...]]) -> list[str]:
    """Why each step of ``spec`` that calls a held-back tool cannot run, in the gate's words."""
    reasons = {(server, item.name): item.reason for server, items in withheld.items() for item in items}
    servers = frozenset(withheld)
    notes: list[str] = []
    for step_id, step in spec.steps.items():
        server, tool = workflow.split_tool_reference(step.tool, servers)
        reason = reasons.get((server, tool))
        if reason is not None:
            notes.append(f"steps.{step_id}.tool: server {server!r}: {reason}")
    return notes


@dataclass(frozen=True, slots=True)
class _Source:
    spec: WorkflowSpec
    path: str


class Composites:
    """The composite tools of a config, kept in step with the live catalogue."""

    def __init__(self, sources: Sequence[tuple[WorkflowSpec, str]]) -> None:
        self._sources = {spec.name: _Source(spec, path) for spec, path in sources}
        self.active: dict[str, WorkflowPlan] = {}
        self.withdrawn: dict[str, list[str]] = {name: ["waiting for the catalogue"] for name in self._sources}
        # Why each composite was last said to be withdrawn: quiet refreshes (during start-up)
        # record the reason without telling, so the first loud one still tells it.
        self._told: dict[str, list[str]] = {}
        # The active composites as tools, made again only when they change: the served
        # catalogue's version is cached on this tuple's identity.
        self._tools: tuple[types.Tool, ...] = ()

    @classmethod
    def from_config(cls, config: OrchestratorConfig) -> Composites:
        """The composites of ``config``'s workflow files, each compiled on its own first.

        Raises:
            WorkflowDefinitionError: A file is missing or invalid; lists every problem of every file.
        """
        if not config.workflows:
            return cls([])  # nothing to compile: the compiler is not even loaded
        specs = workflow.load_workflows(config.workflows)
        workflow.compile_workflows(specs)
        return cls([(spec, spec.source.path if spec.source else spec.name) for spec in specs])

    @property
    def names(self) -> frozenset[str]:
        """Every composite name, active or not (reserved in the catalogue)."""
        return frozenset(self._sources)

    def tools(self) -> tuple[types.Tool, ...]:
        """The active composites as MCP tools (the same tuple until they change)."""
        return self._tools

    def refresh(
        self, catalog: Catalog, *, quiet: bool = False, withheld: Mapping[str, tuple[Withheld, ...]] | None = None
    ) -> bool:
        """Recompile every composite against ``catalog``; returns whether the active set changed.

        Args:
            catalog: The catalogue now served.
            quiet: Log withdrawals at debug level (while servers are still starting).
            withheld: Server key -> its definitions the trust gate holds back: a step calling
                one is withdrawn with the gate's reason (what changed, how to approve), not
                only "no such tool".
        """
        before = {name: plan.as_tool() for name, plan in self.active.items()}
        for name, source in self._sources.items():
            try:
                plan = workflow.compile_workflow(source.spec, source.path, catalog=catalog)
            except WorkflowDefinitionError as exc:
                problems = [*exc.problems, *_held_back_steps(source.spec, withheld or {})]
                if name in self.active or (not quiet and self._told.get(name) != problems):
                    logger.warning(
                        "composite %r withdrawn: its wiring does not fit the catalogue:\n%s",
                        name,
                        "\n".join(problems),
                    )
                    self._told[name] = problems
                self.active.pop(name, None)
                self.withdrawn[name] = problems
                continue
            if name in self.withdrawn and name not in self.active:
                logger.info("composite %r is available", name)
            self.withdrawn.pop(name, None)
            self._told.pop(name, None)
            self.active[name] = plan
        after = {name: plan.as_tool() for name, plan in self.active.items()}
        if before == after:
            return False
        self._tools = tuple(after.values())
        return True

    def plan(self, name: str) -> WorkflowPlan | None:
        """The active plan of ``name``."""
        return self.active.get(name)

    @property
    def specs(self) -> dict[str, WorkflowSpec]:
        """Every composite's workflow as read from its file, by name, active or not."""
        return {name: source.spec for name, source in self._sources.items()}

    def prepare(self, name: str, arguments: Mapping[str, Any]) -> tuple[WorkflowPlan, dict[str, Any]]:
        """The active plan of composite ``name`` and ``arguments`` with defaults, checked.

        Raises:
            UnknownToolError: ``name`` is not a composite.
            WorkflowUnavailable: The composite is withdrawn (its tools do not fit the catalogue).
            InvalidArgumentsError: ``arguments`` do not fit its input schema; nothing ran.
        """
        plan = self.active.get(name)
        if plan is None:
            if name in self.withdrawn:
                raise WorkflowUnavailable(name, self.withdrawn[name])
            raise UnknownToolError("tool", name)
        applied, problems = workflow.validate_input(plan, arguments)
        if problems:
            raise InvalidArgumentsError(name, problems)
        return plan, applied

    async def call(
        self,
        pool: DownstreamPool,
        name: str,
        arguments: dict[str, Any],
        *,
        progress: ProgressFnT | None = None,
        peer: UpstreamPeer | None = None,
        wrap_invoker: Callable[[ToolInvoker], ToolInvoker] | None = None,
        catalogue_version: str | None = None,
        runs: RunManager | None = None,
        principal: RunPrincipal | None = None,
        approver: Approver | None = None,
    ) -> types.CallToolResult:
        """Run composite ``name``; a failed run comes back as an error result naming run and step.

        ``wrap_invoker`` puts checks around every step's call (grants, audit records);
        ``catalogue_version`` (the served catalogue's) goes on the run's span and in its result.
        With ``runs``, the run is journalled for ``principal`` (resumed if this process dies).
        ``approver`` asks the caller before approval steps (without one, a run that has them
        fails before calling anything).

        Raises:
            UnknownToolError: ``name`` is not a composite.
            WorkflowUnavailable: The composite is withdrawn (its tools do not fit the catalogue).
            InvalidArgumentsError: ``arguments`` do not fit its input schema; nothing ran.
            StoreError: The run cannot be journalled; nothing ran.
        """
        plan, applied = self.prepare(name, arguments)

        on_event = progress_reporter(progress)
        invoker = step_invoker(pool, peer, wrap_invoker)
        if runs is None:
            result = await workflow.execute(
                plan, applied, invoker, on_event=on_event, catalogue_version=catalogue_version, approver=approver
            )
        else:
            request = RunRequest(
                plan,
                applied,
                principal or RunPrincipal(None),
                invoker,
                catalogue_version,
                approver=approver,
                on_event=on_event,
            )
            result = await runs.run(request)
        # The run's spans are children of the current (tools/call) span: same trace.
        return run_result_to_tool_result(result, current_trace_id())

    async def start(
        self,
        pool: DownstreamPool,
        name: str,
        arguments: dict[str, Any],
        *,
        runs: RunManager,
        principal: RunPrincipal,
        wrap_invoker: Callable[[ToolInvoker], ToolInvoker] | None = None,
        catalogue_version: str | None = None,
        approver: Approver | None = None,
    ) -> RunRecord:
        """Start composite ``name`` as a durable run in the background (an MCP task); returns it journalled.

        Raises:
            UnknownToolError: ``name`` is not a composite.
            WorkflowUnavailable: The composite is withdrawn (its tools do not fit the catalogue).
            InvalidArgumentsError: ``arguments`` do not fit its input schema; nothing ran.
            StoreError: The run cannot be journalled; nothing ran.
        """
        plan, applied = self.prepare(name, arguments)
        invoker = step_invoker(pool, None, wrap_invoker)
        return await runs.start(RunRequest(plan, applied, principal, invoker, catalogue_version, approver=approver))
