"""The one wording of a located problem, shared by config and workflow files, and the YAML line walker."""

from __future__ import annotations

import pytest

from orchestrator._locations import LineMap, UnreadableSource, format_problem, format_problems, read_yaml


def test_a_problem_reads_file_line_key_path_and_message() -> None:
    assert format_problem("orchestrator.yaml", 4, ("servers", "time", "args", 2), "bad") == (
        "orchestrator.yaml:4: servers.time.args[2]: bad"
    )
    assert format_problem("mcp.toml", None, (), "invalid TOML") == "mcp.toml: (top level): invalid TOML"


def test_problems_come_in_file_order_once_each_at_the_nearest_known_line() -> None:
    lines: LineMap = {("steps",): 3, ("steps", "b"): 7, ("name",): 1}
    problems = [
        (("steps", "b", "with", "x"), "late"),  # no line of its own: its step's line
        (("extra",), "unknown"),  # no line anywhere above it: last
        (("name",), "early"),
        (("name",), "early"),
    ]

    assert format_problems("f.yaml", problems, lines) == [
        "f.yaml:1: name: early",
        "f.yaml:7: steps.b.with.x: late",
        "f.yaml: extra: unknown",
    ]


def test_yaml_keeps_json_scalars_and_records_the_line_of_every_key_and_item() -> None:
    document = read_yaml("when: 2024-01-01\nsteps:\n  - a\n  - b: 1\nwhen: again\n")

    assert document.data == {"when": "again", "steps": ["a", {"b": 1}]}
    assert document.lines == {("when",): 5, ("steps",): 2, ("steps", 0): 3, ("steps", 1): 4, ("steps", 1, "b"): 4}
    assert document.problems == [(("when",), "duplicate key (first on line 1)")]


def test_a_yaml_syntax_error_names_line_and_column_but_not_the_text() -> None:
    with pytest.raises(UnreadableSource) as caught:
        read_yaml("a: 1\nb: {c: SECRET-TEXT\n")

    problem = caught.value.problem("f.yaml")
    assert problem.startswith("f.yaml:3: (top level): invalid YAML at column ")
    assert "SECRET-TEXT" not in problem
