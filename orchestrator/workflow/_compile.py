"""Compile a ``WorkflowSpec`` into an immutable ``WorkflowPlan``; the only home of networkx.

Pure module: no I/O. Every problem of a file is collected before raising, each as
``path:line: key.path: message``: cycles (named), ``needs`` on unknown steps, expressions
that do not compile or read a step that is not an ancestor, invalid schemas, a reserved
composite name, and, given a catalogue, unknown servers or tools, ``retry`` on a call that
may not be repeated, ``with`` arguments the tool's ``inputSchema`` rejects, and annotation
claims the steps contradict. Without a catalogue, what depends on the tools is left unchecked.

Approvals: a step's ``approve`` compiles to its ``ApprovalPlan``; with ``approve_destructive``
every other step whose tool may be destructive (``may_destroy``: MCP's defaults, the rule the
composite's own ``destructiveHint`` is derived by) gets one too. Without a catalogue a tool's
annotations are unknown, so every step counts as one that may be destructive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import networkx as nx

from orchestrator._locations import KeyPath, LineMap, Problem, format_problems
from orchestrator.errors import WorkflowDefinitionError
from orchestrator.workflow._expr import (
    Expression,
    ExpressionError,
    References,
    Template,
    compile_expression,
    compile_template,
)
from orchestrator.workflow._plan import ApprovalPlan, RetryPolicy, StepPlan, WorkflowPlan, catalog_problems
from orchestrator.workflow._wiring import (
    AnnotatedStep,
    derive_annotations,
    find_tool,
    is_idempotent_tool,
    make_validator,
    may_destroy,
    name_problems,
    retry_problems,
    schema_problem,
    split_tool_reference,
)

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    import mcp_types as types

    from orchestrator.catalog import Catalog
    from orchestrator.workflow._spec import StepSpec, WorkflowSpec

__all__ = ["collect_problems", "compile_workflow", "compile_workflows"]

_CONTEXT_NAMES = frozenset({"input", "steps"})
_RESERVED_VARIABLES = frozenset({"input", "steps", "index"})
_FOR_EACH_ONLY = {"item_name": "as", "max_parallel": "max_parallel", "max_items": "max_items"}
_EMPTY = Template("literal", value={})


@dataclass(frozen=True, slots=True)
class _Expressions:
    arguments: Template
    condition: Expression | None
    for_each: Expression | None
    show: Expression | None


def compile_workflow(
    spec: WorkflowSpec,
    path: str | Path | None = None,
    catalog: Catalog | None = None,
    reserved_names: Iterable[str] = frozenset(),
    *,
    unavailable_servers: Iterable[str] = frozenset(),
) -> WorkflowPlan:
    """Check ``spec`` and compile it into a plan.

    Args:
        spec: A loaded workflow (``load_workflow`` records its lines for messages).
        path: Named in messages; default the file the spec was loaded from.
        catalog: The live catalogue; when given, tools, retries, arguments and annotation
            claims are checked against the downstream tools, and annotations derived from them.
        reserved_names: Names the composite may not take (other tools, built-ins).
        unavailable_servers: Servers that are configured but not up: steps calling them are
            reported as unchecked rather than as naming an unknown server.

    Returns:
        The plan.

    Raises:
        WorkflowDefinitionError: Lists every problem found, as ``path:line: key.path: message``.
    """
    where = str(path) if path is not None else spec.source.path if spec.source else f"<workflow {spec.name}>"
    plan, problems = collect_problems(spec, where, catalog, reserved_names, unavailable_servers=unavailable_servers)
    if plan is None:
        lines: LineMap = spec.source.lines if spec.source else {}
        raise WorkflowDefinitionError(where, format_problems(where, problems, lines))
    return plan


def compile_workflows(specs: Iterable[WorkflowSpec]) -> list[WorkflowPlan]:
    """Compile every spec without a catalogue, so all their problems show at once, before anything starts.

    Raises:
        WorkflowDefinitionError: Some spec is invalid; ``path`` is the first bad one's and
            ``problems`` holds the problems of every bad one.
    """
    plans: list[WorkflowPlan] = []
    failures: list[WorkflowDefinitionError] = []
    for spec in specs:
        try:
            plans.append(compile_workflow(spec))
        except WorkflowDefinitionError as exc:
            failures.append(exc)
    if failures:
        raise WorkflowDefinitionError(failures[0].path, [problem for exc in failures for problem in exc.problems])
    return plans


def collect_problems(
    spec: WorkflowSpec,
    where: str,
    catalog: Catalog | None = None,
    reserved_names: Iterable[str] = frozenset(),
    *,
    unavailable_servers: Iterable[str] = frozenset(),
) -> tuple[WorkflowPlan | None, list[Problem]]:
    """``compile_workflow`` without raising: the plan (``None`` if there is any problem) and every problem.

    The problems are located by key path, so a caller can merge them with problems found
    elsewhere (the loader's) before wording them.
    """
    lines: LineMap = spec.source.lines if spec.source else {}
    problems: list[Problem] = []
    graph = _graph(spec, problems)
    order = _order(graph, spec, problems)
    expressions = {step_id: _step_expressions(step_id, step, problems) for step_id, step in spec.steps.items()}
    for step_id in spec.steps:
        _check_references(step_id, spec, expressions[step_id], _ancestors(graph, step_id), problems)
    output_value = _template(spec.output.value, ("output", "value"), problems)
    _check_names(output_value.references(), _CONTEXT_NAMES, ("output", "value"), problems)
    for step_id in sorted(output_value.references().steps - set(spec.steps)):
        problems.append((("output", "value"), f"refers to unknown step {step_id!r}"))
    if (problem := schema_problem(spec.input)) is not None:
        problems.append((("input",), problem))
    output_schema = spec.output.json_schema
    if output_schema is not None and (problem := schema_problem(output_schema)) is not None:
        problems.append((("output", "schema"), problem))

    steps: dict[str, StepPlan] = {}
    for step_id in order:
        steps[step_id] = _step_plan(step_id, spec, graph, expressions[step_id], catalog, problems)
    if catalog is not None:
        unavailable = frozenset(unavailable_servers)
        problems += catalog_problems(spec.name, steps.values(), spec.annotations, catalog, reserved_names, unavailable)
    else:
        problems += name_problems(spec.name, None, reserved_names)
        for step in steps.values():
            problems += retry_problems(step, None)
    annotated = [AnnotatedStep(s.id, s.tool_annotations, s.idempotent) for s in steps.values()]
    annotations, _ = derive_annotations(annotated, spec.annotations, checked=False)

    input_validator = make_validator(spec.input)
    output_validator = make_validator(output_schema) if output_schema is not None else None
    if problems or input_validator is None:
        return None, problems
    return WorkflowPlan(
        name=spec.name,
        description=spec.description,
        path=where,
        spec=spec,
        input_schema=spec.input,
        output_schema=output_schema,
        output_value=output_value,
        annotations=annotations,
        steps=steps,
        timeout=spec.limits.timeout,
        max_parallel=spec.limits.max_parallel,
        input_validator=input_validator,
        output_validator=output_validator,
        lines=lines,
    ), problems


def _graph(spec: WorkflowSpec, problems: list[Problem]) -> nx.DiGraph[str]:
    """Steps as nodes (in file order), an edge from each need to the step that needs it."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(spec.steps)
    for step_id, step in spec.steps.items():
        for index, need in enumerate(step.needs):
            if need in spec.steps:
                graph.add_edge(need, step_id)
            else:
                problems.append((("steps", step_id, "needs", index), f"needs unknown step {need!r}"))
    return graph


def _order(graph: nx.DiGraph[str], spec: WorkflowSpec, problems: list[Problem]) -> list[str]:
    """A topological order, ties broken by file order; every cycle is a problem naming it."""
    position = {step_id: index for index, step_id in enumerate(spec.steps)}
    cyclic = False
    for component in sorted(nx.strongly_connected_components(graph), key=lambda c: min(position[n] for n in c)):
        first = min(component, key=position.__getitem__)
        if len(component) == 1 and not graph.has_edge(first, first):
            continue
        cyclic = True
        edges = cast("list[tuple[str, str]]", nx.find_cycle(graph.subgraph(component), source=first))  # pyright: ignore[reportUnknownMemberType] - stub leaves the return untyped
        # Edges run need -> step, so read backwards each step needs the next; start at the first in the file.
        cycle = [edges[0][0], *reversed([edge[0] for edge in edges[1:]])]
        start = min(range(len(cycle)), key=lambda index: position[cycle[index]])
        nodes = [*cycle[start:], *cycle[:start], cycle[start]]
        problems.append((("steps", nodes[0], "needs"), f"needs form a cycle: {' -> '.join(nodes)}"))
    if cyclic:
        return list(spec.steps)
    return list(nx.lexicographical_topological_sort(graph, key=position.__getitem__))


def _template(value: object, location: KeyPath, problems: list[Problem]) -> Template:
    try:
        return compile_template(value)
    except ExpressionError as exc:
        problems.append(((*location, *exc.location), str(exc)))
        return _EMPTY


def _expression(text: str | None, location: KeyPath, problems: list[Problem]) -> Expression | None:
    if text is None:
        return None
    try:
        return compile_expression(text)
    except ExpressionError as exc:
        problems.append((location, str(exc)))
        return None


def _step_expressions(step_id: str, step: StepSpec, problems: list[Problem]) -> _Expressions:
    where: KeyPath = ("steps", step_id)
    if step.item_name in _RESERVED_VARIABLES:
        problems.append(((*where, "as"), f"{step.item_name!r} is taken; name the item something else"))
    if step.for_each is None:
        for field, key in _FOR_EACH_ONLY.items():
            if field in step.model_fields_set:
                problems.append(((*where, key), "only meaningful with for_each"))
    return _Expressions(
        _template(step.arguments, (*where, "with"), problems),
        _expression(step.condition, (*where, "if"), problems),
        _expression(step.for_each, (*where, "for_each"), problems),
        _expression(step.approve.show if step.approve else None, (*where, "approve", "show"), problems),
    )


def _check_references(
    step_id: str, spec: WorkflowSpec, expressions: _Expressions, ancestors: set[str], problems: list[Problem]
) -> None:
    item_names = {spec.steps[step_id].item_name, "index"} if expressions.for_each is not None else set[str]()
    fields: list[tuple[KeyPath, References, frozenset[str]]] = [
        (("with",), expressions.arguments.references(), _CONTEXT_NAMES | item_names)
    ]
    # The approval is asked once, before any for_each item: `show` sees no item.
    for field, expression in (
        (("if",), expressions.condition),
        (("for_each",), expressions.for_each),
        (("approve", "show"), expressions.show),
    ):
        if expression is not None:
            fields.append((field, expression.references(), _CONTEXT_NAMES))
    for field, refs, allowed in fields:
        where: KeyPath = ("steps", step_id, *field)
        _check_names(refs, allowed, where, problems)
        if refs.all_steps:
            problems.append((where, "reads 'steps' without naming one; write steps.<id>..."))
        for other in sorted(refs.steps):
            if other == step_id:
                problems.append((where, "refers to the step's own result"))
            elif other not in spec.steps:
                problems.append((where, f"refers to unknown step {other!r}"))
            elif other not in ancestors:
                message = f"refers to step {other!r}, which it does not need, directly or through its needs"
                problems.append((where, f"{message} (add it to needs)"))


def _check_names(refs: References, allowed: frozenset[str], where: KeyPath, problems: list[Problem]) -> None:
    if refs.whole_context:
        problems.append((where, "reads the whole context (@ at the top level); name what you need, e.g. input.x"))
    for name in sorted(refs.names - allowed):
        problems.append((where, f"unknown name {name!r} (expressions here see: {', '.join(sorted(allowed))})"))


def _step_plan(
    step_id: str,
    spec: WorkflowSpec,
    graph: nx.DiGraph[str],
    expressions: _Expressions,
    catalog: Catalog | None,
    problems: list[Problem],
) -> StepPlan:
    step = spec.steps[step_id]
    server, tool_name = split_tool_reference(step.tool, catalog.servers if catalog is not None else None)
    tool: types.Tool | None = None
    if catalog is not None:
        tool, _ = find_tool(step_id, server, tool_name, catalog)  # its problems come with catalog_problems
    idempotent = step.idempotent
    if idempotent is None and tool is not None:
        idempotent = is_idempotent_tool(tool)
    retry_spec = step.retry or (spec.defaults.retry if idempotent is True else None)
    ancestors = frozenset(_ancestors(graph, step_id))
    output_schema = tool.output_schema if tool is not None else None
    return StepPlan(
        id=step_id,
        server=server,
        tool=tool_name,
        arguments=expressions.arguments,
        needs=tuple(dict.fromkeys(step.needs)),
        dependents=tuple(graph.successors(step_id)),
        ancestors=ancestors,
        descendants=frozenset(_descendants(graph, step_id)),
        reads=_reads(expressions, ancestors),
        condition=expressions.condition,
        for_each=expressions.for_each,
        item_name=step.item_name,
        max_parallel=step.max_parallel,
        max_items=step.max_items,
        timeout=step.timeout if step.timeout is not None else spec.defaults.timeout,
        deadline=step.deadline,
        retry=RetryPolicy.from_spec(retry_spec) if retry_spec is not None else None,
        idempotent=idempotent,
        on_error=step.on_error or spec.defaults.on_error,
        default=step.default,
        declared_retry=step.retry is not None,
        declared_idempotent=step.idempotent,
        tool_annotations=tool.annotations if tool is not None else None,
        result_validator=make_validator(output_schema) if output_schema is not None else None,
        approval=_approval(step, spec, server, tool_name, tool, expressions.show),
    )


def _reads(expressions: _Expressions, ancestors: frozenset[str]) -> frozenset[str]:
    """The ancestors whose records the step's expressions read; all of them if one reads ``steps`` whole."""
    refs = expressions.arguments.references()
    for expression in (expressions.condition, expressions.for_each, expressions.show):
        if expression is not None:
            refs |= expression.references()
    if refs.all_steps or refs.whole_context:
        return ancestors  # rejected by _check_references; kept whole should that rule ever loosen
    return refs.steps & ancestors


def _approval(
    step: StepSpec, spec: WorkflowSpec, server: str, tool_name: str, tool: types.Tool | None, show: Expression | None
) -> ApprovalPlan | None:
    """The step's own ``approve``, else the one ``approve_destructive`` asks for, else none."""
    destructive = spec.approve_destructive and may_destroy(tool.annotations if tool is not None else None)
    if step.approve is not None:
        return ApprovalPlan(step.approve.message, show, destructive)
    if destructive:
        return ApprovalPlan(f"Allow the call to {server}.{tool_name}? It may be destructive.", None, True)
    return None


def _ancestors(graph: nx.DiGraph[str], step_id: str) -> set[str]:
    return nx.ancestors(graph, step_id)  # pyright: ignore[reportUnknownMemberType] - stub leaves `source` untyped


def _descendants(graph: nx.DiGraph[str], step_id: str) -> set[str]:
    return nx.descendants(graph, step_id)  # pyright: ignore[reportUnknownMemberType] - stub leaves `source` untyped
