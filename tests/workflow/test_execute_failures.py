"""Failing runs: sibling cancellation, caller cancellation, run timeout, input and output validation."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from orchestrator.errors import DownstreamToolError, DownstreamUnavailable
from orchestrator.workflow import INPUT_STEP, OUTPUT_STEP, StepEvent, execute, validate_input
from tests.workflow.helpers import Call, FunctionInvoker, Handler, echo, plan_of, text_result

pytestmark = pytest.mark.anyio


class Hanging:
    """A handler whose calls to ``hang`` block until cancelled, recording the cancellation."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.cancelled: list[str] = []
        self.other: Handler = echo

    async def __call__(self, call: Call) -> Any:
        if call.tool != "hang":
            return await self.other(call)
        self.started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(call.tool)
            raise


async def test_unhandled_failure_cancels_steps_in_flight_and_names_step_error_and_run() -> None:
    plan = plan_of(
        {
            "sibling": {"tool": "s.hang"},
            "failing": {"tool": "s.boom"},
            "later": {"tool": "s.t", "needs": ["sibling"]},
        }
    )
    hanging = Hanging()

    async def boom(call: Call) -> Any:
        await hanging.started.wait()  # fail only once the sibling's call is in flight
        raise DownstreamToolError("s", "invalid query", -32602)

    hanging.other = boom
    with anyio.fail_after(5):
        result = await execute(plan, {}, FunctionInvoker(hanging), run_id="run-42")

    assert result.status == "failed"
    assert hanging.cancelled == ["hang"]
    assert result.steps["failing"].status == "failed"
    assert result.steps["sibling"].status == "cancelled"
    assert result.steps["later"].status == "cancelled"
    assert result.steps["later"].attempts == 0
    assert result.error is not None
    assert (result.error.run_id, result.error.step_id) == ("run-42", "failing")
    assert str(result.error) == "run run-42: step 'failing' failed: mcp_error:-32602: server 's': invalid query"


async def test_failed_step_under_on_error_fail_never_starts_its_dependents() -> None:
    plan = plan_of({"a": {"tool": "s.a"}, "b": {"tool": "s.b", "needs": ["a"]}})

    async def handler(call: Call) -> Any:
        raise DownstreamUnavailable("s", "gone")

    invoker = FunctionInvoker(handler)
    result = await execute(plan, {}, invoker)

    assert [c.tool for c in invoker.calls] == ["a"]
    assert result.steps["b"].status == "cancelled"
    assert result.steps["b"].started is None


async def test_cancelling_the_caller_cancels_every_call_in_flight_and_propagates() -> None:
    retrying = {"idempotent": True, "retry": {"max_attempts": 5, "retry_on": ["transport_error", "timeout"]}}
    plan = plan_of({"a": {"tool": "s.hang"}, "b": {"tool": "s.hang", **retrying}})
    hanging = Hanging()
    finished: list[object] = []

    async def run() -> None:
        finished.append(await execute(plan, {}, FunctionInvoker(hanging)))

    with anyio.fail_after(5):
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(run)
                await anyio.wait_all_tasks_blocked()
                scope.cancel()

    assert scope.cancelled_caught
    assert hanging.cancelled == ["hang", "hang"]  # and the retrying step did not try again
    assert finished == []
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("step ")]


async def test_run_longer_than_limits_timeout_fails_naming_the_step_in_flight() -> None:
    plan = plan_of({"quick": {"tool": "s.t"}, "stuck": {"tool": "s.hang"}}, limits={"timeout": "50ms"})
    hanging = Hanging()

    with anyio.fail_after(5):
        result = await execute(plan, {}, FunctionInvoker(hanging), run_id="r")

    assert result.status == "failed"
    assert result.steps["quick"].status == "succeeded"
    assert result.steps["stuck"].status == "cancelled"
    assert hanging.cancelled == ["hang"]
    assert str(result.error) == "run r: step 'stuck' failed: the run exceeded limits.timeout (0.05s)"


async def test_output_value_not_matching_output_schema_fails_the_run() -> None:
    plan = plan_of(
        {"a": {"tool": "s.t", "with": {"n": "many"}}},
        output={
            "schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
            "value": {"n": "${{ steps.a.result.n }}"},
        },
    )

    result = await execute(plan, {}, FunctionInvoker(echo), run_id="r")

    assert result.status == "failed"
    assert result.output is None
    assert result.steps["a"].status == "succeeded"
    assert result.error is not None
    assert result.error.step_id == OUTPUT_STEP
    assert (
        str(result.error)
        == "run r: step '(output)' failed: output does not match output.schema: 'many' is not of type 'integer'"
    )


