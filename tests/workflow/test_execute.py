"""The executor: eager scheduling, parallelism bounds, fan-out, conditions, defaults, results, events."""

from __future__ import annotations

import json
from typing import Any

import anyio
import mcp_types as types
import pytest

from orchestrator.errors import DownstreamUnavailable
from orchestrator.workflow import IDEMPOTENCY_KEY_META, StepEvent, compile_workflow, execute, load_workflow
from tests.workflow.helpers import DATA, Call, FunctionInvoker, echo, plan_of, text_result

pytestmark = pytest.mark.anyio


class Recorder:
    """Collects step events."""

    def __init__(self) -> None:
        self.events: list[StepEvent] = []

    async def __call__(self, event: StepEvent) -> None:
        self.events.append(event)

    def kinds(self, step_id: str) -> list[str]:
        return [f"{e.kind}:{e.status}" if e.status else e.kind for e in self.events if e.step_id == step_id]


class Gate:
    """Counts calls in flight and holds them until released."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.release = anyio.Event()

    async def hold(self, call: Call) -> Any:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        return {"tool": call.tool, **call.arguments}


async def test_sample_workflow_runs_end_to_end_with_typed_data_between_steps() -> None:
    plan = compile_workflow(load_workflow(DATA / "incident_report.yaml"))

    async def handler(call: Call) -> Any:
        if call.tool == "search":
            return text_result(json.dumps({"items": [{"id": 7}, {"id": 9}]}))
        if call.tool == "get":
            return {"id": call.arguments["id"], "title": f"ticket {call.arguments['id']}"}
        if call.tool == "render":
            return {"path": f"/reports/{call.arguments['title']}.md"}
        return {"rows": [{"sha": "abc"}]} if call.server == "db" else {"p99": 120}

    invoker = FunctionInvoker(handler)
    result = await execute(plan, {"service": "api"}, invoker)

    assert result.status == "succeeded", result.error
    assert result.output == {"path": "/reports/Incident report: api.md", "open_tickets": 2}
    assert invoker.calls_to("query")[0].arguments == {"service": "api", "hours": 24}
    assert [c.arguments for c in invoker.calls_to("get")] == [{"id": 7}, {"id": 9}]
    render = invoker.calls_to("render")[0].arguments
    assert render["tickets"] == [{"id": 7, "title": "ticket 7"}, {"id": 9, "title": "ticket 9"}]
    assert render["deploys"] == [{"sha": "abc"}]
    assert render["metrics"] == {"p99": 120}


async def test_a_step_starts_as_soon_as_its_needs_finish_while_an_unrelated_step_still_runs() -> None:
    plan = plan_of(
        {
            "slow": {"tool": "s.slow"},
            "fast": {"tool": "s.fast"},
            "after_fast": {"tool": "s.after_fast", "needs": ["fast"]},
            "join": {"tool": "s.join", "needs": ["slow", "after_fast"]},
        }
    )
    after_fast_called = anyio.Event()
    recorder = Recorder()

    async def handler(call: Call) -> Any:
        if call.tool == "slow":
            await after_fast_called.wait()  # a level-by-level scheduler would never get there
        if call.tool == "after_fast":
            after_fast_called.set()
        return {}

    with anyio.fail_after(5):
        result = await execute(plan, {}, FunctionInvoker(handler), on_event=recorder)

    assert result.status == "succeeded"
    order = [(e.step_id, e.kind) for e in recorder.events if e.kind != "retrying"]
    assert order.index(("after_fast", "started")) < order.index(("slow", "finished"))
    assert order.index(("join", "started")) > order.index(("slow", "finished"))


async def test_downstream_calls_in_flight_never_exceed_limits_max_parallel() -> None:
    plan = plan_of({f"s{i}": {"tool": "s.t"} for i in range(5)}, limits={"max_parallel": 2})
    gate = Gate()

    async def run() -> None:
        await execute(plan, {}, FunctionInvoker(gate.hold))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(run)
            await anyio.wait_all_tasks_blocked()
            assert gate.in_flight == 2
            gate.release.set()
    assert gate.peak == 2


async def test_for_each_calls_once_per_item_in_order_bounded_by_its_max_parallel() -> None:
    plan = plan_of(
        {
            "list": {"tool": "s.list"},
            "each": {
                "tool": "s.get",
                "needs": ["list"],
                "for_each": "${{ steps.list.result.ids }}",
                "as": "id",
                "max_parallel": 3,
                "with": {"id": "${{ id }}", "position": "${{ index }}"},
            },
        }
    )
    gate = Gate()

    async def handler(call: Call) -> Any:
        return {"ids": list(range(7))} if call.tool == "list" else await gate.hold(call)

    invoker = FunctionInvoker(handler)
    outcome: list[Any] = []

    async def run() -> None:
        outcome.append(await execute(plan, {}, invoker, run_id="r1"))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(run)
            await anyio.wait_all_tasks_blocked()
            assert gate.in_flight == 3
            gate.release.set()
    result = outcome[0]
    assert gate.peak == 3
    assert result.steps["each"].result == [{"tool": "get", "id": i, "position": i} for i in range(7)]
    assert result.steps["each"].attempts == 7
    keys = [call.meta[IDEMPOTENCY_KEY_META] for call in invoker.calls_to("get") if call.meta]
    assert keys == [f"r1:each:{i}" for i in range(7)]


async def test_for_each_with_more_items_than_max_items_fails_the_step_without_calling() -> None:
    plan = plan_of({"each": {"tool": "s.t", "for_each": "${{ input.items }}", "max_items": 3}})
    invoker = FunctionInvoker(echo)

    result = await execute(plan, {"items": [1, 2, 3, 4]}, invoker)

    assert result.status == "failed"
    assert result.steps["each"].error_class == "too_many_items"
    assert result.steps["each"].error == "for_each yielded 4 items, more than max_items (3)"
    assert invoker.calls == []


async def test_for_each_over_something_that_is_not_a_list_fails_with_a_hint() -> None:
    plan = plan_of({"each": {"tool": "s.t", "for_each": "${{ input.missing }}"}})

    result = await execute(plan, {}, FunctionInvoker(echo))

    assert result.steps["each"].error_class == "expression_error"
    assert "for_each must yield a list, not null" in (result.steps["each"].error or "")


async def test_for_each_over_an_empty_list_succeeds_with_an_empty_result() -> None:
    plan = plan_of({"each": {"tool": "s.t", "for_each": "${{ input.items }}"}})
    invoker = FunctionInvoker(echo)

    result = await execute(plan, {"items": []}, invoker)

    assert result.steps["each"].status == "succeeded"
    assert result.steps["each"].result == []
    assert invoker.calls == []


async def test_false_condition_skips_the_step_and_dependents_get_its_default() -> None:
    plan = plan_of(
        {
            "maybe": {"tool": "s.maybe", "if": "${{ input.enabled }}", "default": {"rows": []}},
            "after": {"tool": "s.after", "needs": ["maybe"], "with": {"rows": "${{ steps.maybe.result.rows }}"}},
        },
        output={"value": {"status": "${{ steps.maybe.status }}"}},
    )
    invoker = FunctionInvoker(echo)
    recorder = Recorder()

    result = await execute(plan, {"enabled": False}, invoker, on_event=recorder)

    assert result.steps["maybe"].status == "skipped"
    assert result.steps["maybe"].attempts == 0
    assert [c.tool for c in invoker.calls] == ["after"]
    assert invoker.calls[0].arguments == {"rows": []}
    assert result.output == {"status": "skipped"}
    assert recorder.kinds("maybe") == ["started", "finished:skipped"]


async def test_condition_uses_jmespath_truth_where_zero_is_true_and_empty_is_false() -> None:
    plan = plan_of(
        {
            "zero": {"tool": "s.t", "if": "${{ input.zero }}"},
            "empty": {"tool": "s.t", "if": "${{ input.empty }}"},
        }
    )

    result = await execute(plan, {"zero": 0, "empty": []}, FunctionInvoker(echo))

    assert result.steps["zero"].status == "succeeded"
    assert result.steps["empty"].status == "skipped"


async def test_failure_under_on_error_continue_gives_dependents_the_default_and_the_run_succeeds() -> None:
    plan = plan_of(
        {
            "flaky": {"tool": "s.flaky", "on_error": "continue", "default": {"n": 0}},
            "after": {
                "tool": "s.after",
                "needs": ["flaky"],
                "with": {"n": "${{ steps.flaky.result.n }}", "why": "${{ steps.flaky.error }}"},
            },
        }
    )

    async def handler(call: Call) -> Any:
        if call.tool == "flaky":
            raise DownstreamUnavailable("s", "connection lost")
        return call.arguments

    result = await execute(plan, {}, FunctionInvoker(handler))

    assert result.status == "succeeded"
    assert result.steps["flaky"].status == "failed"
    assert result.steps["flaky"].error_class == "transport_error"
    assert result.steps["after"].result == {"n": 0, "why": "server 's': connection lost"}


async def test_defaults_on_error_continue_applies_to_every_step() -> None:
    plan = plan_of({"a": {"tool": "s.t"}}, defaults={"on_error": "continue"})

    async def handler(call: Call) -> Any:
        raise DownstreamUnavailable("s", "down")

    result = await execute(plan, {}, FunctionInvoker(handler))

    assert result.status == "succeeded"
    assert result.steps["a"].status == "failed"


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        (types.CallToolResult(content=[], structured_content={"a": 1}), {"a": 1}),
        (text_result('{"a": [1, 2]}'), {"a": [1, 2]}),
        (text_result("42"), 42),
        (text_result("plain words"), "plain words"),
        (text_result("NaN"), "NaN"),
        (types.CallToolResult(content=[]), None),
        (
            types.CallToolResult(
                content=[types.TextContent(type="text", text="a"), types.TextContent(type="text", text="b")]
            ),
            [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        ),
    ],
)
async def test_step_result_is_structured_content_else_parsed_json_text_else_the_text(
    returned: types.CallToolResult, expected: object
) -> None:
    plan = plan_of({"a": {"tool": "s.t"}})

    async def handler(call: Call) -> Any:
        return returned

    result = await execute(plan, {}, FunctionInvoker(handler))

    assert result.steps["a"].result == expected


async def test_every_finished_step_reports_progress_out_of_the_total() -> None:
    plan = plan_of({"a": {"tool": "s.t"}, "b": {"tool": "s.t", "needs": ["a"]}, "c": {"tool": "s.t", "needs": ["b"]}})
    recorder = Recorder()

    result = await execute(plan, {}, FunctionInvoker(echo), on_event=recorder, run_id="run-7")

    finished = [(e.step_id, e.finished_steps, e.total_steps) for e in recorder.events if e.kind == "finished"]
    assert finished == [("a", 1, 3), ("b", 2, 3), ("c", 3, 3)]
    assert {e.run_id for e in recorder.events} == {"run-7"}
    assert result.run_id == "run-7"
    assert all(run.duration is not None and run.duration >= 0 for run in result.steps.values())


async def test_each_call_carries_an_idempotency_key_and_the_step_timeout() -> None:
    plan = plan_of({"a": {"tool": "srv.tool", "timeout": "250ms"}})
    invoker = FunctionInvoker(echo)

    await execute(plan, {}, invoker, run_id="abc")

    call = invoker.calls[0]
    assert (call.server, call.tool, call.timeout) == ("srv", "tool", 0.25)
    assert call.meta == {IDEMPOTENCY_KEY_META: "abc:a:0"}


async def test_arguments_rendering_to_a_non_object_fail_the_step() -> None:
    plan = plan_of({"a": {"tool": "s.t", "with": "${{ input.list }}"}})

    result = await execute(plan, {"list": [1]}, FunctionInvoker(echo))

    assert result.steps["a"].error == "with must give an object of arguments, not an array"
    assert result.error is not None
    assert result.error.step_id == "a"
