"""What a run may be given besides an invoker: a journal to resume from, and someone to ask.

Pure module: protocols and values, no I/O. The executor calls a ``RunJournal`` around every
step (and every for-each item) so the outcome is durable before dependents start, and an
``Approver`` before a step that needs the user's approval. Implementations live above this
package (``orchestrator.runs`` keeps the journal in the state database; the server asks the
user through elicitation); the executor's scheduling does not change with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from orchestrator.workflow._plan import StepPlan
    from orchestrator.workflow._run import StepStatus

__all__ = [
    "ApprovalAnswer",
    "ApprovalRequest",
    "Approver",
    "JournalledStep",
    "RunJournal",
    "StepInterrupted",
]


@dataclass(frozen=True, slots=True)
class JournalledStep:
    """A step's (or a for-each item's) outcome as a journal keeps it.

    Attributes:
        status: ``succeeded``, ``failed``, ``skipped`` or ``unknown_outcome``.
        result: The step's result value (for an item: the item's value).
        error: What went wrong, or ``None``.
        error_class: The failure's class (``StepRun.error_class``), or ``None``.
        attempts: Calls made for it.
    """

    status: StepStatus
    result: Any = None
    error: str | None = None
    error_class: str | None = None
    attempts: int = 0


class StepInterrupted(Exception):
    """A journal's answer for a step that was in flight when an earlier process died.

    Raised by ``RunJournal.recall`` when the step may not be repeated (it is not idempotent)
    and nobody decided to retry or skip it: the run stops as ``interrupted`` naming the step.
    """

    def __init__(self, step_id: str, message: str) -> None:
        super().__init__(message)
        self.step_id = step_id
        self.message = message


class RunJournal(Protocol):
    """Keeps each step's outcome so a run resumed by another process does not redo it."""

    async def recall(self, step: StepPlan, item: int | None) -> JournalledStep | None:
        """The outcome an earlier life of this run journalled for ``step`` (item ``item``), if any.

        ``None`` means "run it now". ``item`` is ``None`` for the step itself, the item's index
        for one item of a for-each step.

        Raises:
            StepInterrupted: It was in flight when the earlier process died and may not be repeated.
        """
        ...

    async def started(self, step: StepPlan, item: int | None) -> None:
        """Journal that ``step`` (item ``item``) is about to call its tool; durable when this returns."""
        ...

    async def finished(self, step: StepPlan, item: int | None, outcome: JournalledStep) -> None:
        """Journal ``step``'s (item ``item``'s) outcome; durable when this returns, before dependents start."""
        ...


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A step waits for the user's approval before it calls its tool.

    Attributes:
        run_id: The run.
        step_id: The step.
        tool: ``server.tool`` the step calls.
        message: What to ask (the step's ``approve.message``).
        shown: The value of ``approve.show`` for this run (what the user should see), or ``None``.
        destructive: The approval is asked because the tool is destructive (``approve_destructive``).
    """

    run_id: str
    step_id: str
    tool: str
    message: str
    shown: Any = None
    destructive: bool = False


ApprovalAnswer = Literal["approved", "declined", "timeout"]
"""What came of asking: approved, declined (or cancelled) by the user, or no answer in time."""


class Approver(Protocol):
    """Asks the user whether a step may run."""

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        """Ask, and wait for the answer (bounded by the approver's own timeout)."""
        ...
