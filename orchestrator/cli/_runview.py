"""What ``orchestrator run`` shows while a workflow runs.

On a terminal: one line per step, redrawn in place as steps start, retry and finish.
Elsewhere (a pipe, a CI log): one plain line per event, so logs stay readable. While the
user is asked to approve a step (``held``), the view stops redrawing, so the question stays
where it is; once answered, the steps are drawn afresh below it.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

import mcp_types as types

if TYPE_CHECKING:
    from collections.abc import Generator

    from orchestrator.workflow import StepEvent, WorkflowPlan

__all__ = ["STEP_SYMBOLS", "RunView", "print_result", "step_line"]

STEP_SYMBOLS = {
    "pending": "·",
    "running": "…",
    "awaiting approval": "⏸",
    "retrying": "↻",
    "succeeded": "✓",
    "skipped": "-",
    "failed": "✗",
    "cancelled": "⊘",
    "unknown_outcome": "?",
}
"""The mark before a step's line, by its state (``runs show`` draws steps the same way)."""


def step_line(step: str, width: int, tool: str, state: str, note: str = "") -> str:
    """One step's line: its mark, id (padded to ``width``), tool, state and a note (timing, error)."""
    note = f"  {note}" if note else ""
    return f"{STEP_SYMBOLS.get(state, '?')} {step:<{width}}  {tool:<28} {state}{note}"


class RunView:
    """Renders step events of one run to ``stream`` (stderr by default)."""

    def __init__(self, plan: WorkflowPlan, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self._stream = stream or sys.stderr
        self._live = self._stream.isatty() if live is None else live
        self._order = list(plan.steps)
        self._tools = {step.id: f"{step.server}.{step.tool}" for step in plan.steps.values()}
        # A fan-out's attempts add up over its items, so they say nothing about retries.
        self._fan_outs = {step.id for step in plan.steps.values() if step.for_each is not None}
        self._state = dict.fromkeys(self._order, "pending")
        self._note = dict.fromkeys(self._order, "")
        self._started: dict[str, float] = {}
        self._drawn = 0
        self._held = False
        self._width = max((len(s) for s in self._order), default=4)

    async def __call__(self, event: StepEvent) -> None:
        """Take one event (the executor's ``on_event``)."""
        step = event.step_id
        if step not in self._state:
            return
        if event.kind == "started":
            self._started.setdefault(step, time.monotonic())
            self._state[step] = "running"
            self._note[step] = ""
        elif event.kind == "approval":
            self._state[step] = "awaiting approval"
        elif event.kind == "retrying":
            self._state[step] = "retrying"
            delay = f" in {event.delay:.2f}s" if event.delay is not None else ""
            self._note[step] = f"attempt {event.attempt} failed ({event.error}); retrying{delay}"
        else:
            self._state[step] = event.status or "succeeded"
            elapsed = time.monotonic() - self._started.get(step, time.monotonic())
            attempts = f", {event.attempt} attempts" if event.attempt > 1 and step not in self._fan_outs else ""
            error = f": {event.error}" if event.error else ""
            self._note[step] = f"{elapsed:.2f}s{attempts}{error}"
        if self._live:
            if not self._held:
                self._redraw()
        else:
            self._print_line(step)

    @contextmanager
    def held(self) -> Generator[None]:
        """Stop redrawing while something else is written below the view (a question)."""
        self._held = True
        try:
            yield
        finally:
            self._held = False
            if self._live:
                self._drawn = 0  # the old lines are above the question now: draw new ones below
                self._redraw()

    def _line(self, step: str) -> str:
        return step_line(step, self._width, self._tools[step], self._state[step], self._note[step])

    def _print_line(self, step: str) -> None:
        print(self._line(step), file=self._stream, flush=True)

    def _redraw(self) -> None:
        if self._drawn:
            self._stream.write(f"\x1b[{self._drawn}F")
        for step in self._order:
            self._stream.write("\x1b[2K" + self._line(step)[:200] + "\n")
        self._drawn = len(self._order)
        self._stream.flush()


def print_result(result: types.CallToolResult) -> None:
    """Print a tool's result on stdout: its structured content as JSON, else its content blocks."""
    if result.structured_content is not None:
        print(json.dumps(result.structured_content, indent=2, ensure_ascii=False))
        return
    for block in result.content:
        if isinstance(block, types.TextContent):
            print(block.text)
        else:
            print(block.model_dump_json(by_alias=True, exclude_none=True))
