"""Reading workflow files: the sample loads; every problem of a file is reported at once, with its line."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from orchestrator.errors import WorkflowDefinitionError
from orchestrator.workflow import check_workflow, load_workflow, load_workflow_text, load_workflows, workflow_files
from tests.workflow.helpers import DATA, catalog_of, tool, write_workflow

if TYPE_CHECKING:
    from pathlib import Path

MINIMAL = """
version: 1
name: minimal
description: One step.
steps:
  only:
    tool: s.t
"""


def test_sample_workflow_loads_with_durations_in_seconds_and_key_lines() -> None:
    spec = load_workflow(DATA / "incident_report.yaml")

    assert spec.name == "incident_report"
    assert list(spec.steps) == ["metrics", "tickets", "deploys", "details", "report"]
    metrics = spec.steps["metrics"]
    assert metrics.retry is not None
    assert metrics.retry.initial_interval == pytest.approx(0.2)
    assert metrics.retry.effective_max_interval == 2.0
    assert spec.defaults.timeout == 20.0
    assert spec.steps["details"].item_name == "ticket"
    assert spec.steps["deploys"].condition == "${{ input.hours <= `72` }}"
    assert spec.source is not None
    assert spec.source.lines[("steps", "details", "for_each")] == 30


def test_defaults_fill_what_a_minimal_file_leaves_out(tmp_path: Path) -> None:
    spec = load_workflow(write_workflow(tmp_path, MINIMAL))
    step = spec.steps["only"]

    assert spec.input == {"type": "object", "properties": {}}
    assert spec.limits.max_parallel == 8
    assert spec.limits.timeout == 600.0
    assert step.arguments == {}
    assert step.item_name == "item"
    assert step.max_items == 1000
    assert step.needs == ()


def test_every_schema_problem_of_a_file_is_reported_at_once_with_file_line_and_key(tmp_path: Path) -> None:
    path = write_workflow(
        tmp_path,
        """
        version: 1
        name: Bad-Name
        description: Broken in many ways.
        stesp: {}
        steps:
          fetch:
            tool: metrics.query
            timeout: 5q
            retyr: {max_attempts: 2}
          Other:
            tool: noserver
            retry: {max_attempts: 2, retry_on: [timeout, bogus]}
        """,
    )

    with pytest.raises(WorkflowDefinitionError) as caught:
        load_workflow(path)

    assert caught.value.path == str(path)
    assert caught.value.problems == [
        f"{path}:2: name: String should match pattern '^[a-z][a-z0-9_]{{0,63}}$'",
        f"{path}:4: stesp: unknown key (did you mean 'steps'?)",
        f"{path}:8: steps.fetch.timeout: not a duration (use e.g. '500ms', '20s', '2m'): '5q'",
        f"{path}:9: steps.fetch.retyr: unknown key (did you mean 'retry'?)",
        f"{path}:10: steps.Other: invalid key: step ids are lowercase letters, digits and '_', starting with a letter",
        f"{path}:11: steps.Other.tool: must be '<server>.<tool>', e.g. 'metrics.query'",
        f"{path}:12: steps.Other.retry.retry_on[1]: String should match pattern "
        "'^(transport_error|timeout|rate_limited|tool_error|output_invalid|mcp_error(:-?\\d+)?)$'",
    ]


def test_missing_keys_and_an_empty_step_map_are_named(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, "version: 2\nsteps: {}\n")

    with pytest.raises(WorkflowDefinitionError) as caught:
        load_workflow(path)

    assert caught.value.problems == [
        f"{path}:1: version: Input should be 1",
        f"{path}:2: steps: a workflow needs at least one step",
        f"{path}: name: required key is missing",
        f"{path}: description: required key is missing",
    ]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, "version: 1\nsteps:\n  a: {tool: x.y\n  b: 1\n")

    with pytest.raises(WorkflowDefinitionError) as caught:
        load_workflow(path)

    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"{path}:4: (top level): invalid YAML at column 4: ")


def test_a_workflow_given_as_text_loads_as_its_file_would_and_its_problems_name_it(tmp_path: Path) -> None:
    text = MINIMAL + "  next:\n    tool: s.t\n    needs: only\n"

    spec = load_workflow_text(text, "run 1f2e3d")

    assert spec == load_workflow(write_workflow(tmp_path, text)).model_copy(update={"source": spec.source})
    assert spec.source is not None
    assert spec.source.path == "run 1f2e3d"
    with pytest.raises(WorkflowDefinitionError) as caught:
        load_workflow_text(MINIMAL.lstrip("\n") + "source: x\n", "run 1f2e3d")
    assert caught.value.problems == ["run 1f2e3d:7: source: unknown key"]
    with pytest.raises(WorkflowDefinitionError, match=r"^run 1f2e3d:2: \(top level\): invalid YAML"):
        load_workflow_text("steps: [\n", "run 1f2e3d")


def test_a_file_that_is_not_a_mapping_is_one_problem(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, "- just\n- a list\n")

    with pytest.raises(WorkflowDefinitionError, match=r"expected a mapping, found a list"):
        load_workflow(path)


def test_duplicate_keys_are_problems_naming_the_first_line(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, MINIMAL + "  only:\n    tool: s.u\n")

    with pytest.raises(WorkflowDefinitionError) as caught:
        load_workflow(path)

    assert caught.value.problems == [f"{path}:7: steps.only: duplicate key (first on line 5)"]


def test_the_loader_owned_source_key_cannot_be_written(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, MINIMAL + "source: x\n")

    with pytest.raises(WorkflowDefinitionError) as caught:
        load_workflow(path)

    assert caught.value.problems == [f"{path}:7: source: unknown key"]


def test_yaml_timestamps_stay_strings_because_workflows_are_json(tmp_path: Path) -> None:
    spec = load_workflow(write_workflow(tmp_path, MINIMAL + "    with: {since: 2024-01-01}\n"))

    assert spec.steps["only"].arguments == {"since": "2024-01-01"}


def test_needs_accepts_one_step_id_as_a_string(tmp_path: Path) -> None:
    text = MINIMAL + "  next:\n    tool: s.t\n    needs: only\n"

    assert load_workflow(write_workflow(tmp_path, text)).steps["next"].needs == ("only",)


def test_load_workflows_reads_folders_sorted_and_files_as_given(tmp_path: Path) -> None:
    write_workflow(tmp_path, MINIMAL.replace("minimal", "b_flow"), "b.yaml")
    write_workflow(tmp_path, MINIMAL.replace("minimal", "a_flow"), "a.yml")
    write_workflow(tmp_path, "not a workflow", "notes.txt")

    assert [p.name for p in workflow_files([tmp_path])] == ["a.yml", "b.yaml"]
    assert [s.name for s in load_workflows([tmp_path, DATA / "incident_report.yaml"])] == [
        "a_flow",
        "b_flow",
        "incident_report",
    ]


def test_load_workflows_reports_the_problems_of_every_bad_file_and_duplicate_names(tmp_path: Path) -> None:
    first = write_workflow(tmp_path, MINIMAL, "a.yaml")
    second = write_workflow(tmp_path, MINIMAL, "b.yaml")
    broken = write_workflow(tmp_path, MINIMAL + "oops: 1\n", "c.yaml")

    with pytest.raises(WorkflowDefinitionError) as caught:
        load_workflows([tmp_path])

    assert caught.value.problems == [
        f"{second}:2: name: composite 'minimal' is also defined in {first}",
        f"{broken}:7: oops: unknown key",
    ]


def test_a_missing_path_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(WorkflowDefinitionError, match="no such file or folder"):
        load_workflows([tmp_path / "absent"])


MIXED = """
version: 1
name: mixed
description: Mistakes of every stage in one file.
steps:
  a:
    tool: s.echo
    needs: [b]
    with: {text: hi}
    retyr: {max_attempts: 2}
  b:
    tool: s.echo
    needs: [a]
  c:
    tool: s.ecko
    with: {text: "${{ steps.a.result }}"}
  d:
    tool: s.add
    with: {a: one}
