"""Approvals that wait in the journal: a background run's question outlives the process asking it.

A run no request waits on (an MCP task, a resumed run) cannot ask anyone directly. Its approval
step writes the question into the journal (the step is ``waiting``), and waits until someone
answers it there: the task's client (``tasks/update`` or an elicitation on ``tasks/result``),
``orchestrator runs approve``, or any process sharing the database. The timeout counts from
when the question was first written, across restarts: a run resumed after a crash finds its
question still waiting, or answered meanwhile.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import anyio

from orchestrator.store import JournalEntry, read_step
from orchestrator.workflow import ApprovalRequest

if TYPE_CHECKING:
    from collections.abc import Callable

    from orchestrator.runs._journal import JournalWriter
    from orchestrator.store import StepRecord, Store
    from orchestrator.workflow import ApprovalAnswer

__all__ = ["JournalApprover", "question_of", "waiting_request"]

_POLL: Final = 0.5
"""Seconds between reads of the journal for an answer given by another process."""


def question_of(request: ApprovalRequest) -> dict[str, Any]:
    """What the journal keeps of a question (the ``waiting`` step's result)."""
    return {
        "message": request.message,
        "shown": request.shown,
        "tool": request.tool,
        "destructive": request.destructive,
    }


def waiting_request(run_id: str, step: StepRecord) -> ApprovalRequest | None:
    """The question a ``waiting`` step asks, or ``None`` if it asks none."""
    question: object = step.result
    if step.status != "waiting" or not isinstance(question, dict):
        return None
    fields: dict[str, Any] = dict(question)  # pyright: ignore[reportUnknownArgumentType]
    return ApprovalRequest(
        run_id,
        step.step_id,
        str(fields.get("tool", "")),
        str(fields.get("message", "")),
        fields.get("shown"),
        bool(fields.get("destructive", False)),
    )


class JournalApprover:
    """An ``Approver`` for one background run: asks through the journal, waits for the answer there."""

    def __init__(
        self,
        store: Store,
        writer: JournalWriter,
        timeout: float,
        answered: Callable[[str, str], anyio.Event],
        on_question: Callable[[str], None] | None = None,
    ) -> None:
        """
        Args:
            store: The state database.
            writer: The journal writer of the process running the run.
            timeout: Seconds a question waits for its answer (``runs.approval_timeout``).
            answered: The event set when this process records an answer for (run, step).
            on_question: Told the run's id once its question is in the journal.
        """
        self._store = store
        self._writer = writer
        self._timeout = timeout
        self._answered = answered
        self._on_question = on_question

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        """Write the question (unless an earlier life did), then wait for its answer or the timeout.

        Raises:
            StoreError: The journal cannot be read or written.
            RunLeaseLost: This process no longer holds the run.
        """
        engine = self._store.engine
        earlier = await read_step(engine, request.run_id, request.step_id)
        if earlier is not None and earlier.status in ("approved", "declined"):
            return "approved" if earlier.status == "approved" else "declined"
        since = earlier.started_at if earlier is not None and earlier.status == "waiting" else None
        if since is None:
            entry = JournalEntry(request.run_id, request.step_id, None, "waiting", question_of(request))
            await self._writer.write(entry)
            since = datetime.now(UTC)
            if self._on_question is not None:
                self._on_question(request.run_id)
        deadline = since + timedelta(seconds=self._timeout)
        while True:
            answered = self._answered(request.run_id, request.step_id)
            step = await read_step(engine, request.run_id, request.step_id)
            if step is not None and step.status in ("approved", "declined"):
                return "approved" if step.status == "approved" else "declined"
            left = (deadline - datetime.now(UTC)).total_seconds()
            if left <= 0:
                return "timeout"
            with anyio.move_on_after(min(left, _POLL)):
                await answered.wait()
