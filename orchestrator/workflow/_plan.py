"""The compiled, immutable form of a workflow: what the executor runs and the server exposes.

Pure module: no I/O. Built only by ``compile_workflow``; every expression in it is already
compiled and every reference already checked, so running it needs no more parsing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import mcp_types as types

from orchestrator._locations import LineMap, Problem, format_problems
from orchestrator.workflow._wiring import (
    AnnotatedStep,
    argument_problems,
    derive_annotations,
    find_tool,
    is_idempotent_tool,
    name_problems,
    retry_problems,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from jsonschema.protocols import Validator

    from orchestrator.catalog import Catalog
    from orchestrator.workflow._expr import Expression, Template
    from orchestrator.workflow._spec import AnnotationsSpec, RetrySpec, WorkflowSpec

__all__ = ["ApprovalPlan", "RetryPolicy", "StepPlan", "WorkflowPlan", "catalog_problems"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait before repeating a failed call (Temporal semantics).

    Attributes:
        max_attempts: Attempts in all, the first included.
        initial_interval: Seconds before the second attempt.
        backoff_coefficient: Growth factor of successive waits.
        max_interval: Longest single wait, in seconds.
        jitter: ``full`` waits uniformly in [0, delay] instead of the delay.
        retry_on: Error classes that are retried.
    """

    max_attempts: int
    initial_interval: float
    backoff_coefficient: float
    max_interval: float
    jitter: Literal["none", "full"]
    retry_on: frozenset[str]

    @classmethod
    def from_spec(cls, spec: RetrySpec) -> RetryPolicy:
        """The policy a ``retry:`` block declares, with Temporal's default ``max_interval``."""
        return cls(
            spec.max_attempts,
            spec.initial_interval,
            spec.backoff_coefficient,
            spec.effective_max_interval,
            spec.jitter,
            frozenset(spec.retry_on),
        )

    def delay(self, failed_attempts: int) -> float:
        """The wait after ``failed_attempts`` failures, before jitter: min(max, initial * coef^(n-1))."""
        exponent = max(failed_attempts - 1, 0)
        try:
            return min(self.max_interval, self.initial_interval * self.backoff_coefficient**exponent)
        except OverflowError:
            return self.max_interval

    def retries(self, error_class: str) -> bool:
        """Whether failures of ``error_class`` are retried (``mcp_error`` covers every ``mcp_error:<code>``)."""
        return error_class in self.retry_on or (error_class.startswith("mcp_error:") and "mcp_error" in self.retry_on)


@dataclass(frozen=True, slots=True)
class ApprovalPlan:
    """A step's approval: asked of the user before its tool is called.

    Attributes:
        message: What to ask.
        show: Evaluated for the run and shown with the question (what is about to happen), or ``None``.
        destructive: Asked because the tool is destructive and the workflow says ``approve_destructive``.
    """

    message: str
    show: Expression | None = None
    destructive: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class StepPlan:
    """One compiled step.

    Attributes:
        id: The step id.
        server: Config key of the downstream server.
        tool: The server's own (original) tool name.
        arguments: The ``with`` template.
        needs: Steps that must be finished first (the parents).
        dependents: Steps that need this one (the children).
        ancestors: Every step reachable through ``needs``; the only ones expressions may read.
        descendants: Every step that (transitively) needs this one.
        reads: The steps its expressions read (``steps.<id>``), all among ``ancestors``: the
            only records the executor puts in its context.
        condition: ``if``; falsy skips the step.
        for_each: Expression yielding the list of items, or ``None`` for one call.
        item_name: Name of the current item in ``arguments``.
        max_parallel: Most items in flight (``None``: only ``limits.max_parallel`` applies).
        max_items: Most items allowed.
        timeout: Seconds per attempt (``None``: the downstream's own timeout).
        deadline: Seconds for the whole step, every item and attempt included.
        retry: The effective retry policy, or ``None`` to call once.
        idempotent: Whether a call may be repeated (``None``: unknown, treated as no).
        on_error: ``fail`` fails the run; ``continue`` gives dependents ``default``.
        default: What dependents see when the step is skipped or fails under ``continue``.
        declared_retry: The step itself declares ``retry`` (rather than inheriting ``defaults``).
        declared_idempotent: The step's own ``idempotent`` flag.
        tool_annotations: The tool's annotations, when compiled against a catalogue.
        result_validator: Checks ``structuredContent`` against the tool's ``outputSchema``, if any.
        approval: Asked of the user before the tool is called, or ``None``.
    """

    id: str
    server: str
    tool: str
    arguments: Template
    needs: tuple[str, ...]
    dependents: tuple[str, ...]
    ancestors: frozenset[str]
    descendants: frozenset[str]
    reads: frozenset[str]
    condition: Expression | None
    for_each: Expression | None
    item_name: str
    max_parallel: int | None
    max_items: int
    timeout: float | None
    deadline: float | None
    retry: RetryPolicy | None
    idempotent: bool | None
    on_error: Literal["fail", "continue"]
    default: Any
    declared_retry: bool
    declared_idempotent: bool | None
    tool_annotations: types.ToolAnnotations | None
    result_validator: Validator | None
    approval: ApprovalPlan | None = None


