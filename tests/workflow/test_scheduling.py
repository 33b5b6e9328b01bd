"""The executor's scheduling: steps start the moment their own needs end, together when ready together.

Each test waits on events (bounded by ``fail_after``), never on time: a scheduler that ran
level by level, or one step at a time, would leave a call waiting forever and fail the test.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from orchestrator.errors import DownstreamToolError
from orchestrator.workflow import StepEvent, execute
from tests.workflow.helpers import Call, FunctionInvoker, plan_of

pytestmark = pytest.mark.anyio


async def test_a_step_starts_when_its_own_needs_end_while_a_step_of_the_layer_before_still_runs() -> None:
    # Layer 0: a, b, c. Layer 1: x needs a and b, y needs b and c. Layer 2: z needs x.
    plan = plan_of(
        {
            "a": {"tool": "s.a"},
            "b": {"tool": "s.b"},
            "c": {"tool": "s.c"},
            "x": {"tool": "s.x", "needs": ["a", "b"]},
            "y": {"tool": "s.y", "needs": ["b", "c"]},
            "z": {"tool": "s.z", "needs": ["x"]},
        }
    )
    z_called = anyio.Event()

    async def handler(call: Call) -> Any:
        if call.tool == "c":
            await z_called.wait()  # c ends only once z, two layers on, has been called
        if call.tool == "z":
            z_called.set()
        return {}

    invoker = FunctionInvoker(handler)
    with anyio.fail_after(5):
        result = await execute(plan, {}, invoker)

    assert result.status == "succeeded", result.error
    called = [call.tool for call in invoker.calls]
    assert called.index("z") < called.index("y")  # y needs c, which was still running
    assert all(result.steps[step].status == "succeeded" for step in "abcxyz")


async def test_dependents_made_ready_by_one_step_all_run_at_the_same_time() -> None:
    plan = plan_of(
        {
            "root": {"tool": "s.root"},
            **{name: {"tool": f"s.{name}", "needs": ["root"]} for name in ("p", "q", "r")},
        }
    )
    in_flight: set[str] = set()
    all_in_flight = anyio.Event()

    async def handler(call: Call) -> Any:
        if call.tool == "root":
            return {}
        in_flight.add(call.tool)
        if in_flight == {"p", "q", "r"}:
            all_in_flight.set()
        await all_in_flight.wait()  # a dependent run after another would wait here forever
        return {}

    with anyio.fail_after(5):
        result = await execute(plan, {}, FunctionInvoker(handler))

    assert result.status == "succeeded", result.error


async def test_a_chain_of_steps_whose_calls_never_wait_still_lets_other_tasks_run_between_steps() -> None:
    plan = plan_of({"s0": {"tool": "s.t"}, **{f"s{i}": {"tool": "s.t", "needs": [f"s{i - 1}"]} for i in range(1, 10)}})
    ticks = 0
    seen: list[int] = []

    async def handler(call: Call) -> Any:
        seen.append(ticks)  # no await: the call returns without giving the event loop a turn
        return {}

    async def tick(done: anyio.Event) -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await anyio.lowlevel.checkpoint()

    done = anyio.Event()
    statuses: list[str] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(tick, done)
            statuses.append((await execute(plan, {}, FunctionInvoker(handler))).status)
            done.set()

    assert statuses == ["succeeded"]
    assert len(seen) == 10
    assert all(later > earlier for earlier, later in pairwise(seen)), seen


async def test_a_step_that_reaches_its_call_after_the_run_failed_does_not_call_its_tool() -> None:
    plan = plan_of({"fails": {"tool": "s.fails"}, "late": {"tool": "s.late"}})
    failed_step_finished = anyio.Event()

    async def on_event(event: StepEvent) -> None:
        if event.step_id == "fails" and event.kind == "finished":
            failed_step_finished.set()
        if event.step_id == "late" and event.kind == "started":
            # A slow progress report: "late" goes on towards its call only after "fails" has
            # failed the run (the run is cancelled as soon as that step's event is sent).
            with anyio.CancelScope(shield=True):
                await failed_step_finished.wait()

    async def handler(call: Call) -> Any:
        if call.tool == "fails":
            raise DownstreamToolError("s", "broken", 1)
        return {}

    invoker = FunctionInvoker(handler)
    with anyio.fail_after(5):
        result = await execute(plan, {}, invoker, on_event=on_event)

    assert result.status == "failed"
    assert result.error is not None
    assert result.error.step_id == "fails"
    assert [call.tool for call in invoker.calls] == ["fails"]
    assert result.steps["late"].status == "cancelled"
    assert result.steps["late"].attempts == 0