"""


def test_format_and_wiring_problems_of_a_file_are_reported_in_one_go(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, MIXED)

    with pytest.raises(WorkflowDefinitionError) as caught:
        load_workflow(path)

    assert caught.value.problems == [
        f"{path}:7: steps.a.needs: needs form a cycle: a -> b -> a",
        f"{path}:9: steps.a.retyr: unknown key (did you mean 'retry'?)",
        f"{path}:15: steps.c.with: refers to step 'a', which it does not need, directly or through its needs "
        "(add it to needs)",
    ]


def test_check_workflow_adds_the_live_tool_problems_of_the_steps_that_parsed(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, MIXED)
    catalog = catalog_of(
        s=[
            tool("echo", properties={"text": {"type": "string"}}, required=["text"]),
            tool("add", properties={"a": {"type": "number"}}),
        ]
    )

    check = check_workflow(path, catalog)

    assert check.plan is None
    assert check.spec is None  # the format is broken
    assert check.problems == [
        f"{path}:7: steps.a.needs: needs form a cycle: a -> b -> a",
        f"{path}:9: steps.a.retyr: unknown key (did you mean 'retry'?)",
        f"{path}:10: steps.b.with: missing required argument 'text' of s.echo",
        f"{path}:14: steps.c.tool: server 's' has no tool 'ecko' (did you mean 'echo'?)",
        f"{path}:15: steps.c.with: refers to step 'a', which it does not need, directly or through its needs "
        "(add it to needs)",
        f"{path}:18: steps.d.with.a: 'one' is not of type 'number'",
    ]


def test_a_good_file_checks_clean_and_compiles(tmp_path: Path) -> None:
    check = check_workflow(write_workflow(tmp_path, MINIMAL))

    assert check.problems == []
    assert check.plan is not None
    assert check.spec is not None
    assert check.plan.name == "minimal"


def test_what_a_broken_value_implies_is_not_reported_again(tmp_path: Path) -> None:
    path = write_workflow(
        tmp_path,
        """
        version: 1
        name: Bad-Name
        description: Broken values, and what would follow from them.
        steps:
          first:
            tool: nodot
            idempotent: false
          second: 5
          third:
            tool: s.t
            needs: 7
            with: {x: "${{ steps.first.result }}"}
          fourth:
            tool: s.t
            needs: [second, Bad-Id]
            with: {x: "${{ steps.second.result }}", y: "${{ steps.fifth.result }}"}
        """,
    )

    check = check_workflow(path, catalog_of(s=[tool("t")]))

    assert check.problems == [
        f"{path}:2: name: String should match pattern '^[a-z][a-z0-9_]{{0,63}}$'",
        f"{path}:6: steps.first.tool: must be '<server>.<tool>', e.g. 'metrics.query'",
        f"{path}:8: steps.second: Input should be a valid dictionary or instance of StepSpec",
        f"{path}:11: steps.third.needs: Input should be a valid tuple",
        f"{path}:15: steps.fourth.needs[1]: step ids are lowercase letters, digits and '_', starting with a letter",
        f"{path}:16: steps.fourth.with: refers to unknown step 'fifth'",
    ]


def test_a_file_without_a_usable_steps_map_reports_its_format_problems_only(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, "version: 1\nname: n\ndescription: d\nsteps: [a, b]\nextra: 1\n")

    check = check_workflow(path)

    assert check.problems == [
        f"{path}:4: steps: Input should be a valid dictionary",
        f"{path}:5: extra: unknown key",
    ]
