"""The durable run manager on a real SQLite state database: journal, resume, cancel, approvals.

The steps' tool calls go to an invoker in this process that counts them: the journal sits
behind the executor, so what matters is which calls are made again after a "crash" (a run
left ``running`` by an owner whose lease ran out).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import mcp_types as types
import pytest
from sqlalchemy.engine import make_url

from orchestrator.runs import RunManager, RunRequest
from orchestrator.store import (
    RunPrincipal,
    RunRecord,
    create_run,
    open_store,
    read_run,
    record_step_finished,
    record_step_started,
)
from orchestrator.workflow import (
    ApprovalPlan,
    RunResult,
    WorkflowPlan,
    WorkflowSpec,
    compile_workflow,
    plan_hash,
    workflow_snapshot,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from orchestrator.store import Store
    from orchestrator.workflow import ToolInvoker

pytestmark = pytest.mark.anyio

T = TypeVar("T")

LOCAL = RunPrincipal(None)


class CountingInvoker:
    """Counts calls per step label; a label in ``hold`` waits until ``release`` is set."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.hold: set[str] = set()
        self.release = anyio.Event()
        self.holding = anyio.Event()
        self.cancelled: list[str] = []

    async def call_tool(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        timeout: float | None,
        meta: dict[str, Any] | None,
    ) -> types.CallToolResult:
        label = str(arguments["label"])
        self.calls[label] = self.calls.get(label, 0) + 1
        if label in self.hold:
            self.holding.set()
            try:
                await self.release.wait()
            except anyio.get_cancelled_exc_class():
                self.cancelled.append(label)
                raise
        return types.CallToolResult(content=[], structured_content={"label": label})


class Hooks:
    def __init__(self, plan: WorkflowPlan, invoker: ToolInvoker) -> None:
        self.plan = plan
        self.invoker = invoker

    async def resumable_plan(self, record: RunRecord) -> WorkflowPlan:
        return self.plan

    def resumed_invoker(self, record: RunRecord) -> ToolInvoker:
        return self.invoker

    def outcome(self, result: RunResult) -> types.CallToolResult:
        return types.CallToolResult(content=[], structured_content={"status": result.status})


def chain(*, idempotent: bool | None = None, timeout: str | None = None) -> WorkflowPlan:
    """a -> b -> c, each a call labelled with its step id."""
    steps: dict[str, Any] = {}
    for index, name in enumerate("abc"):
        step: dict[str, Any] = {"tool": "s.t", "with": {"label": name}}
        if index:
            step["needs"] = ["ab"[index - 1]]
        if idempotent is not None:
            step["idempotent"] = idempotent
        steps[name] = step
    document: dict[str, Any] = {"version": 1, "name": "chain", "description": "a, b, c", "steps": steps}
    if timeout is not None:
        document["limits"] = {"timeout": timeout}
    return compile_workflow(WorkflowSpec.model_validate(document), "chain")


def with_approval(plan: WorkflowPlan, step_id: str) -> WorkflowPlan:
    step = dataclasses.replace(plan.steps[step_id], approval=ApprovalPlan("Go on?"))
    return dataclasses.replace(plan, steps={**plan.steps, step_id: step})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(make_url(f"sqlite+aiosqlite:///{tmp_path / 'state.db'}")) as opened:
        yield opened


async def dead_run(
    store: Store, plan: WorkflowPlan, *, created: datetime | None = None, run_id: str = "deadbeef" * 4
) -> str:
    """A run as a process that died left it: running, leased by no live owner, lease over."""
    at = created or datetime.now(UTC) - timedelta(seconds=5)
    record, _ = await create_run(
        store.engine,
        run_id,
        workflow=plan.name,
        plan_hash=plan_hash(plan),
        workflow_snapshot=workflow_snapshot(plan.spec),
        input={},
        principal=LOCAL,
        catalogue_version=None,
        at=at,
        owner="host/1/dead",
        lease_seconds=1,
        deadline=at + timedelta(seconds=plan.timeout),
    )
    return record.id


