"""Durable runs: start, journal, finish, cancel and resume workflow runs kept in the state database.

Every composite run (a synchronous call, or an MCP task) is a row in the journal with its
input, the workflow as it began and who started it; each step's outcome is written before its
dependents start (``StoreJournal``). The process running a run holds a lease on it and renews
it while the run lasts. ``RunManager.serve`` claims the runs whose holder died (the lease ran
out, or was released) and resumes them: finished steps are recalled, not called again.

Deliberately does not: compile workflows against the catalogue, check grants, or turn a run's
result into an MCP result: the server does those, through ``RunHooks``.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio

from orchestrator.errors import RunLeaseLost, StoreError, WorkflowDefinitionError, WorkflowExecutionError
from orchestrator.runs._durable_approval import JournalApprover, waiting_request
from orchestrator.runs._journal import JournalWriter, StoreJournal
from orchestrator.store import (
    RunPrincipal,
    RunRecord,
    answer_approval,
    claim_runs,
    create_run,
    finish_run,
    list_runs,
    read_run,
    release_run,
    renew_lease,
)
from orchestrator.workflow import RUN_STEP, RunResult, execute, new_run_id, plan_hash, workflow_snapshot

if TYPE_CHECKING:
    from orchestrator.runs._request import RunHooks, RunRequest
    from orchestrator.store import Store
    from orchestrator.workflow import ApprovalRequest, Approver, StepEventFn, ToolInvoker, WorkflowPlan

__all__ = ["RunManager", "new_owner_id"]

logger = logging.getLogger(__name__)

_WAIT_POLL = 0.25
"""Seconds between reads of the journal while waiting on a run another process holds."""


@functools.lru_cache(maxsize=256)
def _plan_hash(plan: WorkflowPlan) -> str:
    """``plan_hash``, once per compiled plan (plans are compared by identity): not once per run."""
    return plan_hash(plan)


@functools.lru_cache(maxsize=256)
def _snapshot(plan: WorkflowPlan) -> str:
    """``workflow_snapshot`` of the plan's spec, once per compiled plan."""
    return workflow_snapshot(plan.spec)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (one we may not signal exists too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_owner_id() -> str:
    """A name for this process in the journal: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


@dataclass(slots=True)
class _LocalRun:
    """A run this process is executing now."""

    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    done: anyio.Event = field(default_factory=anyio.Event)


class RunManager:
    """Runs composite workflows durably, and resumes those whose process died.

    ``serve`` must be running (in a task group) for ``run`` and ``start`` to be durable: it
    commits the journal, renews leases and claims abandoned runs.
    """

    def __init__(
        self,
        store: Store,
        hooks: RunHooks,
        *,
        lease: float,
        approval_timeout: float = 600.0,
        owner: str | None = None,
    ) -> None:
        self._store = store
        self._hooks = hooks
        self._lease = lease
        self.owner = owner or new_owner_id()
        self._writer = JournalWriter(store, self.owner)
        self._answers: dict[tuple[str, str], anyio.Event] = {}
        self._changes: dict[str, anyio.Event] = {}
        self._approver = JournalApprover(
            store, self._writer, approval_timeout, self._answer_event, on_question=self._changed
        )
        self._local: dict[str, _LocalRun] = {}
        self._task_group: anyio.abc.TaskGroup | None = None
        self._stopping = False

    def stop(self) -> None:
        """The process is shutting down: runs cancelled from now on are released, not cancelled.

        Call it before cancelling what serves (requests and ``serve``): a run stopped by the
        shutdown stays ``running`` in the journal and is resumed by the next process, while a
        run whose caller went away before that is ``cancelled``.
        """
        self._stopping = True

    # ------------------------------------------------------------------ lifetime

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Commit the journal, keep leases, and resume abandoned runs until cancelled."""
        async with anyio.create_task_group() as task_group:
            self._task_group = task_group
            task_group.start_soon(self._writer.run, name="run journal writer")
            task_group.start_soon(self._keep_leases, name="run leases")
            task_group.start_soon(self._keep_claiming, name="run resumption")
            task_status.started()

    async def _keep_leases(self) -> None:
        while True:
            await anyio.sleep(self._lease / 3)
            for run_id, local in list(self._local.items()):
                try:
                    await renew_lease(
                        self._store.engine, run_id, self.owner, lease_seconds=self._lease, now=datetime.now(UTC)
                    )
                except RunLeaseLost as exc:
                    logger.info("run %s stopped here: %s", run_id, exc)
                    local.scope.cancel()
                except StoreError as exc:
                    logger.warning("cannot renew the lease of run %s: %s", run_id, exc)

    async def _keep_claiming(self) -> None:
        interval = min(max(self._lease / 2, 0.2), 5.0)
        while True:
            try:
                await self._release_dead_neighbours()
                claimed = await claim_runs(
                    self._store.engine, self.owner, lease_seconds=self._lease, now=datetime.now(UTC)
                )
            except StoreError as exc:
                logger.warning("cannot look for runs to resume: %s", exc)
                claimed = []
            for record in claimed:
                if record.id in self._local:  # its lease ran out under a stall of this process: still ours
                    continue
                logger.info("resuming run %s of %r", record.id, record.workflow)
                # Its lease is kept from now on, while it waits for the servers to start too.
                local = self._local[record.id] = _LocalRun()
                assert self._task_group is not None
                self._task_group.start_soon(self._resume, record, local, name=f"run {record.id}")
            await anyio.sleep(interval)

    async def _release_dead_neighbours(self) -> None:
        """Release the runs of processes on this host that are gone (their pid is not alive).

        A restarted ``serve`` then resumes what its predecessor was running at once, instead of
        after the lease; a process on another host is judged by its lease alone.
        """
        host = self.owner.split("/", 1)[0]
        for record in await list_runs(self._store.engine, status="running", limit=1000):
            owner = record.owner
            if owner is None or owner == self.owner:
                continue
            owner_host, _, rest = owner.partition("/")
            pid = rest.partition("/")[0]
            if owner_host == host and pid.isdigit() and not _alive(int(pid)):
                await release_run(self._store.engine, record.id, owner, at=datetime.now(UTC))

    # ------------------------------------------------------------------ runs

    async def run(self, request: RunRequest, *, run_id: str | None = None) -> RunResult:
        """Run ``request`` in the caller's task, journalled; cancelling the caller cancels the run.

        Raises:
            StoreError: The journal cannot be written at the start; nothing ran.
        """
        record = await self._create(request, run_id)
        return await self._execute(record, request.plan, request.invoker, request.approver, request.on_event)

    async def start(self, request: RunRequest, *, run_id: str | None = None) -> RunRecord:
        """Start ``request`` in the background (it outlives the caller); returns it as journalled.

        Raises:
            StoreError: The journal cannot be written; nothing ran.
        """
        if self._task_group is None:
            raise StoreError("run journal", "durable runs are not being served")
        record = await self._create(request, run_id)
        local = self._local[record.id] = _LocalRun()

        approver = request.approver or self._approver  # no one waits on it: questions wait in the journal

        async def background() -> None:
            await self._execute(record, request.plan, request.invoker, approver, request.on_event, local)

        self._task_group.start_soon(background, name=f"run {record.id}")
        return record

    async def _create(self, request: RunRequest, run_id: str | None) -> RunRecord:
        now = datetime.now(UTC)
        plan = request.plan
        record, _ = await create_run(
            self._store.engine,
            run_id or new_run_id(),
            workflow=plan.name,
            plan_hash=_plan_hash(plan),
            workflow_snapshot=_snapshot(plan),
            input=dict(request.arguments),
            principal=request.principal,
            catalogue_version=request.catalogue_version,
            at=now,
            owner=self.owner,
            lease_seconds=self._lease,
            deadline=now + timedelta(seconds=plan.timeout),
        )
        return record

    async def _resume(self, record: RunRecord, local: _LocalRun) -> None:
        try:
            plan = await self._hooks.resumable_plan(record)
        except WorkflowDefinitionError as exc:
            message = "cannot resume: its workflow no longer fits the catalogue:\n" + "\n".join(exc.problems)
            await self._finish(record.id, "failed", message, None)
            local.done.set()
            del self._local[record.id]
            return
        invoker = self._hooks.resumed_invoker(record)
        await self._execute(record, plan, invoker, self._approver, None, local)

    async def _execute(
        self,
        record: RunRecord,
        plan: WorkflowPlan,
        invoker: ToolInvoker,
        approver: Approver | None,
        on_event: StepEventFn | None,
        local: _LocalRun | None = None,
    ) -> RunResult:
        """Execute a journalled run to its end here, and write how it ended.

        A run this process loses meanwhile (cancelled, or claimed by another process) stops
        where it is and writes nothing more; its result then says so.
        """
        background = local is not None  # no caller waits on it: only a shutdown cancels it
        local = local or _LocalRun()
        self._local[record.id] = local
        journal = StoreJournal(self._writer, record.id, {step.key: step for step in record.steps})
        timeout = None if record.deadline is None else (record.deadline - datetime.now(UTC)).total_seconds()
        result: RunResult | None = None
        try:
            try:
                with local.scope:
                    result = await execute(
                        plan,
                        record.input,
                        invoker,
                        on_event=on_event,
                        run_id=record.id,
                        catalogue_version=record.catalogue_version,
                        journal=journal,
                        approver=approver,
                        timeout=timeout,
                    )
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    if self._stopping or background:
                        await self._release(record.id)
                    else:
                        await self._finish(record.id, "cancelled", "the call that started the run was cancelled", None)
                raise
            except BaseExceptionGroup as group:
                return self._journal_failure(record, group)
            if result is None:  # the scope was cancelled: the lease was lost or the run cancelled
                return self._gone(record, "the run was cancelled, or another process took it over")
            error = str(result.error) if result.error is not None else None
            outcome = self._hooks.outcome(result).model_dump(mode="json", by_alias=True, exclude_none=True)
            await self._finish(record.id, result.status, error, outcome)
            return result
        finally:
            local.done.set()
            if self._local.get(record.id) is local:
                del self._local[record.id]
            for key in [key for key in self._answers if key[0] == record.id]:
                del self._answers[key]
            self._changed(record.id)

    def _journal_failure(self, record: RunRecord, group: BaseExceptionGroup[BaseException]) -> RunResult:
        """The result of a run the journal stopped: lost to another process, or not writable.

        Raises:
            BaseExceptionGroup: ``group`` holds anything else (a bug): it is raised again.
        """
        lost, rest = group.split(RunLeaseLost)
        if lost is not None and rest is None:
            return self._gone(record, str(lost.exceptions[0]))
        unwritable, rest = group.split(StoreError)
        if unwritable is not None and rest is None:
            # The run stays `running` in the database, and is resumed by whichever process
            # claims it once its lease runs out.
            return self._gone(record, f"the run journal cannot be written: {unwritable.exceptions[0]}")
        raise group

    def _gone(self, record: RunRecord, message: str) -> RunResult:
        error = WorkflowExecutionError(record.id, RUN_STEP, message)
        return RunResult(record.id, "failed", None, {}, error, record.catalogue_version)

    async def _release(self, run_id: str) -> None:
        try:
            if await release_run(self._store.engine, run_id, self.owner, at=datetime.now(UTC)):
                logger.info("run %s released at shutdown; the next process resumes it", run_id)
        except StoreError as exc:  # its lease runs out instead
            logger.warning("cannot release run %s at shutdown: %s", run_id, exc)

    async def _finish(self, run_id: str, status: str, error: str | None, outcome: Any) -> None:
        try:
            await finish_run(
                self._store.engine,
                run_id,
                status,
                at=datetime.now(UTC),
                error=error,
                outcome=outcome,
                owner=self.owner,
                with_steps=False,
            )
            logger.info("run %s ended: %s", run_id, status)
        except RunLeaseLost as exc:  # cancelled or taken over meanwhile: what is stored stands
            logger.info("run %s ended here as %s, but is no longer this process's: %s", run_id, status, exc)

    # ------------------------------------------------------------------ approvals

    def watch(self, run_id: str) -> anyio.Event:
        """An event set at the next change of run ``run_id`` made in this process: a question
        asked (an approval step waits), or the run's end. Changes made elsewhere are not seen."""
        event = self._changes.get(run_id)
        if event is None:
            event = self._changes[run_id] = anyio.Event()
        return event

    def _changed(self, run_id: str) -> None:
        event = self._changes.pop(run_id, None)
        if event is not None:
            event.set()

    def _answer_event(self, run_id: str, step_id: str) -> anyio.Event:
        """The event set when this process records the answer to (run, step); fresh after each use."""
        event = self._answers.get((run_id, step_id))
        if event is None or event.is_set():
            event = self._answers[(run_id, step_id)] = anyio.Event()
        return event

    def pending_approvals(self, record: RunRecord) -> list[ApprovalRequest]:
        """The questions ``record``'s approval steps wait for (an MCP task's input requests)."""
        if record.status != "running":
            return []
        return [request for step in record.steps if (request := waiting_request(record.id, step)) is not None]

    async def answer(self, run_id: str, principal: RunPrincipal, step_id: str, *, approved: bool, by: str) -> bool:
        """Answer ``principal``'s run's approval step ``step_id``; whether it was waiting.

        Raises:
            StoreError: The database cannot be read or written.
        """
        if await self.get(run_id, principal) is None:
            return False
        done = await answer_approval(
            self._store.engine, run_id, step_id, approved=approved, at=datetime.now(UTC), by=by
        )
        event = self._answers.pop((run_id, step_id), None)
        if event is not None:
            event.set()
        return done

    # ------------------------------------------------------------------ queries

    async def get(self, run_id: str, principal: RunPrincipal) -> RunRecord | None:
        """Run ``run_id`` with its steps, if ``principal`` started it (else ``None``, as if absent).

        Raises:
            StoreError: The database cannot be read.
        """
        record = await read_run(self._store.engine, run_id)
        return record if record is not None and record.principal == principal else None

    async def list(self, principal: RunPrincipal, *, limit: int = 100) -> list[RunRecord]:
        """``principal``'s runs, newest first, without their steps.

        Raises:
            StoreError: The database cannot be read.
        """
        return await list_runs(self._store.engine, principal=principal, limit=limit)

    async def wait(self, run_id: str, principal: RunPrincipal) -> RunRecord | None:
        """Wait until run ``run_id`` is over, and return it (``None`` if ``principal`` has no such run).

        Raises:
            StoreError: The database cannot be read.
        """
        while True:
            record = await self.get(run_id, principal)
            if record is None or record.status != "running":
                return record
            local = self._local.get(run_id)
            if local is not None:
                await local.done.wait()
            else:
                await anyio.sleep(_WAIT_POLL)

    async def cancel(self, run_id: str, principal: RunPrincipal, reason: str) -> RunRecord | None:
        """Cancel ``principal``'s run ``run_id``: it is ``cancelled`` in the journal when this returns.

        A run another process holds stops there at its next lease renewal. A run that is over is
        returned as it is.

        Raises:
            StoreError: The database cannot be read or written.
        """
        record = await self.get(run_id, principal)
        if record is None or record.status != "running":
            return record
        try:
            record = await finish_run(self._store.engine, run_id, "cancelled", at=datetime.now(UTC), error=reason)
        except RunLeaseLost:  # it ended meanwhile
            return await self.get(run_id, principal)
        local = self._local.get(run_id)
        if local is not None:
            local.scope.cancel()
        return record
