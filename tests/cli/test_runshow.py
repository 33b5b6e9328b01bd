"""How ``runs`` reads a step's state from the journal: pure, no database."""

from __future__ import annotations

import pytest

from orchestrator.cli._runshow import seconds_text, step_states
from orchestrator.store import StepState
from orchestrator.workflow import load_workflow_text

SPEC = load_workflow_text(
    """\
version: 1
name: fan
description: Fan out, then merge.
steps:
  list:
    tool: s.list
  each:
    needs: [list]
    for_each: ${{ steps.list.result }}
    tool: s.get
  merge:
    needs: [each]
    tool: s.merge
""",
    "fan.yaml",
)
ORDER = ["list", "each", "merge"]


def _states(run_status: str, *records: tuple[str, int | None, str]) -> dict[str, str]:
    return step_states(SPEC, ORDER, [StepState(*record) for record in records], run_status)


def test_a_step_without_records_is_pending_and_a_plain_record_is_its_state() -> None:
    assert _states("running") == {"list": "pending", "each": "pending", "merge": "pending"}
    assert _states("running", ("list", None, "succeeded"), ("each", None, "running")) == {
        "list": "succeeded",
        "each": "running",
        "merge": "pending",
    }


def test_a_for_each_with_only_item_records_takes_its_state_from_them() -> None:
    assert _states("running", ("each", 0, "succeeded"), ("each", 1, "failed"))["each"] == "failed"
    assert _states("running", ("each", 0, "succeeded"), ("each", 1, "running"))["each"] == "running"
    # Every item started is done, but more may come while the run goes on...
    assert _states("running", ("each", 0, "succeeded"))["each"] == "running"
    # ...or, once it stopped, the step was stopped with it...
    assert _states("interrupted", ("each", 0, "succeeded"))["each"] == "cancelled"
    # ...unless a step that needs it started, or the run succeeded: then its items were all.
    assert _states("interrupted", ("each", 0, "succeeded"), ("merge", None, "running"))["each"] == "succeeded"
    assert _states("succeeded", ("each", 0, "skipped"))["each"] == "succeeded"


def test_steps_journalled_but_not_in_the_order_are_read_all_the_same() -> None:
    states = step_states(None, ["gone"], [StepState("gone", None, "skipped")], "failed")
    assert states == {"gone": "skipped"}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.5, "0.50s"), (12.34, "12.3s"), (245, "4m05s"), (3720, "1h02m")],
)
def test_durations_read_as_a_person_would_write_them(seconds: float, text: str) -> None:
    assert seconds_text(seconds) == text