async def test_valid_output_is_returned_typed() -> None:
    plan = plan_of(
        {"a": {"tool": "s.t", "with": {"n": "${{ input.n }}"}}},
        output={"schema": {"type": "object"}, "value": {"n": "${{ steps.a.result.n }}", "label": "n=${{ input.n }}"}},
    )

    result = await execute(plan, {"n": 3}, FunctionInvoker(echo))

    assert result.output == {"n": 3, "label": "n=3"}


INPUT = {
    "type": "object",
    "required": ["service"],
    "additionalProperties": False,
    "properties": {
        "service": {"type": "string"},
        "hours": {"type": "integer", "default": 24, "minimum": 1},
        "filter": {"type": "object", "properties": {"level": {"type": "string", "default": "error"}}},
    },
}


def test_input_defaults_are_applied_then_arguments_validated() -> None:
    plan = plan_of({"a": {"tool": "s.t"}}, input=INPUT)
    arguments: dict[str, Any] = {"service": "api", "filter": {}}

    applied, problems = validate_input(plan, arguments)

    assert problems == []
    assert applied == {"service": "api", "hours": 24, "filter": {"level": "error"}}
    assert arguments == {"service": "api", "filter": {}}


def test_invalid_input_lists_every_problem() -> None:
    plan = plan_of({"a": {"tool": "s.t"}}, input=INPUT)

    _, problems = validate_input(plan, {"hours": 0, "extra": True})

    assert sorted(problems) == [
        "(arguments): 'service' is a required property",
        "(arguments): Additional properties are not allowed ('extra' was unexpected)",
        "hours: 0 is less than the minimum of 1",
    ]


async def test_invalid_input_fails_the_run_before_any_step_runs() -> None:
    plan = plan_of({"a": {"tool": "s.t"}}, input=INPUT)
    invoker = FunctionInvoker(echo)
    events: list[StepEvent] = []

    async def record(event: StepEvent) -> None:
        events.append(event)

    result = await execute(plan, {"service": 5}, invoker, on_event=record, run_id="r")

    assert invoker.calls == []
    assert events == []
    assert result.steps["a"].status == "cancelled"
    assert str(result.error) == "run r: step '(input)' failed: invalid arguments: service: 5 is not of type 'string'"
    assert result.error is not None
    assert result.error.step_id == INPUT_STEP


async def test_steps_see_input_with_defaults_applied() -> None:
    plan = plan_of({"a": {"tool": "s.t", "with": {"h": "${{ input.hours }}"}}}, input=INPUT)

    result = await execute(plan, {"service": "api"}, FunctionInvoker(echo))

    assert result.steps["a"].result == {"tool": "t", "h": 24}


async def test_a_fresh_run_id_is_made_when_none_is_given() -> None:
    plan = plan_of({"a": {"tool": "s.t"}})

    first = await execute(plan, {}, FunctionInvoker(echo))
    second = await execute(plan, {}, FunctionInvoker(echo))

    assert len(first.run_id) == 32
    assert first.run_id != second.run_id


async def test_a_failed_run_names_the_server_whose_call_failed_the_step_and_none_otherwise() -> None:
    async def handler(call: Call) -> Any:
        if call.tool == "refuses":
            return text_result("no such ticket", is_error=True)
        raise DownstreamUnavailable(call.server, "gone")

    each = {"tool": "db.query", "for_each": "${{ input.items }}"}
    tool_error = await execute(plan_of({"a": {"tool": "tickets.refuses"}}), {}, FunctionInvoker(handler))
    dead = await execute(plan_of({"each": each}), {"items": [1]}, FunctionInvoker(handler))
    too_many = await execute(plan_of({"each": {**each, "max_items": 1}}), {"items": [1, 2]}, FunctionInvoker(handler))

    servers = [run.error.server if run.error is not None else "(no error)" for run in (tool_error, dead, too_many)]
    # The tool's own error, a dead server behind a for_each item, and a limit (no server's fault).
    assert servers == ["tickets", "db", None]
