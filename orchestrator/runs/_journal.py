"""The run journal behind the executor: each step's start and outcome, durable before it matters.

``JournalWriter`` commits what every run of the process writes, many entries per transaction:
whoever writes waits until the transaction that holds the entry committed (group commit), so a
step's outcome is durable before its dependents start and a step's start is durable before its
tool is called, at the cost of one commit per burst instead of one per entry.

``StoreJournal`` is one run's ``RunJournal``: it answers ``recall`` from the steps an earlier
life of the run journalled (read once, when the run was claimed), and decides what a step
that was in flight when that life ended means: run it again if it is idempotent, else stop
the run as interrupted until someone decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import anyio
import anyio.lowlevel

from orchestrator.errors import RunLeaseLost, StoreError
from orchestrator.store import JournalEntry, step_key, write_journal
from orchestrator.workflow import JournalledStep, StepInterrupted

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.store import StepRecord, Store
    from orchestrator.workflow import StepPlan

__all__ = ["JournalWriter", "StoreJournal", "interrupted_message"]

_OUTCOMES: Final = {"succeeded": "succeeded", "skipped": "skipped", "failed": "failed", "unknown_outcome": "failed"}
"""The journal's status of each step outcome; a cancelled step is not an outcome and is not written."""


@dataclass(slots=True)
class _Pending:
    entry: JournalEntry
    done: anyio.Event = field(default_factory=anyio.Event)
    error: StoreError | None = None


class JournalWriter:
    """Writes journal entries of every run this process holds, one transaction per burst."""

    def __init__(self, store: Store, owner: str) -> None:
        self._store = store
        self._owner = owner
        self._queue: list[_Pending] = []
        self._wake = anyio.Event()
        self._closed = False

    async def write(self, entry: JournalEntry) -> None:
        """Journal ``entry``; returns once it is committed.

        Raises:
            RunLeaseLost: This process no longer holds the run (it was cancelled, or claimed by
                another process after the lease ran out); nothing was written.
            StoreError: The database refused, or the writer is closed.
        """
        pending = self.enqueue(entry)
        await pending.done.wait()
        if pending.error is not None:
            raise pending.error

    def enqueue(self, entry: JournalEntry) -> _Pending:
        """Queue ``entry`` for the next commit without waiting for it (entries commit in order).

        Raises:
            StoreError: The writer is closed.
        """
        if self._closed:
            raise StoreError("run journal", "the journal writer is closed")
        pending = _Pending(entry)
        self._queue.append(pending)
        self._wake.set()
        return pending

    async def run(self) -> None:
        """Commit what is queued, burst by burst, until cancelled (run it in a task group)."""
        try:
            while True:
                await self._wake.wait()
                # Let every task that is ready now run to its own write first: steps whose calls
                # ended together (a for-each, a wide layer of the DAG) share one commit.
                await anyio.lowlevel.checkpoint()
                self._wake = anyio.Event()
                batch, self._queue = self._queue, []
                await self._commit(batch)
        finally:
            self._closed = True
            for pending in self._queue:
                pending.error = StoreError("run journal", "the journal writer stopped")
                pending.done.set()

    async def _commit(self, batch: list[_Pending]) -> None:
        lost: dict[str, RunLeaseLost] = {}
        try:
            with anyio.CancelScope(shield=True):  # a burst is committed or failed whole, never abandoned
                lost = await write_journal(
                    self._store.engine, [pending.entry for pending in batch], owner=self._owner, at=datetime.now(UTC)
                )
        except StoreError as exc:
            for pending in batch:
                pending.error = exc
                pending.done.set()
            return
        for pending in batch:
            pending.error = lost.get(pending.entry.run_id)
            pending.done.set()


def interrupted_message(run_id: str, step_id: str, item: int | None) -> str:
    """Why a run stopped at a step that was in flight when the process running it ended."""
    which = f"step {step_id!r}" if item is None else f"item {item} of step {step_id!r}"
    return (
        f"{which} was in flight when the process running this run stopped, and it is not idempotent, "
        f"so it was not called again; decide with `orchestrator runs resume {run_id} --retry-step {step_id}` "
        f"or `--skip-step {step_id}`"
    )


class StoreJournal:
    """One run's journal: recalls what an earlier life finished, writes what this one does."""

    def __init__(self, writer: JournalWriter, run_id: str, earlier: Mapping[str, StepRecord] | None = None) -> None:
        self._writer = writer
        self._run_id = run_id
        self._earlier = dict(earlier or {})

    async def recall(self, step: StepPlan, item: int | None) -> JournalledStep | None:
        """What an earlier life journalled for the step, or ``None`` to run it now.

        Raises:
            StepInterrupted: It was in flight when that life ended and is not idempotent.
        """
        record = self._earlier.get(step_key(step.id, item))
        if record is None:
            return None
        if record.status == "succeeded":
            return JournalledStep("succeeded", record.result, attempts=record.attempts)
        if record.status == "skipped":
            return JournalledStep("skipped", attempts=record.attempts)
        if record.status == "failed":
            return JournalledStep("failed", error=record.error, attempts=record.attempts)
        if record.status != "running" or (item is None and step.for_each is not None):
            return None  # an approval still asked, or a for-each step whose items say what was in flight
        if step.idempotent is True:
            return None  # in flight when the process died: calling it again is harmless
        raise StepInterrupted(step.id, interrupted_message(self._run_id, step.id, item))

    async def started(self, step: StepPlan, item: int | None) -> None:
        """Journal the start; a step that may not be repeated calls its tool only once it is durable.

        An idempotent step does not wait for it: if the process dies before the start is
        committed, the resumed run finds no record and calls the step, which is harmless.
        """
        entry = JournalEntry(self._run_id, step.id, item, "running")
        if step.idempotent is True:
            self._writer.enqueue(entry)
        else:
            await self._writer.write(entry)

    async def finished(self, step: StepPlan, item: int | None, outcome: JournalledStep) -> None:
        """Journal the outcome before dependents start (a cancelled step writes nothing)."""
        status = _OUTCOMES.get(outcome.status)
        if status is None:
            return
        result = outcome.result if status == "succeeded" else None
        await self._writer.write(JournalEntry(self._run_id, step.id, item, status, result, outcome.error))