async def served(manager: RunManager, job: Callable[[], Awaitable[T]]) -> T:
    """``job``'s result, run while ``manager`` serves (journal writer, leases, resumption)."""
    results: list[T] = []
    async with anyio.create_task_group() as tg:
        await tg.start(manager.serve)
        results.append(await job())
        tg.cancel_scope.cancel()
    return results[0]


async def resumed(store: Store, plan: WorkflowPlan, invoker: CountingInvoker, run_id: str) -> RunRecord:
    """Serve a manager until it has taken run ``run_id`` over and finished it (bounded)."""
    manager = RunManager(store, Hooks(plan, invoker), lease=30)

    async def over() -> RunRecord | None:
        with anyio.fail_after(10):
            return await manager.wait(run_id, LOCAL)

    record = await served(manager, over)
    assert record is not None
    return record


async def test_a_run_is_journalled_step_by_step_and_its_outcome_kept(store: Store) -> None:
    invoker = CountingInvoker()
    plan = chain()
    manager = RunManager(store, Hooks(plan, invoker), lease=30)
    result = await served(manager, lambda: manager.run(RunRequest(plan, {}, LOCAL, invoker)))
    assert result.status == "succeeded"
    record = await read_run(store.engine, result.run_id)
    assert record is not None
    assert record.status == "succeeded"
    assert record.owner is None
    assert record.outcome["structuredContent"] == {"status": "succeeded"}
    assert {step.key: (step.status, step.result) for step in record.steps} == {
        "a": ("succeeded", {"label": "a"}),
        "b": ("succeeded", {"label": "b"}),
        "c": ("succeeded", {"label": "c"}),
    }


async def test_a_dead_processs_run_resumes_without_calling_its_finished_steps(store: Store) -> None:
    plan = chain()
    run_id = await dead_run(store, plan)
    now = datetime.now(UTC)
    await record_step_started(store.engine, run_id, "a", at=now)
    await record_step_finished(store.engine, run_id, "a", status="succeeded", result={"label": "a"}, at=now)
    invoker = CountingInvoker()
    record = await resumed(store, plan, invoker, run_id)
    assert record.status == "succeeded"
    assert invoker.calls == {"b": 1, "c": 1}


@pytest.mark.parametrize(
    ("idempotent", "status", "calls"), [(True, "succeeded", {"b": 1, "c": 1}), (False, "interrupted", {})]
)
async def test_a_step_in_flight_is_called_again_only_if_idempotent(
    store: Store, idempotent: bool, status: str, calls: dict[str, int]
) -> None:
    plan = chain(idempotent=idempotent)
    run_id = await dead_run(store, plan)
    now = datetime.now(UTC)
    await record_step_finished(store.engine, run_id, "a", status="succeeded", result={"label": "a"}, at=now)
    await record_step_started(store.engine, run_id, "b", at=now)
    invoker = CountingInvoker()
    record = await resumed(store, plan, invoker, run_id)
    assert (record.status, invoker.calls) == (status, calls)
    if status == "interrupted":
        assert record.error is not None
        assert f"orchestrator runs resume {run_id} --retry-step b" in record.error


async def test_a_resumed_runs_deadline_counts_from_when_it_began(store: Store) -> None:
    plan = chain(timeout="2s")
    run_id = await dead_run(store, plan, created=datetime.now(UTC) - timedelta(seconds=10))
    invoker = CountingInvoker()
    record = await resumed(store, plan, invoker, run_id)
    assert record.status == "failed"
    assert record.error is not None
    assert "limits.timeout (2s), counted from when it began" in record.error
    assert invoker.calls == {}


async def test_cancelling_a_background_run_stops_its_call_and_marks_it_cancelled(store: Store) -> None:
    invoker = CountingInvoker()
    invoker.hold = {"b"}
    plan = chain()
    manager = RunManager(store, Hooks(plan, invoker), lease=30)

    async def start_then_cancel() -> str:
        started = await manager.start(RunRequest(plan, {}, LOCAL, invoker))
        with anyio.fail_after(10):
            await invoker.holding.wait()
        assert await manager.cancel(started.id, RunPrincipal("someone else"), "no") is None
        cancelled = await manager.cancel(started.id, LOCAL, "the client cancelled the task")
        assert cancelled is not None
        assert cancelled.status == "cancelled"
        with anyio.fail_after(10):
            await manager.wait(started.id, LOCAL)
        return started.id

    run_id = await served(manager, start_then_cancel)
    assert invoker.cancelled == ["b"]
    record = await read_run(store.engine, run_id)
    assert record is not None
    assert (record.status, record.error) == ("cancelled", "the client cancelled the task")
    assert invoker.calls == {"a": 1, "b": 1}


