"""The plan of one run for one input, worked out without running anything (``run --dry-run``).

Pure module: no I/O, no invoker, no downstream call. Expressions are evaluated by the same
``Expression``/``Template`` code the executor uses, against a context where the result of
every step that would run is a stand-in (``_Unknown``) that raises ``_Pending`` as soon as an
expression looks into it. So an expression that never reads a pending step (``input.x &&
steps.a.result``, with ``input.x`` false) is decided exactly as the executor would, and one
that does is reported as waiting on the steps it reads.

A step whose ``if`` is decided false is skipped: its dependents still run (as in a real run)
and see its ``default`` as ``steps.<id>.result`` and ``skipped`` as its status, so what they
read of it is known too.

A step with an approval (``approve``, or ``approve_destructive`` on a tool that may be
destructive) says so, with the value of its ``show`` where the input decides it: the question
a real run would ask before the call. A skipped step asks nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, cast

from orchestrator.workflow._expr import ExpressionError, truthy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from orchestrator.workflow._expr import Expression, References, Template
    from orchestrator.workflow._plan import StepPlan, WorkflowPlan

__all__ = ["ConditionState", "DryRun", "DryRunApproval", "DryRunStep", "Pending", "dry_run"]

ConditionState = Literal["none", "true", "false", "undecided", "error"]
"""``none``: the step has no ``if``; ``error``: evaluating it fails on this input."""


@dataclass(frozen=True, slots=True)
class Pending:
    """A part of the arguments (or an expression) that needs results of steps not yet run.

    Attributes:
        expression: The template as written, e.g. ``${{ steps.tickets.result.items[0].id }}``.
        waits_on: The steps whose results it reads (empty when only the current item is missing).
    """

    expression: Any
    waits_on: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """``{"pending": <expression>, "waits_on": [...]}``."""
        return {"pending": self.expression, "waits_on": list(self.waits_on)}


@dataclass(frozen=True, slots=True)
class DryRunApproval:
    """The approval a run would ask for before a step's call.

    Attributes:
        message: The question.
        destructive: Asked because the tool may be destructive (``approve_destructive``).
        shows: Whether the step has ``show``.
        shown: The value of ``show`` where the input decides it, ``Pending`` where it reads
            results of steps, ``None`` without ``show`` (or when it fails: see the step's ``error``).
    """

    message: str
    destructive: bool
    shows: bool
    shown: Any

    def as_json(self) -> dict[str, Any]:
        """``{"message": ..., "destructive": ..., "show": ...}`` (``show`` only when the step has one)."""
        data: dict[str, Any] = {"message": self.message, "destructive": self.destructive}
        if self.shows:
            data["show"] = _as_json(self.shown)
        return data


@dataclass(frozen=True, slots=True)
class DryRunStep:
    """What a run with this input would do at one step.

    Attributes:
        id: The step id.
        tool: ``server.tool`` (the server's own tool name).
        wave: Dependency depth: 0 for steps without ``needs``, else one more than its deepest need.
        needs: The steps it waits for.
        condition: Whether its ``if`` is decided (``true``/``false``), ``undecided`` or absent.
        condition_waits_on: The steps an undecided ``if`` reads.
        skipped: The ``if`` is decided false: no call; dependents see ``default``.
        arguments: The ``with`` arguments, evaluated where the input suffices; ``Pending``
            where they read results of steps (``None`` for a skipped step, or a for_each step
            whose items are known: see ``item_arguments``).
        waits_on: The steps whose results the arguments read.
        for_each: ``True`` for a fan-out step.
        item_count: Items of a fan-out when its list is known from the input, else ``None``.
        items_wait_on: The steps its list is read from, when it is not known.
        item_arguments: The arguments of each item, when the list is known.
        error: Why this step would fail on this input (a failing expression, a list too long).
        approval: What the user would be asked before the call, or ``None`` (none, or skipped).
    """

    id: str
    tool: str
    wave: int
    needs: tuple[str, ...]
    condition: ConditionState
    condition_waits_on: tuple[str, ...]
    skipped: bool
    arguments: Any
    waits_on: tuple[str, ...]
    for_each: bool
    item_count: int | None
    items_wait_on: tuple[str, ...]
    item_arguments: tuple[Any, ...]
    error: str | None
    approval: DryRunApproval | None = None

    def as_json(self) -> dict[str, Any]:
        """The step as JSON (``Pending`` parts as ``{"pending": ..., "waits_on": [...]}``)."""
        data: dict[str, Any] = {
            "id": self.id,
            "tool": self.tool,
            "wave": self.wave,
            "needs": list(self.needs),
            "condition": self.condition,
            "skipped": self.skipped,
        }
        if self.condition_waits_on:
            data["condition_waits_on"] = list(self.condition_waits_on)
        if self.approval is not None:
            data["approval"] = self.approval.as_json()
        if not self.skipped:
            if self.for_each:
                data["for_each"] = {"item_count": self.item_count, "waits_on": list(self.items_wait_on)}
                if self.item_count is not None:
                    data["item_arguments"] = [_as_json(a) for a in self.item_arguments]
            if not (self.for_each and self.item_count is not None):
                data["arguments"] = _as_json(self.arguments)
            data["waits_on"] = list(self.waits_on)
        if self.error is not None:
            data["error"] = self.error
        return data


@dataclass(frozen=True, slots=True)
class DryRun:
    """The plan of one run: its waves and what each step would do.

    Attributes:
        workflow: The composite's name.
        input: The input, defaults applied.
        waves: Step ids by wave, in the order the eager scheduler could start them.
        steps: Each step by id, in topological order.
    """

    workflow: str
    input: dict[str, Any]
    waves: tuple[tuple[str, ...], ...]
    steps: Mapping[str, DryRunStep]

    def as_json(self) -> dict[str, Any]:
        """The whole plan as JSON."""
        return {
            "workflow": self.workflow,
            "input": self.input,
            "waves": [list(wave) for wave in self.waves],
            "steps": [step.as_json() for step in self.steps.values()],
        }


def dry_run(plan: WorkflowPlan, arguments: Mapping[str, Any]) -> DryRun:
    """Work out what running ``plan`` on ``arguments`` would do, without calling anything.

    Args:
        plan: A compiled workflow.
        arguments: The validated input, defaults applied (see ``validate_input``).

    Returns:
        The waves and, per step, its decided or undecided condition and its arguments as far
        as the input determines them.
    """
    waves = _waves(plan)
    wave_of = {step_id: index for index, wave in enumerate(waves) for step_id in wave}
    known: dict[str, dict[str, Any]] = {}  # views of skipped steps: all a dry run can know of a result
    steps: dict[str, DryRunStep] = {}
    for step in plan.steps.values():
        context = _Context(dict(arguments), {s: known.get(s, _Unknown(s)) for s in step.ancestors})
        result = _step(step, wave_of[step.id], context)
        if result.skipped:
            known[step.id] = {"result": step.default, "status": "skipped", "error": None, "attempts": 0}
        steps[step.id] = result
    return DryRun(plan.name, dict(arguments), waves, steps)


def _waves(plan: WorkflowPlan) -> tuple[tuple[str, ...], ...]:
    depth: dict[str, int] = {}
    for step in plan.steps.values():  # topological order: needs come first
        depth[step.id] = 1 + max((depth[need] for need in step.needs), default=-1)
    count = max(depth.values(), default=-1) + 1
    return tuple(tuple(s for s in plan.steps if depth[s] == wave) for wave in range(count))


class _Pending(Exception):
    """An expression looked into a result that is not known before the run."""


class _Unknown:
    """Stands for a step's view (``steps.<id>``) whose result only a real run gives.

    JMESPath reads objects through ``get``, compares with ``==`` (truthiness too) and type-checks
    function arguments by class, so every way of looking inside raises ``_Pending`` or fails
    type checks (an ``ExpressionError``, taken as pending too while a stand-in is read).
    """

    __slots__ = ("step_id",)

    def __init__(self, step_id: str) -> None:
        self.step_id = step_id

    def get(self, key: str) -> Any:
        raise _Pending(self.step_id)

    def __eq__(self, other: object) -> bool:
        raise _Pending(self.step_id)

    def __hash__(self) -> int:
        return hash(self.step_id)

    def __len__(self) -> int:
        raise _Pending(self.step_id)

    def __iter__(self) -> Iterator[Any]:
        raise _Pending(self.step_id)

    def values(self) -> Any:
        raise _Pending(self.step_id)

    def keys(self) -> Any:
        raise _Pending(self.step_id)

    def items(self) -> Any:
        raise _Pending(self.step_id)


@dataclass(frozen=True, slots=True)
class _Context:
    """What expressions of one step may read: the input and its ancestors' views (known or not)."""

    arguments: dict[str, Any]
    steps: dict[str, Any]

    def base(self) -> dict[str, Any]:
        return {"input": self.arguments, "steps": self.steps}

    def unknown_steps(self) -> frozenset[str]:
        return frozenset(s for s, view in self.steps.items() if isinstance(view, _Unknown))

    def waits_on(self, refs: References) -> tuple[str, ...]:
        unknown = self.unknown_steps()
        read = unknown if refs.all_steps or refs.whole_context else refs.steps & unknown
        return tuple(sorted(read))


class _Undetermined(Exception):
    """A value depends on a step's result (a signal, not an error)."""


def _evaluate(evaluate: Callable[[Mapping[str, Any]], Any], context: Mapping[str, Any], reads_unknown: bool) -> Any:
    """The value, unless it depends on a stand-in (``reads_unknown``: the expression reads one).

    Raises:
        _Undetermined: The expression read a pending result.
        ExpressionError: It fails on this input whatever the steps return.
    """
    try:
        value = evaluate(context)
    except _Pending:
        raise _Undetermined from None
    except ExpressionError:
        if reads_unknown:  # a stand-in fails type checks where the real result might not
            raise _Undetermined from None
        raise
    if _holds_unknown(value):
        raise _Undetermined
    return value


def _holds_unknown(value: Any) -> bool:
    if isinstance(value, _Unknown):
        return True
    if isinstance(value, dict):
        return any(_holds_unknown(v) for v in cast("dict[str, Any]", value).values())
    if isinstance(value, list):
        return any(_holds_unknown(v) for v in cast("list[Any]", value))
    return False


def _step(step: StepPlan, wave: int, context: _Context) -> DryRunStep:
    planned = _call(step, wave, context)
    if step.approval is None or planned.skipped or planned.condition == "error":
        return planned
    approval = step.approval
    if approval.show is None:
        return replace(planned, approval=DryRunApproval(approval.message, approval.destructive, False, None))
    base = context.base()
    waits = context.waits_on(approval.show.references())
    error: str | None = None
    try:
        shown = _evaluate(approval.show.evaluate, base, bool(waits))
    except _Undetermined:
        shown = Pending(f"${{{{ {approval.show.text} }}}}", waits)
    except ExpressionError as exc:
        # Asked before the call, so a run fails here before its arguments are rendered.
        shown, error = None, f"approve.show: {exc}"
    return replace(
        planned,
        approval=DryRunApproval(approval.message, approval.destructive, True, shown),
        error=error or planned.error,
    )


def _call(step: StepPlan, wave: int, context: _Context) -> DryRunStep:
    tool = f"{step.server}.{step.tool}"
    base = context.base()
    condition: ConditionState = "none"
    condition_waits: tuple[str, ...] = ()
    error: str | None = None
    if step.condition is not None:
        condition, condition_waits, error = _decide(step.condition, base, context)
    skipped = condition == "false"
    if skipped or condition == "error":
        return DryRunStep(
            step.id, tool, wave, step.needs, condition, condition_waits, skipped, None, (), step.for_each is not None,
            None, (), (), error,
        )  # fmt: skip
    arguments_waits = context.waits_on(step.arguments.references())
    if step.for_each is None:
        arguments, error = _render(step.arguments, base, context)
        return DryRunStep(
            step.id, tool, wave, step.needs, condition, condition_waits, False, arguments, arguments_waits, False,
            None, (), (), error,
        )  # fmt: skip
    return _fan_out(step, tool, wave, (condition, condition_waits), context, arguments_waits)


def _decide(
    condition: Expression, base: Mapping[str, Any], context: _Context
) -> tuple[ConditionState, tuple[str, ...], str | None]:
    try:
        value = _evaluate(condition.evaluate, base, bool(context.waits_on(condition.references())))
    except _Undetermined:
        return "undecided", context.waits_on(condition.references()), None
    except ExpressionError as exc:
        return "error", (), f"if: {exc}"
    return ("true" if truthy(value) else "false"), (), None


def _fan_out(
    step: StepPlan,
    tool: str,
    wave: int,
    condition: tuple[ConditionState, tuple[str, ...]],
    context: _Context,
    arguments_waits: tuple[str, ...],
) -> DryRunStep:
    assert step.for_each is not None
    base = context.base()
    items_waits = context.waits_on(step.for_each.references())

    def undetermined_items(error: str | None) -> DryRunStep:
        # Without the list, an argument that reads the item (or its index) waits for it, unevaluated.
        absent = frozenset({step.item_name, "index"})
        arguments, render_error = _render(step.arguments, base, context, absent=absent)
        return DryRunStep(
            step.id, tool, wave, step.needs, *condition, False, arguments, arguments_waits, True, None, items_waits,
            (), error or render_error,
        )  # fmt: skip

    try:
        items = _evaluate(step.for_each.evaluate, base, bool(items_waits))
    except _Undetermined:
        return undetermined_items(None)
    except ExpressionError as exc:
        return undetermined_items(f"for_each: {exc}")
    if not isinstance(items, list):
        return undetermined_items(f"for_each must yield a list, not {type(items).__name__}")
    values = cast("list[Any]", items)
    if len(values) > step.max_items:
        return undetermined_items(f"for_each yields {len(values)} items, more than max_items ({step.max_items})")
    rendered: list[Any] = []
    error: str | None = None
    for index, item in enumerate(values):
        item_context = {**base, step.item_name: item, "index": index}
        arguments, item_error = _render(step.arguments, item_context, context)
        rendered.append(arguments)
        error = error or (f"item {index}: {item_error}" if item_error else None)
    return DryRunStep(
        step.id, tool, wave, step.needs, *condition, False, None, arguments_waits, True, len(values), (),
        tuple(rendered), error,
    )  # fmt: skip


def _render(
    template: Template,
    context: Mapping[str, Any],
    scope: _Context,
    path: str = "with",
    absent: frozenset[str] = frozenset(),
) -> tuple[Any, str | None]:
    """The template's value where it is known, ``Pending`` parts where not, and an error if one fails.

    ``absent`` names values the context lacks (a for_each item not known yet): parts reading
    them are pending without being evaluated, since a missing name would read as null.
    """
    if template.kind in {"object", "array"}:
        children = template.fields.items() if template.kind == "object" else enumerate(template.items)
        values: list[tuple[str | int, Any]] = []
        for key, child in children:
            where = f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]"
            value, error = _render(child, context, scope, where, absent)
            if error is not None:
                return None, error
            values.append((key, value))
        if template.kind == "object":
            return {str(key): value for key, value in values}, None
        return [value for _, value in values], None
    references = template.references()
    if absent and (references.names & absent or references.whole_context):
        return Pending(template.source(), scope.waits_on(references)), None
    try:
        return _evaluate(template.render, context, bool(scope.waits_on(references))), None
    except _Undetermined:
        return Pending(template.source(), scope.waits_on(template.references())), None
    except ExpressionError as exc:
        return None, f"{path}: {exc}"


def _as_json(value: Any) -> Any:
    if isinstance(value, Pending):
        return value.as_json()
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in cast("dict[str, Any]", value).items()}
    if isinstance(value, list):
        return [_as_json(v) for v in cast("list[Any]", value)]
    return value
