"""The compiler: one test per problem kind (message and location), all at once, and the plan it builds."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mcp_types as types
import pytest

from orchestrator.errors import WorkflowDefinitionError
from orchestrator.workflow import compile_workflow, load_workflow
from tests.workflow.helpers import DATA, catalog_of, compile_text, problems_of, tool

if TYPE_CHECKING:
    from pathlib import Path

HEADER = """
version: 1
name: flow
description: A test workflow.
"""


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    """Where ``problems_of``/``compile_text`` write the workflow."""
    return tmp_path / "flow.yaml"


def test_sample_workflow_compiles_to_a_plan_in_topological_order() -> None:
    plan = compile_workflow(load_workflow(DATA / "incident_report.yaml"))

    assert plan.order == ("metrics", "tickets", "deploys", "details", "report")
    assert plan.steps["report"].needs == ("metrics", "details", "deploys")
    assert plan.steps["tickets"].dependents == ("details",)
    assert plan.steps["report"].ancestors == {"metrics", "tickets", "details", "deploys"}
    assert plan.steps["tickets"].descendants == {"details", "report"}
    assert plan.tool_references == {
        ("metrics", "query"),
        ("tickets", "search"),
        ("db", "query"),
        ("tickets", "get"),
        ("reports", "render"),
    }
    assert plan.path == str(DATA / "incident_report.yaml")
    metrics = plan.steps["metrics"]
    assert metrics.retry is not None
    assert (metrics.retry.max_attempts, metrics.retry.jitter) == (4, "full")
    assert metrics.timeout == 20.0
    assert plan.steps["deploys"].on_error == "continue"


def test_cycle_is_named_in_the_order_of_needs(tmp_path: Path, flow: Path) -> None:
    text = HEADER + "steps:\n  a: {tool: s.t, needs: [c]}\n  b: {tool: s.t, needs: [a]}\n  c: {tool: s.t, needs: [b]}\n"

    assert problems_of(tmp_path, text) == [f"{flow}:5: steps.a.needs: needs form a cycle: a -> c -> b -> a"]


def test_a_step_needing_itself_is_a_cycle(tmp_path: Path, flow: Path) -> None:
    text = HEADER + "steps:\n  a: {tool: s.t, needs: [a]}\n"

    assert problems_of(tmp_path, text) == [f"{flow}:5: steps.a.needs: needs form a cycle: a -> a"]


def test_needs_naming_an_unknown_step_points_at_the_item(tmp_path: Path, flow: Path) -> None:
    text = HEADER + "steps:\n  a:\n    tool: s.t\n    needs:\n      - b\n"

    assert problems_of(tmp_path, text) == [f"{flow}:8: steps.a.needs[0]: needs unknown step 'b'"]


def test_reading_a_step_that_is_not_an_ancestor_is_refused(tmp_path: Path, flow: Path) -> None:
    text = HEADER + (
        "steps:\n"
        "  a: {tool: s.t}\n"
        "  b:\n"
        "    tool: s.t\n"
        "    with:\n"
        "      x: ${{ steps.a.result }}\n"
        "  c:\n"
        "    tool: s.t\n"
        "    needs: [b]\n"
        "    with: {y: '${{ steps.b.result }}'}\n"
    )

    assert problems_of(tmp_path, text) == [
        f"{flow}:8: steps.b.with: refers to step 'a', which it does not need, directly or through its needs"
        " (add it to needs)",
    ]


def test_an_ancestor_reached_through_another_need_may_be_read(tmp_path: Path) -> None:
    text = HEADER + (
        "steps:\n  a: {tool: s.t}\n  b: {tool: s.t, needs: [a]}\n"
        "  c: {tool: s.t, needs: [b], with: {x: '${{ steps.a.result }}'}}\n"
    )

    assert compile_text(tmp_path, text).steps["c"].ancestors == {"a", "b"}


def test_unknown_steps_names_and_own_results_in_expressions_are_refused(tmp_path: Path, flow: Path) -> None:
    text = HEADER + (
        "steps:\n"
        "  a:\n"
        "    tool: s.t\n"
        "    if: ${{ steps.a.status == 'succeeded' }}\n"
        "    for_each: ${{ steps.ghost.result }}\n"
        "    with: {x: '${{ inputs.x }}', y: '${{ item }}'}\n"
        "  b:\n"
        "    tool: s.t\n"
        "    with: {z: '${{ item }}', all: '${{ steps.*.result }}'}\n"
        "output:\n"
        "  value: {n: '${{ steps.nope.result }}'}\n"
    )

    assert problems_of(tmp_path, text) == [
        f"{flow}:7: steps.a.if: refers to the step's own result",
        f"{flow}:8: steps.a.for_each: refers to unknown step 'ghost'",
        f"{flow}:9: steps.a.with: unknown name 'inputs' (expressions here see: index, input, item, steps)",
        f"{flow}:12: steps.b.with: unknown name 'item' (expressions here see: input, steps)",
        f"{flow}:12: steps.b.with: reads 'steps' without naming one; write steps.<id>...",
        f"{flow}:14: output.value: refers to unknown step 'nope'",
    ]


def test_expression_syntax_error_points_at_the_nested_key(tmp_path: Path, flow: Path) -> None:
    text = HEADER + (
        "steps:\n  a:\n    tool: s.t\n    with:\n      params:\n        q: ${{ input.[ }}\n    if: input.flag\n"
    )

    assert problems_of(tmp_path, text) == [
        f"{flow}:9: steps.a.with.params.q: invalid expression `input.[`: the expression is incomplete at character 8",
        f"{flow}:10: steps.a.if: must be a single ${{{{ expression }}}}, e.g. ${{{{ input.enabled }}}}",
    ]


def test_for_each_options_without_for_each_and_a_taken_item_name_are_refused(tmp_path: Path, flow: Path) -> None:
    text = HEADER + (
        "steps:\n"
        "  a:\n"
        "    tool: s.t\n"
        "    max_parallel: 2\n"
        "  b:\n"
        "    tool: s.t\n"
        "    for_each: ${{ input.list }}\n"
        "    as: input\n"
    )

    assert problems_of(tmp_path, text) == [
        f"{flow}:7: steps.a.max_parallel: only meaningful with for_each",
        f"{flow}:11: steps.b.as: 'input' is taken; name the item something else",
    ]


def test_unknown_server_and_unknown_tool_are_refused_against_a_catalogue(tmp_path: Path, flow: Path) -> None:
    catalog = catalog_of(metrics=[tool("query", readOnlyHint=True)])
    text = HEADER + "steps:\n  a: {tool: metric.query}\n  b:\n    tool: metrics.qeury\n"

    assert problems_of(tmp_path, text, catalog) == [
        f"{flow}:5: steps.a.tool: unknown server 'metric' (servers: metrics)",
        f"{flow}:7: steps.b.tool: server 'metrics' has no tool 'qeury' (did you mean 'query'?)",
    ]


def test_without_a_catalogue_tool_references_are_not_checked(tmp_path: Path) -> None:
    plan = compile_text(tmp_path, HEADER + "steps:\n  a: {tool: nowhere.nothing}\n")

    assert plan.tool_references == {("nowhere", "nothing")}


def test_retry_on_a_tool_that_is_not_idempotent_is_refused(tmp_path: Path, flow: Path) -> None:
    catalog = catalog_of(tickets=[tool("create", destructiveHint=False)])
    text = HEADER + "steps:\n  a:\n    tool: tickets.create\n    retry: {max_attempts: 3}\n"

    assert problems_of(tmp_path, text, catalog) == [
        f"{flow}:7: steps.a.retry: retry needs an idempotent call: tickets.create is not annotated idempotentHint "
        "or readOnlyHint; add idempotent: true to the step if repeating it is safe",
    ]


def test_retry_is_allowed_on_annotated_tools_and_steps_declared_idempotent(tmp_path: Path) -> None:
    catalog = catalog_of(s=[tool("read", readOnlyHint=True), tool("put", idempotentHint=True), tool("send")])
    text = HEADER + (
        "steps:\n"
        "  a: {tool: s.read, retry: {}}\n"
        "  b: {tool: s.put, retry: {}}\n"
        "  c: {tool: s.send, retry: {}, idempotent: true}\n"
    )

    plan = compile_text(tmp_path, text, catalog)

    assert all(step.retry is not None for step in plan.steps.values())


def test_retry_with_idempotent_false_is_refused_even_without_a_catalogue(tmp_path: Path, flow: Path) -> None:
    text = HEADER + "steps:\n  a: {tool: s.t, idempotent: false, retry: {}}\n"

    assert problems_of(tmp_path, text) == [f"{flow}:5: steps.a.retry: a step with idempotent: false cannot retry"]


def test_default_retry_applies_only_to_steps_that_may_repeat(tmp_path: Path) -> None:
    catalog = catalog_of(s=[tool("read", readOnlyHint=True), tool("send")])
    text = HEADER + "defaults: {retry: {max_attempts: 5}}\nsteps:\n  a: {tool: s.read}\n  b: {tool: s.send}\n"

    plan = compile_text(tmp_path, text, catalog)

    assert plan.steps["a"].retry is not None
    assert plan.steps["a"].retry.max_attempts == 5
    assert plan.steps["b"].retry is None


def test_arguments_that_cannot_satisfy_the_input_schema_are_refused(tmp_path: Path, flow: Path) -> None:
    catalog = catalog_of(
        db=[
            tool(
                "query",
                properties={"sql": {"type": "string"}, "limit": {"type": "integer"}, "mode": {"enum": ["r", "w"]}},
                required=["sql", "limit"],
                closed=True,
            )
        ]
    )
    text = HEADER + (
        "steps:\n"
        "  a:\n"
        "    tool: db.query\n"
        "    with:\n"
        "      limit: 'top ${{ input.n }}'\n"
        "      mode: x\n"
        "      colour: red\n"
        "  b:\n"
        "    tool: db.query\n"
        "    with: {sql: '${{ input.sql }}', limit: '${{ input.n }}', mode: r}\n"
    )

    assert problems_of(tmp_path, text, catalog) == [
        f"{flow}:7: steps.a.with: missing required argument 'sql' of db.query",
        f"{flow}:8: steps.a.with.limit: is text (an expression inside a string) but the tool expects integer",
        f'{flow}:9: steps.a.with.mode: "x" is not one of "r", "w"',
        f"{flow}:10: steps.a.with.colour: unknown argument 'colour' (the tool takes: limit, mode, sql)",
    ]


def test_arguments_given_by_one_whole_expression_are_checked_only_at_run_time(tmp_path: Path) -> None:
    catalog = catalog_of(db=[tool("query", properties={"sql": {"type": "string"}}, required=["sql"])])
    text = HEADER + "steps:\n  a: {tool: db.query, with: '${{ input }}'}\n"

    assert compile_text(tmp_path, text, catalog).steps["a"].arguments.kind == "expression"


def test_composite_name_clashing_with_a_catalogue_tool_or_reserved_name_is_refused(tmp_path: Path, flow: Path) -> None:
    text = "version: 1\nname: flow__x\ndescription: d\nsteps:\n  a: {tool: other.x}\n"
    taken = catalog_of(flow=[tool("x")], other=[tool("x")])

    assert problems_of(tmp_path, text, taken) == [
        f"{flow}:2: name: composite name 'flow__x' clashes with tool 'x' of 'flow'"
    ]
    assert problems_of(tmp_path, text, reserved_names={"flow__x"}) == [
        f"{flow}:2: name: composite name 'flow__x' is reserved"
    ]


def test_invalid_input_and_output_schemas_are_refused(tmp_path: Path, flow: Path) -> None:
    text = HEADER + (
        "input: {type: array}\n"
        "steps:\n  a: {tool: s.t}\n"
        "output:\n"
        "  schema: {type: object, properties: {n: {type: 12}}}\n"
    )

    problems = problems_of(tmp_path, text)

    assert problems[0] == f"{flow}:4: input: must be a JSON Schema with type: object"
    assert problems[1].startswith(f"{flow}:8: output.schema: not a valid JSON Schema at properties/n/type: 12 is not")


def test_every_problem_of_a_file_is_reported_at_once_in_file_order(tmp_path: Path, flow: Path) -> None:
    catalog = catalog_of(s=[tool("t")])
    text = HEADER + (
        "steps:\n"
        "  a: {tool: s.t, needs: [b]}\n"
        "  b: {tool: s.t, needs: [a]}\n"
        "  c: {tool: s.missing, needs: [zz]}\n"
        "  d: {tool: s.t, retry: {}, with: {x: '${{ steps.c.result }}'}}\n"
    )

    problems = problems_of(tmp_path, text, catalog)

    assert [problem.split(": ")[0] for problem in problems] == [
        f"{flow}:5",
        f"{flow}:7",
        f"{flow}:7",
        f"{flow}:8",
        f"{flow}:8",
    ]
    assert "needs form a cycle: a -> b -> a" in problems[0]
    assert {p.split(": ", 2)[1] for p in problems} == {
        "steps.a.needs",
        "steps.c.needs[0]",
        "steps.c.tool",
        "steps.d.with",
        "steps.d.retry",
    }


def test_annotations_are_derived_conservatively_from_the_steps(tmp_path: Path) -> None:
    reads = catalog_of(s=[tool("a", readOnlyHint=True, openWorldHint=False), tool("b", readOnlyHint=True)])
    mixed = catalog_of(s=[tool("a", readOnlyHint=True), tool("b", destructiveHint=False, idempotentHint=True)])
    text = HEADER + "steps:\n  x: {tool: s.a}\n  y: {tool: s.b}\n"

    read_only = compile_text(tmp_path, text, reads).annotations
    writes = compile_text(tmp_path, text, mixed).annotations
    unknown = compile_text(tmp_path, text).annotations

    assert read_only == types.ToolAnnotations(
        read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True
    )
    assert writes == types.ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
    )
    assert unknown == types.ToolAnnotations(
        read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
    )


def test_annotation_claims_may_only_be_more_conservative(tmp_path: Path, flow: Path) -> None:
    catalog = catalog_of(s=[tool("read", readOnlyHint=True, openWorldHint=False), tool("write")])
    conservative = (
        HEADER + "annotations: {title: Flow, readOnlyHint: false, openWorldHint: true}\nsteps:\n  a: {tool: s.read}\n"
    )
    overclaim = HEADER + "annotations:\n  readOnlyHint: true\n  destructiveHint: false\nsteps:\n  a: {tool: s.write}\n"

    annotations = compile_text(tmp_path, conservative, catalog).annotations
    problems = problems_of(tmp_path, overclaim, catalog)

    assert annotations == types.ToolAnnotations(
        title="Flow", read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
    )
    assert problems == [
        f"{flow}:5: annotations.readOnlyHint: cannot be claimed: step 'a' is not read-only",
        f"{flow}:6: annotations.destructiveHint: cannot be claimed: step 'a' may be destructive",
    ]


def test_check_against_reports_broken_wiring_and_nothing_once_it_is_whole_again(tmp_path: Path, flow: Path) -> None:
    whole = catalog_of(s=[tool("t", properties={"q": {"type": "string"}}, required=["q"])])
    plan = compile_text(tmp_path, HEADER + "steps:\n  a: {tool: s.t, with: {q: hi}}\n", whole)

    assert plan.check_against(whole) == []
    assert plan.check_against(catalog_of(s=[])) == [f"{flow}:5: steps.a.tool: server 's' has no tool 't'"]
    assert plan.check_against(catalog_of(other=[])) == [f"{flow}:5: steps.a.tool: unknown server 's' (servers: other)"]
    assert plan.check_against(whole, reserved_names=["flow"]) == [f"{flow}:2: name: composite name 'flow' is reserved"]


def test_server_keys_with_dots_are_resolved_against_the_catalogue(tmp_path: Path) -> None:
    catalog = catalog_of(**{"a.b": [tool("c.d")]})
    plan = compile_text(tmp_path, HEADER + "steps:\n  x: {tool: a.b.c.d}\n", catalog)

    assert plan.tool_references == {("a.b", "c.d")}


def test_plan_describes_the_composite_as_an_mcp_tool(tmp_path: Path) -> None:
    text = HEADER + (
        "input: {type: object, properties: {n: {type: integer, default: 3}}}\n"
        "steps:\n  a: {tool: s.t}\n"
        "output: {schema: {type: object}, value: {}}\n"
    )

    definition = compile_text(tmp_path, text).as_tool()

    assert definition.name == "flow"
    assert definition.description == "A test workflow."
    assert definition.input_schema == {"type": "object", "properties": {"n": {"type": "integer", "default": 3}}}
    assert definition.output_schema == {"type": "object"}
    assert definition.annotations is not None


def test_independent_steps_keep_file_order_in_the_topological_order(tmp_path: Path) -> None:
    text = HEADER + "steps:\n  z: {tool: s.t, needs: [m]}\n  m: {tool: s.t}\n  a: {tool: s.t}\n"

    assert compile_text(tmp_path, text).order == ("m", "z", "a")


def test_definition_error_message_lists_every_problem(tmp_path: Path) -> None:
    with pytest.raises(WorkflowDefinitionError) as caught:
        compile_text(tmp_path, HEADER + "steps:\n  a: {tool: s.t, needs: [x, y]}\n")

    assert str(caught.value).splitlines() == caught.value.problems
    assert len(caught.value.problems) == 2
