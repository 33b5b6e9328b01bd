"""``dry_run``: the plan of one run for one input, worked out from the input alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.workflow import Pending, WorkflowPlan, compile_workflow, dry_run, load_workflow, validate_input
from tests.workflow.helpers import plan_of

_REPO = Path(__file__).resolve().parents[2]


def _plan(steps: dict[str, Any]) -> WorkflowPlan:
    return plan_of(steps)


def test_waves_group_steps_by_dependency_depth_in_file_order() -> None:
    plan = _plan(
        {
            "a": {"tool": "s.a"},
            "b": {"tool": "s.b"},
            "c": {"tool": "s.c", "needs": ["a"]},
            "d": {"tool": "s.d", "needs": ["c", "b"]},
            "e": {"tool": "s.e", "needs": ["b"]},
        }
    )

    result = dry_run(plan, {})

    assert result.waves == (("a", "b"), ("c", "e"), ("d",))
    assert result.steps["d"].wave == 2
    assert result.steps["a"].tool == "s.a"


def test_arguments_from_the_input_are_evaluated_and_those_from_results_wait_on_their_steps() -> None:
    plan = _plan(
        {
            "first": {"tool": "s.first", "with": {"q": "${{ input.service }}"}},
            "second": {
                "tool": "s.second",
                "needs": ["first"],
                "with": {
                    "service": "svc-${{ input.service }}",
                    "fixed": 3,
                    "nested": {"hours": "${{ input.hours }}", "id": "${{ steps.first.result.id }}"},
                },
            },
        }
    )

    result = dry_run(plan, {"service": "checkout", "hours": 24})

    assert result.steps["first"].arguments == {"q": "checkout"}
    assert result.steps["first"].waits_on == ()
    second = result.steps["second"]
    assert second.arguments == {
        "service": "svc-checkout",
        "fixed": 3,
        "nested": {"hours": 24, "id": Pending("${{ steps.first.result.id }}", ("first",))},
    }
    assert second.waits_on == ("first",)
    assert second.as_json()["arguments"]["nested"]["id"] == {
        "pending": "${{ steps.first.result.id }}",
        "waits_on": ["first"],
    }


def test_conditions_decided_true_false_or_undecided() -> None:
    plan = _plan(
        {
            "lookup": {"tool": "s.lookup"},
            "on": {"tool": "s.on", "if": "${{ input.enabled }}"},
            "off": {"tool": "s.off", "if": "${{ input.disabled }}", "default": {"rows": []}},
            "short": {"tool": "s.short", "needs": ["lookup"], "if": "${{ input.disabled && steps.lookup.result }}"},
            "later": {"tool": "s.later", "needs": ["lookup"], "if": "${{ steps.lookup.result.ok }}"},
            "after_off": {"tool": "s.after", "needs": ["off"], "with": {"rows": "${{ steps.off.result.rows }}"}},
            "status": {"tool": "s.status", "needs": ["off"], "if": "${{ steps.off.status == 'skipped' }}"},
        }
    )

    result = dry_run(plan, {"enabled": True, "disabled": False})

    assert (result.steps["on"].condition, result.steps["on"].skipped) == ("true", False)
    assert (result.steps["off"].condition, result.steps["off"].skipped) == ("false", True)
    # `false && ...` never reads the step, as in a real run.
    assert result.steps["short"].condition == "false"
    later = result.steps["later"]
    assert (later.condition, later.condition_waits_on, later.skipped) == ("undecided", ("lookup",), False)
    # A skipped step's dependents still run and see its default and status.
    assert result.steps["after_off"].arguments == {"rows": []}
    assert result.steps["after_off"].waits_on == ()
    assert result.steps["status"].condition == "true"
    assert "arguments" not in result.steps["off"].as_json()


def test_for_each_over_a_list_from_the_input_gives_each_items_arguments() -> None:
    plan = _plan(
        {
            "each": {
                "tool": "s.each",
                "for_each": "${{ input.ids }}",
                "as": "ticket",
                "with": {"id": "${{ ticket }}", "position": "${{ index }}", "who": "${{ input.who }}"},
            }
        }
    )

    step = dry_run(plan, {"ids": ["T-1", "T-2"], "who": "me"}).steps["each"]

    assert step.item_count == 2
    assert step.item_arguments == (
        {"id": "T-1", "position": 0, "who": "me"},
        {"id": "T-2", "position": 1, "who": "me"},
    )
    assert step.as_json()["for_each"] == {"item_count": 2, "waits_on": []}


def test_for_each_over_a_steps_result_is_unknown_until_that_step() -> None:
    plan = _plan(
        {
            "search": {"tool": "s.search"},
            "each": {
                "tool": "s.each",
                "needs": ["search"],
                "for_each": "${{ steps.search.result.items }}",
                "as": "ticket",
                "with": {"id": "${{ ticket.id }}", "kind": "${{ type(ticket) }}", "who": "${{ input.who }}"},
            },
        }
    )

    step = dry_run(plan, {"who": "me"}).steps["each"]

    assert (step.item_count, step.items_wait_on) == (None, ("search",))
    # Not evaluated without the item: a missing name reads as null, and type(null) would be "null".
    assert step.arguments == {
        "id": Pending("${{ ticket.id }}", ()),
        "kind": Pending("${{ type(ticket) }}", ()),
        "who": "me",
    }
    assert step.error is None


def test_an_expression_that_fails_on_this_input_is_reported_as_the_steps_error() -> None:
    plan = _plan(
        {
            "bad": {"tool": "s.bad", "with": {"n": "${{ length(input.count) }}"}},
            "many": {"tool": "s.many", "for_each": "${{ input.ids }}", "max_items": 1, "with": {}},
            "later": {
                "tool": "s.later",
                "needs": ["bad"],
                "with": {"n": "${{ length(input.count) }}", "m": "${{ length(steps.bad.result) }}"},
            },
        }
    )

    result = dry_run(plan, {"count": 5, "ids": [1, 2]})

    assert result.steps["bad"].error is not None
    assert result.steps["bad"].error.startswith("with.n: ")
    # Failing on the input alone is an error even where other parts wait on a step.
    later = result.steps["later"].error
    assert later is not None
    assert later.startswith("with.n: ")
    assert result.steps["many"].error == "for_each yields 2 items, more than max_items (1)"


def test_the_example_workflow_with_and_without_a_summary() -> None:
    plan = compile_workflow(load_workflow(_REPO / "workflows" / "incident_report.yaml"))
    arguments, problems = validate_input(plan, {"service": "checkout"})
    assert problems == []

    result = dry_run(plan, arguments)

    assert result.waves[0] == ("latency", "errors", "signatures", "deploys", "incidents", "tickets")
    assert result.waves[1:] == (("ticket_details",), ("comment",))
    assert result.steps["latency"].arguments == {"service": "checkout", "metric": "latency_p99_ms", "hours": 24}
    assert result.steps["comment"].skipped

    posting = dry_run(plan, validate_input(plan, {"service": "checkout", "post_summary": True})[0])
    assert posting.steps["comment"].condition == "undecided"
    assert posting.steps["comment"].condition_waits_on == ("tickets",)
