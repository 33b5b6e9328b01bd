"""Pictures of a compiled workflow: Mermaid (for Markdown) and Graphviz DOT. Pure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Iterator

    from orchestrator.workflow._plan import StepPlan, WorkflowPlan

__all__ = ["GraphFormat", "render_graph"]

GraphFormat = Literal["mermaid", "dot"]

_ENDS = ("input", "output")
"""The two nodes that are not steps: where the run's input enters and its output leaves."""


def _details(step: StepPlan) -> list[str]:
    lines = [f"{step.server}.{step.tool}"]
    if step.condition is not None:
        lines.append(f"if {step.condition.text}")
    if step.for_each is not None:
        parallel = f", {step.max_parallel} at a time" if step.max_parallel else ""
        lines.append(f"for each {step.item_name} in {step.for_each.text}{parallel}")
    if step.retry is not None:
        lines.append(f"retry up to {step.retry.max_attempts}x")
    if step.on_error == "continue":
        lines.append("on error: continue")
    return lines


def _edges(plan: WorkflowPlan) -> Iterator[tuple[str, str]]:
    """Every arrow, in both formats alike: input to each step without needs, each need to its
    step, and each step nothing depends on to output."""
    for step in plan.steps.values():
        if not step.needs:
            yield "input", step.id
        yield from ((need, step.id) for need in step.needs)
        if not step.dependents:
            yield step.id, "output"


def _mermaid_text(text: str) -> str:
    # Mermaid labels are quoted; quotes and brackets inside must be entities.
    for char, entity in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("`", "#96;")):
        text = text.replace(char, entity)
    return text


def _mermaid(plan: WorkflowPlan) -> str:
    out = ["flowchart LR", '  input(["input"])']
    for step in plan.steps.values():
        label = "<br/>".join(_mermaid_text(line) for line in [f"<b>{step.id}</b>", *_details(step)])
        label = label.replace("#lt;b#gt;", "<b>").replace("#lt;/b#gt;", "</b>")
        shape = (
            ("{{", "}}") if step.condition is not None else ("[[", "]]") if step.for_each is not None else ("[", "]")
        )
        out.append(f'  {step.id}{shape[0]}"{label}"{shape[1]}')
    out.append('  output(["output"])')
    out.extend(f"  {start} --> {end}" for start, end in _edges(plan))
    return "\n".join(out) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _dot_node(node: str) -> str:
    return node if node in _ENDS else f'"{node}"'


def _dot(plan: WorkflowPlan) -> str:
    out = [f'digraph "{_dot_text(plan.name)}" {{', "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    out.append("  input [shape=oval]; output [shape=oval];")
    for step in plan.steps.values():
        label = "\\n".join(_dot_text(line) for line in [step.id, *_details(step)])
        shape = "diamond" if step.condition is not None else "box3d" if step.for_each is not None else "box"
        out.append(f'  "{step.id}" [label="{label}", shape={shape}];')
    out.extend(f"  {_dot_node(start)} -> {_dot_node(end)};" for start, end in _edges(plan))
    out.append("}")
    return "\n".join(out) + "\n"


def render_graph(plan: WorkflowPlan, graph_format: GraphFormat = "mermaid") -> str:
    """The DAG of ``plan`` (steps, tools, conditions, fan-out, retries) as Mermaid or DOT text."""
    return _mermaid(plan) if graph_format == "mermaid" else _dot(plan)