async def test_a_run_stopped_by_a_shutdown_is_released_and_the_next_process_finishes_it(store: Store) -> None:
    invoker = CountingInvoker()
    invoker.hold = {"b"}
    plan = chain(idempotent=True)
    first = RunManager(store, Hooks(plan, invoker), lease=30)

    async def start_then_stop() -> str:
        started = await first.start(RunRequest(plan, {}, LOCAL, invoker))
        with anyio.fail_after(10):
            await invoker.holding.wait()
        first.stop()
        return started.id

    run_id = await served(first, start_then_stop)
    record = await read_run(store.engine, run_id)
    assert record is not None
    assert (record.status, record.owner) == ("running", None)

    invoker.hold = set()
    record = await resumed(store, plan, invoker, run_id)
    assert record.status == "succeeded"
    assert invoker.calls == {"a": 1, "b": 2, "c": 1}


async def test_runs_are_bound_to_who_started_them(store: Store) -> None:
    invoker = CountingInvoker()
    plan = chain()
    alice, bob = RunPrincipal("client-a", "alice"), RunPrincipal("client-a", "bob")
    manager = RunManager(store, Hooks(plan, invoker), lease=30)
    result = await served(manager, lambda: manager.run(RunRequest(plan, {}, alice, invoker)))
    assert await manager.get(result.run_id, alice) is not None
    assert await manager.get(result.run_id, bob) is None
    assert await manager.wait(result.run_id, bob) is None
    assert [run.id for run in await manager.list(alice)] == [result.run_id]
    assert await manager.list(bob) == []


@pytest.mark.parametrize(
    ("approved", "status", "calls"),
    [(True, "succeeded", {"a": 1, "b": 1, "c": 1}), (False, "declined", {"a": 1})],
)
async def test_a_background_runs_approval_waits_in_the_journal_until_answered(
    store: Store, approved: bool, status: str, calls: dict[str, int]
) -> None:
    invoker = CountingInvoker()
    plan = with_approval(chain(), "b")
    manager = RunManager(store, Hooks(plan, invoker), lease=30)

    async def ask_then_answer() -> RunRecord | None:
        started = await manager.start(RunRequest(plan, {}, LOCAL, invoker))
        asked = manager.watch(started.id)  # before the run's task even begins: nothing is missed
        with anyio.fail_after(10):
            await asked.wait()
        current = await read_run(store.engine, started.id)
        assert current is not None
        pending = manager.pending_approvals(current)
        assert [(p.step_id, p.message, p.tool) for p in pending] == [("b", "Go on?", "s.t")]
        assert not await manager.answer(started.id, RunPrincipal("intruder"), "b", approved=True, by="x")
        assert await manager.answer(started.id, LOCAL, "b", approved=approved, by="test")
        with anyio.fail_after(10):
            return await manager.wait(started.id, LOCAL)

    record = await served(manager, ask_then_answer)
    assert record is not None
    assert (record.status, invoker.calls) == (status, calls)


async def test_an_unanswered_approval_times_out_as_declined(store: Store) -> None:
    invoker = CountingInvoker()
    plan = with_approval(chain(), "a")
    manager = RunManager(store, Hooks(plan, invoker), lease=30, approval_timeout=0.3)

    async def start_and_wait() -> RunRecord | None:
        started = await manager.start(RunRequest(plan, {}, LOCAL, invoker))
        with anyio.fail_after(10):
            return await manager.wait(started.id, LOCAL)

    record = await served(manager, start_and_wait)
    assert record is not None
    assert record.status == "declined"
    assert record.error is not None
    assert "no answer to the approval of step 'a' in time" in record.error
    assert invoker.calls == {}
