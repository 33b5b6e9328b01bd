"""Approval steps: ``approve`` and ``approve_destructive`` compiled into plans, and what a run does with them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from orchestrator.workflow import (
    RUN_STEP,
    ApprovalAnswer,
    ApprovalRequest,
    DryRunApproval,
    Pending,
    StepEvent,
    dry_run,
    execute,
)
from tests.workflow.helpers import FunctionInvoker, catalog_of, compile_text, echo, plan_of, problems_of, tool

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.workflow import WorkflowPlan

HEADER = """
version: 1
name: flow
description: A test workflow.
"""


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    """Where ``problems_of``/``compile_text`` write the workflow."""
    return tmp_path / "flow.yaml"


def _approvals(plan: WorkflowPlan) -> dict[str, tuple[str, str | None, bool]]:
    """Each step that asks: (message, the show expression's text, destructive)."""
    return {
        step.id: (
            step.approval.message,
            step.approval.show.text if step.approval.show else None,
            step.approval.destructive,
        )
        for step in plan.steps.values()
        if step.approval is not None
    }


# ------------------------------------------------------------------ compiling


def test_approve_compiles_from_its_mapping_and_from_a_message_alone(tmp_path: Path) -> None:
    text = HEADER + (
        "steps:\n"
        "  draft: {tool: mail.draft}\n"
        "  send:\n"
        "    tool: mail.send\n"
        "    needs: [draft]\n"
        "    approve:\n"
        "      message: Send the report?\n"
        "      show: ${{ steps.draft.result.body }}\n"
        "  archive:\n"
        "    tool: mail.archive\n"
        "    approve: Archive the thread?\n"
    )

    plan = compile_text(tmp_path, text)

    assert _approvals(plan) == {
        "send": ("Send the report?", "steps.draft.result.body", False),
        "archive": ("Archive the thread?", None, False),
    }
    assert plan.steps["draft"].approval is None


def test_approve_mistakes_are_all_reported_with_file_line_step_and_field(tmp_path: Path, flow: Path) -> None:
    text = HEADER + (
        "steps:\n"
        "  a:\n"
        "    tool: s.t\n"
        "    approve: '  '\n"
        "  b:\n"
        "    tool: s.t\n"
        "    approve:\n"
        "      show: ${{ input.x }}\n"
        "  c:\n"
        "    tool: s.t\n"
        "    approve:\n"
        "      mesage: Go?\n"
        "  d:\n"
        "    tool: s.t\n"
        "    approve:\n"
        "      message: Go?\n"
        "      show: input.x\n"
        "  e:\n"
        "    tool: s.t\n"
        "    approve: {message: 'Go?', show: '${{ steps.a.result }}'}\n"
        "  f:\n"
        "    tool: s.t\n"
        "    for_each: ${{ input.items }}\n"
        "    approve: {message: 'Go?', show: '${{ item }}'}\n"
        "  g:\n"
        "    tool: s.t\n"
        "    approve: ['Go?']\n"
    )

    assert problems_of(tmp_path, text) == [
        f"{flow}:7: steps.a.approve: the message must say what is being approved (it is empty)",
        f"{flow}:10: steps.b.approve.message: required key is missing",
        f"{flow}:14: steps.c.approve.message: required key is missing",
        f"{flow}:15: steps.c.approve.mesage: unknown key (did you mean 'message'?)",
        f"{flow}:20: steps.d.approve.show: must be a single ${{{{ expression }}}}, e.g. ${{{{ input.enabled }}}}",
        f"{flow}:23: steps.e.approve.show: refers to step 'a', which it does not need, directly or through its needs"
        " (add it to needs)",
        f"{flow}:27: steps.f.approve.show: unknown name 'item' (expressions here see: input, steps)",
        f"{flow}:30: steps.g.approve: must be a message, or a mapping with message and (optionally) show",
    ]


def test_approve_destructive_asks_before_every_step_whose_tool_may_be_destructive(tmp_path: Path) -> None:
    catalog = catalog_of(
        s=[
            tool("read", readOnlyHint=True),
            tool("read_marked", readOnlyHint=True, destructiveHint=True),  # read-only wins, as MCP says
            tool("append", destructiveHint=False),
            tool("plain"),  # no annotations: MCP's defaults, destructive
            tool("wipe", readOnlyHint=False, destructiveHint=True),
        ]
    )
    steps = (
        "steps:\n"
        "  read: {tool: s.read}\n"
        "  read_marked: {tool: s.read_marked}\n"
        "  append: {tool: s.append}\n"
        "  plain: {tool: s.plain}\n"
        "  wipe: {tool: s.wipe}\n"
        "  own: {tool: s.wipe, approve: 'Wipe it all?'}\n"
        "  asked_anyway: {tool: s.read, approve: 'Read it?'}\n"
    )

    asking = compile_text(tmp_path, HEADER + "approve_destructive: true\n" + steps, catalog)
    not_asking = compile_text(tmp_path, HEADER + steps, catalog)

    assert _approvals(asking) == {
        "plain": ("Allow the call to s.plain? It may be destructive.", None, True),
        "wipe": ("Allow the call to s.wipe? It may be destructive.", None, True),
        "own": ("Wipe it all?", None, True),
        "asked_anyway": ("Read it?", None, False),
    }
    assert _approvals(not_asking) == {"own": ("Wipe it all?", None, False), "asked_anyway": ("Read it?", None, False)}
    # The composite's own annotation follows the same rule.
    assert asking.annotations.destructive_hint is True


def test_without_a_catalogue_approve_destructive_counts_every_tool_as_destructive(tmp_path: Path) -> None:
    text = HEADER + "approve_destructive: true\nsteps:\n  a: {tool: s.read}\n  b: {tool: s.write, approve: 'Go?'}\n"

    assert _approvals(compile_text(tmp_path, text)) == {
        "a": ("Allow the call to s.read? It may be destructive.", None, True),
        "b": ("Go?", None, True),
    }


def test_approve_destructive_must_be_a_boolean(tmp_path: Path, flow: Path) -> None:
    text = HEADER + "approve_destructive: sometimes\nsteps:\n  a: {tool: s.t}\n"

    assert problems_of(tmp_path, text) == [
        f"{flow}:4: approve_destructive: Input should be a valid boolean, unable to interpret input"
    ]


# ------------------------------------------------------------------ running


class Approvals:
    """An ``Approver`` that answers every request with ``answer`` and keeps the requests."""

    def __init__(self, answer: ApprovalAnswer) -> None:
        self.answer: ApprovalAnswer = answer
        self.requests: list[ApprovalRequest] = []

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        self.requests.append(request)
        return self.answer


class Events:
    """Step events, as ``kind:step``."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, event: StepEvent) -> None:
        self.seen.append(f"{event.kind}:{event.step_id}")


SEND_FLOW: dict[str, Any] = {
    "draft": {"tool": "mail.draft", "with": {"to": "${{ input.to }}"}},
    "send": {
        "tool": "mail.send",
        "needs": ["draft"],
        "with": {"draft": "${{ steps.draft.result }}"},
        "approve": {"message": "Send it?", "show": "${{ {to: input.to, body: steps.draft.result.tool} }}"},
    },
    "log": {"tool": "mail.log", "needs": ["send"]},
}


@pytest.mark.anyio
async def test_an_approved_step_shows_what_it_will_do_then_calls_its_tool() -> None:
    plan = plan_of(SEND_FLOW, input={"type": "object", "properties": {"to": {"type": "string"}}})
    invoker, approver, events = FunctionInvoker(echo), Approvals("approved"), Events()

    result = await execute(plan, {"to": "ops"}, invoker, approver=approver, on_event=events, run_id="r1")

    assert result.status == "succeeded"
    assert [call.tool for call in invoker.calls] == ["draft", "send", "log"]
    assert approver.requests == [ApprovalRequest("r1", "send", "mail.send", "Send it?", {"to": "ops", "body": "draft"})]
    assert events.seen.index("approval:send") < events.seen.index("finished:send")
    assert events.seen.index("finished:draft") < events.seen.index("approval:send")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("answer", "why"),
    [("declined", "the user declined step 'send'"), ("timeout", "no answer to the approval of step 'send' in time")],
)
async def test_a_declined_or_unanswered_step_stops_the_run_as_declined_and_calls_nothing_more(
    answer: ApprovalAnswer, why: str
) -> None:
    plan = plan_of(SEND_FLOW)
    invoker = FunctionInvoker(echo)

    result = await execute(plan, {}, invoker, approver=Approvals(answer))

    assert result.status == "declined"
    assert result.error is not None
    assert result.error.step_id == "send"
    assert why in str(result.error)
    assert [call.tool for call in invoker.calls] == ["draft"]
    assert result.steps["send"].status == "cancelled"
    assert result.steps["send"].attempts == 0
    assert result.steps["log"].started is None


@pytest.mark.anyio
async def test_a_plan_that_asks_fails_before_any_call_when_nobody_can_be_asked() -> None:
    plan = plan_of(SEND_FLOW)
    invoker = FunctionInvoker(echo)

    result = await execute(plan, {}, invoker)

    assert result.status == "failed"
    assert result.error is not None
    assert result.error.step_id == RUN_STEP
    assert "step 'send' needs the user's approval" in str(result.error)
    assert invoker.calls == []


@pytest.mark.anyio
async def test_a_skipped_step_asks_nothing_and_a_failing_show_fails_the_step_before_its_call() -> None:
    skipped = plan_of({"a": {"tool": "s.t", "if": "${{ `false` }}", "approve": "Go?"}})
    broken = plan_of({"a": {"tool": "s.t", "approve": {"message": "Go?", "show": "${{ abs(input.text) }}"}}})
    approver = Approvals("approved")
    invoker = FunctionInvoker(echo)

    quiet = await execute(skipped, {}, invoker, approver=approver)
    failed = await execute(broken, {"text": "x"}, invoker, approver=approver)

    assert quiet.status == "succeeded"
    assert quiet.steps["a"].status == "skipped"
    assert failed.status == "failed"
    assert failed.steps["a"].error_class == "expression_error"
    assert approver.requests == []
    assert invoker.calls == []


# ------------------------------------------------------------------ dry run


def test_a_dry_run_shows_each_question_a_run_would_ask_and_what_it_would_show() -> None:
    plan = plan_of(
        {
            **SEND_FLOW,
            "skipped": {"tool": "mail.purge", "if": "${{ input.purge }}", "approve": "Purge?"},
            "early": {"tool": "mail.note", "approve": {"message": "Note it?", "show": "${{ input.to }}"}},
            "broken": {"tool": "mail.note", "approve": {"message": "Go?", "show": "${{ abs(input.to) }}"}},
        },
        approve_destructive=False,
    )

    result = dry_run(plan, {"to": "ops", "purge": False})

    assert result.steps["early"].approval == DryRunApproval("Note it?", False, True, "ops")
    send = result.steps["send"].approval
    assert send == DryRunApproval(
        "Send it?", False, True, Pending("${{ {to: input.to, body: steps.draft.result.tool} }}", ("draft",))
    )
    assert result.steps["skipped"].skipped
    assert result.steps["skipped"].approval is None
    assert result.steps["draft"].approval is None
    broken = result.steps["broken"]
    assert broken.error is not None
    assert broken.error.startswith("approve.show: ")
    steps = {step["id"]: step for step in result.as_json()["steps"]}
    assert steps["early"]["approval"] == {"message": "Note it?", "destructive": False, "show": "ops"}
    assert steps["send"]["approval"]["show"] == {
        "pending": "${{ {to: input.to, body: steps.draft.result.tool} }}",
        "waits_on": ["draft"],
    }
    assert "approval" not in steps["skipped"]


def test_a_dry_run_says_which_approvals_approve_destructive_adds() -> None:
    plan = plan_of({"a": {"tool": "s.t"}}, approve_destructive=True)

    result = dry_run(plan, {})

    assert result.steps["a"].approval == DryRunApproval(
        "Allow the call to s.t? It may be destructive.", True, False, None
    )
    assert result.as_json()["steps"][0]["approval"] == {
        "message": "Allow the call to s.t? It may be destructive.",
        "destructive": True,
    }