@dataclass(frozen=True, slots=True, eq=False)
class WorkflowPlan:
    """A compiled workflow: one composite tool.

    Attributes:
        name: The composite tool name.
        description: The tool description.
        path: The file it was compiled from (for messages).
        spec: What the file declared.
        input_schema: The tool's ``inputSchema`` (the file's ``input``, ``default`` keywords kept).
        output_schema: The tool's ``outputSchema``, or ``None``.
        output_value: Template of the returned value.
        annotations: Derived conservatively from the steps, then the file's claims.
        steps: Steps by id, in a topological order (file order among independent steps).
        timeout: Seconds a run may take.
        max_parallel: Most downstream calls in flight during a run.
        input_validator: Validates arguments (after defaults are applied).
        output_validator: Validates the output value, when ``output_schema`` is set.
        lines: Line of each key of the file, for messages.
    """

    name: str
    description: str
    path: str
    spec: WorkflowSpec
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    output_value: Template
    annotations: types.ToolAnnotations
    steps: Mapping[str, StepPlan]
    timeout: float
    max_parallel: int
    input_validator: Validator
    output_validator: Validator | None
    lines: LineMap

    @property
    def order(self) -> tuple[str, ...]:
        """Step ids in topological order."""
        return tuple(self.steps)

    @property
    def tool_references(self) -> frozenset[tuple[str, str]]:
        """Every (server, original tool name) the workflow calls."""
        return frozenset((step.server, step.tool) for step in self.steps.values())

    def as_tool(self) -> types.Tool:
        """The composite as an MCP tool definition (name, description, schemas, annotations)."""
        return types.Tool(
            name=self.name,
            description=self.description,
            input_schema=self.input_schema,
            output_schema=self.output_schema,
            annotations=self.annotations,
        )

    def check_against(self, catalog: Catalog, reserved_names: Iterable[str] = ()) -> list[str]:
        """Re-check the wiring against a (changed) catalogue; empty when the composite is still whole.

        Checks tool references, retry on non-idempotent tools, arguments against input schemas,
        annotation claims and the composite name. Recompiling with ``compile_workflow`` also
        refreshes the derived annotations and result schemas; this only answers "still valid?".

        Returns:
            Problems as ``path:line: key.path: message``.
        """
        problems = catalog_problems(self.name, self.steps.values(), self.spec.annotations, catalog, reserved_names)
        return format_problems(self.path, problems, self.lines)


def catalog_problems(
    name: str,
    steps: Iterable[StepPlan],
    claim: AnnotationsSpec | None,
    catalog: Catalog,
    reserved_names: Iterable[str],
    unavailable: frozenset[str] = frozenset(),
) -> list[Problem]:
    """Every wiring problem of compiled steps against ``catalog`` (``unavailable``: servers configured but down)."""
    problems = name_problems(name, catalog, reserved_names)
    annotated: list[AnnotatedStep] = []
    for step in steps:
        tool, missing = find_tool(step.id, step.server, step.tool, catalog, unavailable)
        problems += missing
        if tool is not None:
            problems += retry_problems(step, tool) + argument_problems(step, tool)
        idempotent = step.declared_idempotent
        if idempotent is None and tool is not None:
            idempotent = is_idempotent_tool(tool)
        annotated.append(AnnotatedStep(step.id, tool.annotations if tool else None, idempotent))
    problems += derive_annotations(annotated, claim, checked=True)[1]
    return problems
