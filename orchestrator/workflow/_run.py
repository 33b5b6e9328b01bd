"""What a run talks to and what it reports: the invoker protocol, events, results, input checks.

Pure module: no I/O. ``ToolInvoker`` is the executor's only way out; the server adapts its
downstream pool to it, tests adapt a plain function.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from orchestrator._schema_messages import describe_errors

if TYPE_CHECKING:
    from collections.abc import Mapping

    import mcp_types as types

    from orchestrator.errors import WorkflowExecutionError
    from orchestrator.workflow._plan import WorkflowPlan

__all__ = [
    "IDEMPOTENCY_KEY_META",
    "INPUT_STEP",
    "OUTPUT_STEP",
    "RUN_STEP",
    "EventKind",
    "RunResult",
    "RunStatus",
    "StepCall",
    "StepEvent",
    "StepEventFn",
    "StepRun",
    "StepStatus",
    "ToolInvoker",
    "new_run_id",
    "step_call_meta",
    "step_call_of",
    "validate_input",
]

IDEMPOTENCY_KEY_META = "io.github.mcp-orchestrator/idempotency-key"
"""``_meta`` key of every call: ``<run id>:<step id>:<item index>``, the same for every attempt."""
INPUT_STEP = "(input)"
"""``step_id`` of the error of a run whose arguments were invalid."""
OUTPUT_STEP = "(output)"
"""``step_id`` of the error of a run whose output value failed or did not match ``output.schema``."""
RUN_STEP = "(run)"
"""``step_id`` of the error of a run that timed out with no step in flight."""


@dataclass(frozen=True, slots=True)
class StepCall:
    """Which run, step and for-each item a call belongs to (its idempotency key, read back)."""

    run_id: str
    step_id: str
    index: int


def step_call_meta(run_id: str, step_id: str, index: int) -> dict[str, Any]:
    """The ``_meta`` every attempt of one step call carries: its idempotency key."""
    return {IDEMPOTENCY_KEY_META: f"{run_id}:{step_id}:{index}"}


def step_call_of(meta: Mapping[str, Any] | None) -> StepCall | None:
    """The run, step and item of a call from its ``_meta`` (``step_call_meta``'s); ``None`` if it has no key."""
    key = (meta or {}).get(IDEMPOTENCY_KEY_META)
    if not isinstance(key, str):
        return None
    run_id, _, rest = key.partition(":")
    step_id, _, index = rest.rpartition(":")
    if not (run_id and step_id and index.isdigit()):
        return None
    return StepCall(run_id, step_id, int(index))


StepStatus = Literal["succeeded", "failed", "skipped", "cancelled", "unknown_outcome"]
RunStatus = Literal["succeeded", "failed", "interrupted", "declined"]
EventKind = Literal["started", "approval", "retrying", "finished"]
_MAX_PROBLEMS = 20


class ToolInvoker(Protocol):
    """Calls one downstream tool; the executor's only way out."""

    async def call_tool(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        timeout: float | None,
        meta: dict[str, Any] | None,
    ) -> types.CallToolResult:
        """Call ``tool`` (the server's own name) on ``server``.

        Args:
            server: Config key of the downstream server.
            tool: The server's original tool name.
            arguments: The rendered ``with`` object.
            timeout: Seconds for this attempt; ``None`` for the server's configured timeout.
            meta: ``_meta`` to send (holds the idempotency key).

        Raises:
            DownstreamError: ``DownstreamUnavailable``, ``DownstreamTimeout`` or ``DownstreamToolError``.
        """
        ...


@dataclass(frozen=True, slots=True)
class StepEvent:
    """Something happened to a step.

    Attributes:
        run_id: The run.
        step_id: The step.
        kind: ``started``; ``approval`` (the step waits for the user's approval before its call);
            ``retrying`` (an attempt failed and a wait of ``delay`` begins);
            ``finished`` (the step reached ``status``; progress is ``finished_steps``/``total_steps``).
        status: The final status, for ``finished``; else ``None``.
        attempt: Attempts made so far by the step (all items of a for_each).
        finished_steps: Steps finished in the run so far, this one included when finished.
        total_steps: Steps in the workflow.
        error: The failure, for ``retrying`` and failed ``finished`` events.
        delay: Seconds of the coming wait, for ``retrying``.
    """

    run_id: str
    step_id: str
    kind: EventKind
    status: StepStatus | None
    attempt: int
    finished_steps: int
    total_steps: int
    error: str | None = None
    delay: float | None = None


class StepEventFn(Protocol):
    """Awaited for every ``StepEvent``; steps cancelled by a failing run send none."""

    async def __call__(self, event: StepEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class StepRun:
    """How one step went.

    Attributes:
        status: ``succeeded | failed | skipped | cancelled | unknown_outcome``; a step that never
            started because the run failed first is ``cancelled`` with no attempts.
        result: The tool's result (a list of them for a for_each); ``default`` if skipped or failed.
        error: What went wrong, or ``None``.
        error_class: ``transport_error``, ``timeout``, ``rate_limited``, ``mcp_error:<code>``,
            ``tool_error``, ``output_invalid``, ``expression_error``, ``too_many_items`` or ``None``.
        attempts: Calls made (all items of a for_each, retries included).
        started: ``anyio.current_time()`` when the step started, or ``None``.
        finished: ``anyio.current_time()`` when it finished, or ``None``.
    """

    status: StepStatus
    result: Any = None
    error: str | None = None
    error_class: str | None = None
    attempts: int = 0
    started: float | None = None
    finished: float | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, if both are known."""
        return None if self.started is None or self.finished is None else self.finished - self.started


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run went.

    Attributes:
        run_id: The run id (also in every idempotency key).
        status: ``succeeded``; ``failed``; ``interrupted`` (a step that was in flight when an
            earlier process died may not be repeated: someone must decide); ``declined`` (an
            approval was declined or not answered in time).
        output: The output value (validated against ``output.schema``), or ``None`` if failed.
        steps: Every step of the plan, in topological order.
        error: Why the run failed (names the run and the step), or ``None``.
        catalogue_version: The version of the served catalogue the run was made against, when
            the caller said (the server does; see ``orchestrator.catalog.ExposedCatalogue``).
    """

    run_id: str
    status: RunStatus
    output: Any
    steps: Mapping[str, StepRun]
    error: WorkflowExecutionError | None = None
    catalogue_version: str | None = None


def new_run_id() -> str:
    """A fresh run id: 32 lowercase hex characters (a random UUID), the one format of every run id."""
    return uuid.uuid4().hex


def validate_input(plan: WorkflowPlan, arguments: Mapping[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """Apply the input schema's defaults to ``arguments``, then validate them.

    Defaults are filled from ``properties.<name>.default``, recursively into objects that are
    present; the caller's mapping is not changed.

    Returns:
        The arguments with defaults, and what is wrong with them (``where: message``; empty if valid).
    """
    applied = cast("dict[str, Any]", _with_defaults(plan.input_schema, dict(arguments or {})))
    return applied, describe_errors(plan.input_validator, applied, _MAX_PROBLEMS)


def _with_defaults(schema: object, value: object) -> object:
    if not isinstance(schema, dict) or not isinstance(value, dict):
        return value
    properties: object = cast("dict[str, object]", schema).get("properties")
    filled = dict(cast("dict[str, object]", value))
    if not isinstance(properties, dict):
        return filled
    for name, subschema in cast("dict[str, object]", properties).items():
        if name in filled:
            filled[name] = _with_defaults(subschema, filled[name])
        elif isinstance(subschema, dict) and "default" in subschema:
            filled[name] = copy.deepcopy(cast("dict[str, object]", subschema)["default"])
    return filled
