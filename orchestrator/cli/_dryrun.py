"""What ``orchestrator run --dry-run`` prints: a run's plan for one input, wave by wave.

Pure formatting of a ``DryRun``; working the plan out is ``orchestrator.workflow.dry_run``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from orchestrator import workflow

if TYPE_CHECKING:
    from orchestrator.workflow import DryRun, DryRunStep

__all__ = ["render_dry_run"]


def render_dry_run(plan: DryRun) -> str:
    """The plan as text: each wave's steps with their tool, condition and arguments."""
    lines = [f"dry run of {plan.workflow} with input {_json(plan.input)}: no tool is called"]
    for index, wave in enumerate(plan.waves):
        lines.append(f"wave {index + 1}:")
        for step_id in wave:
            lines += _step_lines(plan.steps[step_id])
    return "\n".join(lines) + "\n"


def _step_lines(step: DryRunStep) -> list[str]:
    needs = f" (after {', '.join(step.needs)})" if step.needs else ""
    lines = [f"  {step.id}: {step.tool}{needs}"]
    if step.condition == "undecided":
        lines.append(f"    if: undecided until {', '.join(step.condition_waits_on)}")
    elif step.condition in {"true", "false"}:
        lines.append(f"    if: {step.condition}" + (" -> skipped; dependents see its default" if step.skipped else ""))
    if step.approval is not None:
        why = " (the tool may be destructive: approve_destructive)" if step.approval.destructive else ""
        lines.append(f"    asks for approval: {_json(step.approval.message)}{why}")
        if step.approval.shows and step.approval.shown is not None:
            lines.append(f"    shows: {_arguments(step.approval.shown)}")
    if step.error is not None:
        lines.append(f"    error: {step.error}")
    if step.skipped or step.condition == "error":
        return lines
    if step.for_each:
        if step.item_count is None:
            lines.append(f"    for_each: unknown until {', '.join(step.items_wait_on) or 'the run'}")
        else:
            lines.append(f"    for_each: {step.item_count} item{'' if step.item_count == 1 else 's'}")
            lines += [f"    [{i}] {_arguments(a)}" for i, a in enumerate(step.item_arguments)]
            return lines
    lines.append(f"    with: {_arguments(step.arguments)}")
    if step.waits_on:
        lines.append(f"    waits on: {', '.join(step.waits_on)}")
    return lines


def _arguments(value: Any) -> str:
    """JSON, with each pending part written as its expression and the steps it waits on."""
    if isinstance(value, workflow.Pending):
        expression = value.expression if isinstance(value.expression, str) else _json(value.expression)
        waits = f" (waits on {', '.join(value.waits_on)})" if value.waits_on else " (per item)"
        return f"<{expression}{waits}>"
    if isinstance(value, dict):
        fields = cast("dict[str, Any]", value)
        return "{" + ", ".join(f"{_json(k)}: {_arguments(v)}" for k, v in fields.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_arguments(v) for v in cast("list[Any]", value)) + "]"
    return _json(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
