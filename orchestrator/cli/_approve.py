"""Approval steps of ``orchestrator run``: asked on the terminal, or approved by ``--yes``.

On a terminal (stdin is a TTY) each question is the text ``orchestrator.runs.approval_text``
makes, answered ``y`` or ``N`` (anything else, or end of input, declines), waiting at most
``runs.approval_timeout``; questions of steps that run side by side are asked one at a time,
and the run view stops redrawing while one is open. ``--yes`` approves every step (and says
so on stderr), as does a replay (it calls nothing: the recording holds what the tools answered
when the run was approved). Without either, a run with approval steps is refused before
anything is called.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

import anyio

from orchestrator.runs import approval_text

if TYPE_CHECKING:
    from orchestrator.cli._runview import RunView
    from orchestrator.workflow import ApprovalAnswer, ApprovalRequest, Approver, WorkflowPlan

__all__ = ["TerminalApprover", "YesApprover", "approver_for", "steps_asking"]

_YES = frozenset({"y", "yes"})


def steps_asking(plan: WorkflowPlan) -> list[str]:
    """The steps of ``plan`` that ask for approval before their call."""
    return [step.id for step in plan.steps.values() if step.approval is not None]


class YesApprover:
    """Approves every step, telling the user which (and why: ``by``) on ``stream``."""

    def __init__(self, by: str = "--yes", stream: TextIO | None = None) -> None:
        self._by = by
        self._stream = stream or sys.stderr

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        """Approve ``request``."""
        print(f"approved by {self._by}: step {request.step_id!r} ({request.tool})", file=self._stream, flush=True)
        return "approved"


class TerminalApprover:
    """Asks the person at the terminal, one question at a time."""

    def __init__(
        self, view: RunView | None, timeout: float, stdin: TextIO | None = None, stream: TextIO | None = None
    ) -> None:
        """Ask on ``stream`` (stderr), read ``stdin``, give up after ``timeout`` seconds per question."""
        self._view = view
        self._timeout = timeout
        self._stdin = stdin or sys.stdin
        self._stream = stream or sys.stderr
        self._one_at_a_time = anyio.Lock()

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        """Ask, and wait (bounded) for ``y`` or ``n``."""
        async with self._one_at_a_time:
            if self._view is None:
                return await self._ask(request)
            with self._view.held():
                return await self._ask(request)

    async def _ask(self, request: ApprovalRequest) -> ApprovalAnswer:
        self._stream.write(f"\n{approval_text(request)}\n\nApprove step {request.step_id!r}? [y/N] ")
        self._stream.flush()
        with anyio.move_on_after(self._timeout):
            line = await self._read_line()
            answer: ApprovalAnswer = "approved" if line.strip().lower() in _YES else "declined"
            self._stream.write(f"{answer}\n")
            return answer
        self._stream.write(f"\nno answer within {self._timeout:g}s: declined\n")
        return "timeout"

    async def _read_line(self) -> str:
        """One line of input, waited for without blocking the run; ``""`` at end of input."""
        fd = self._stdin.fileno()
        data = b""
        while not data.endswith(b"\n"):
            await anyio.wait_readable(fd)
            chunk = os.read(fd, 1024)
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace")


def approver_for(plan: WorkflowPlan, yes: bool, view: RunView | None, timeout: float) -> Approver | None:
    """Who approves the steps of ``plan`` that ask: ``--yes``, the terminal, or nobody (``None``)."""
    if not steps_asking(plan):
        return None
    if yes:
        return YesApprover()
    if sys.stdin.isatty():
        return TerminalApprover(view, timeout)
    return None
