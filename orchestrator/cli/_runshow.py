"""What ``orchestrator runs`` shows of journalled runs: their steps' states, read from the journal.

A run's journal holds a record per step that started (or was skipped) and per for-each item;
its workflow snapshot says which steps there are, in which order, calling which tool. This
module puts the two together: a step with no record is ``pending``, a for-each is summarised
from its items, and a step still recorded ``running`` in a run that stopped is flagged as in
flight when it stopped. Pure: no I/O, times passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator import workflow
from orchestrator.cli._runview import step_line
from orchestrator.errors import WorkflowDefinitionError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from orchestrator.store import RunRecord, StepRecord
    from orchestrator.workflow import WorkflowSpec

__all__ = [
    "RunSteps",
    "StepView",
    "iso",
    "local_time",
    "principal_text",
    "progress",
    "run_header",
    "seconds_text",
    "short_id",
    "step_states",
    "workflow_of",
]

SHORT_ID = 12
"""Characters of a run id shown in tables; any unambiguous prefix of six or more is accepted back."""
_DONE = frozenset({"succeeded", "skipped"})


class _Journalled(Protocol):
    """A step's record as far as its state goes (``StepRecord`` and ``StepState`` both are)."""

    @property
    def step_id(self) -> str: ...

    @property
    def item(self) -> int | None: ...

    @property
    def status(self) -> str: ...


def short_id(run_id: str) -> str:
    """A run id as tables show it."""
    return run_id[:SHORT_ID]


def local_time(moment: datetime) -> str:
    """A time in the local zone, to the second."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def iso(moment: datetime | None) -> str | None:
    """A time as ISO 8601 in UTC, for JSON."""
    return None if moment is None else moment.astimezone(UTC).isoformat()


def seconds_text(seconds: float) -> str:
    """A duration for a person: ``0.52s``, ``12.3s``, ``4m05s``, ``1h02m``."""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def principal_text(run: RunRecord) -> str:
    """Who started a run: ``client (subject)``, or ``local`` for the local owner (stdio, the CLI)."""
    client, subject = run.principal.client_id, run.principal.subject
    if client is None:
        return "local" if subject is None else subject
    return client if subject is None else f"{client} ({subject})"


def workflow_of(run: RunRecord) -> WorkflowSpec:
    """The workflow a run follows, read from its snapshot.

    Raises:
        WorkflowDefinitionError: The snapshot is no longer a valid workflow.
    """
    return workflow.load_workflow_text(run.workflow_snapshot, f"run {short_id(run.id)} (workflow snapshot)")


def _step_order(spec: WorkflowSpec) -> list[str]:
    """The steps in the order ``run`` shows them (the plan's: dependencies first, else file order)."""
    try:
        return list(workflow.compile_workflow(spec).steps)
    except WorkflowDefinitionError:  # it compiled when the run began; the file's order will do
        return list(spec.steps)


_APPROVAL_STATES = {"waiting": "awaiting approval", "approved": "pending", "declined": "cancelled"}
"""How a step whose approval is asked, or answered but not yet acted on, is drawn."""


def _state(records: Sequence[_Journalled], run_status: str, *, dependents_started: bool) -> str:
    """A step's state from its records: its own, else its items' as a whole.

    A for-each may have only its items' records: when every item started is done, it is done
    if a step that needs it started (its items were all there were), else it is still going
    or, in a run that stopped, was stopped with it.
    """
    if not records:
        return "pending"
    plain = next((record for record in records if record.item is None), None)
    if plain is not None:
        return _APPROVAL_STATES.get(plain.status, plain.status)
    statuses = {record.status for record in records}
    if "failed" in statuses:
        return "failed"
    if "running" in statuses:
        return "running"
    if dependents_started or run_status == "succeeded":
        return "succeeded"
    return "running" if run_status == "running" else "cancelled"


def step_states(
    spec: WorkflowSpec | None, order: Sequence[str], records: Iterable[_Journalled], run_status: str
) -> dict[str, str]:
    """The state of each step of ``order``, from a run's journal records.

    Args:
        spec: The run's workflow (which step needs which), if its snapshot is readable.
        order: The steps.
        records: The run's step records (the journal's, for plain steps and for-each items).
        run_status: The run's status.
    """
    by_step: dict[str, list[_Journalled]] = {step: [] for step in order}
    for record in records:
        by_step.setdefault(record.step_id, []).append(record)
    started = {step for step, found in by_step.items() if found}
    needed_by: dict[str, set[str]] = {}
    for step_id, step in spec.steps.items() if spec is not None else ():
        for need in step.needs:
            needed_by.setdefault(need, set()).add(step_id)
    return {
        step: _state(by_step[step], run_status, dependents_started=bool(needed_by.get(step, set()) & started))
        for step in order
    }


def progress(spec: WorkflowSpec, records: Iterable[_Journalled], run_status: str) -> tuple[int, int]:
    """How many of a run's steps are done (succeeded or skipped), and how many its workflow has.

    Args:
        spec: The run's workflow.
        records: The run's step records (the journal's, for plain steps and for-each items).
        run_status: The run's status.
    """
    states = step_states(spec, list(spec.steps), records, run_status)
    return sum(1 for state in states.values() if state in _DONE), len(states)


@dataclass(frozen=True, slots=True)
class StepView:
    """One step of a run as ``runs show`` draws it.

    Attributes:
        step_id: The step's id.
        tool: The tool it calls (``server.tool``), or ``?`` when the snapshot is unreadable.
        state: ``pending``, ``running``, ``succeeded``, ``failed``, ``skipped`` or ``cancelled``.
        records: Its journal records: its own and its for-each items'.
        for_each: Whether it fans out over items.
    """

    step_id: str
    tool: str
    state: str
    records: tuple[StepRecord, ...]
    for_each: bool

    @property
    def own(self) -> StepRecord | None:
        """Its own record (not an item's), if it has one."""
        return next((record for record in self.records if record.item is None), None)

    @property
    def items(self) -> tuple[StepRecord, ...]:
        """The records of its for-each items, by index."""
        return tuple(record for record in self.records if record.item is not None)

    @property
    def in_flight(self) -> bool:
        """Whether it (or an item of it) is journalled as running."""
        return any(record.status == "running" for record in self.records)

    def _span(self) -> tuple[datetime | None, datetime | None]:
        starts = [record.started_at for record in self.records if record.started_at is not None]
        ends = [record.finished_at for record in self.records if record.finished_at is not None]
        finished = not self.in_flight and bool(ends)
        return (min(starts) if starts else None), (max(ends) if finished else None)

    def _error(self) -> str | None:
        own = self.own
        if own is not None and own.error:
            return own.error
        failed = next((item for item in self.items if item.error), None)
        return None if failed is None else f"item {failed.item}: {failed.error}"

    def note(self, run_status: str, now: datetime) -> str:
        """What follows the state on its line: timing, items, attempts, error."""
        parts: list[str] = []
        started, finished = self._span()
        if started is not None and finished is not None:
            parts.append(seconds_text((finished - started).total_seconds()))
        elif started is not None and self.in_flight:
            if run_status == "running":
                parts.append(f"for {seconds_text((now - started).total_seconds())}")
            else:
                parts.append(f"in flight when the run stopped ({run_status})")
        if self.items:
            done = sum(1 for item in self.items if item.status in _DONE)
            parts.append(f"{done}/{len(self.items)} items done")
        own = self.own
        if own is not None and own.attempts > 1 and not self.for_each:
            parts.append(f"{own.attempts} attempts")
        note = ", ".join(parts)
        if error := self._error():
            note = f"{note}: {error}" if note else error
        return note

    def to_json(self) -> dict[str, Any]:
        """The step as JSON, with its result and its items'."""
        own = self.own
        started, finished = self._span()
        return {
            "id": self.step_id,
            "tool": self.tool,
            "status": self.state,
            "attempts": own.attempts if own is not None else sum(item.attempts for item in self.items),
            "started_at": iso(started),
            "finished_at": iso(finished),
            "error": self._error(),
            "result": own.result if own is not None else None,
            "items": [
                {
                    "index": item.item,
                    "status": item.status,
                    "attempts": item.attempts,
                    "started_at": iso(item.started_at),
                    "finished_at": iso(item.finished_at),
                    "error": item.error,
                    "result": item.result,
                }
                for item in self.items
            ]
            if self.for_each or self.items
            else None,
        }


@dataclass(frozen=True, slots=True)
class RunSteps:
    """A run's steps in the workflow's order, each with its state.

    Attributes:
        run: The run as read from the journal.
        steps: Every step of its workflow, then any journalled step the workflow lacks.
        problem: Why the workflow snapshot could not be read (its steps are then the journal's).
    """

    run: RunRecord
    steps: tuple[StepView, ...]
    problem: str | None = None

    @classmethod
    def of(cls, run: RunRecord) -> RunSteps:
        """The steps of ``run`` from its snapshot and its journal."""
        problem: str | None = None
        try:
            spec: WorkflowSpec | None = workflow_of(run)
        except WorkflowDefinitionError as exc:
            spec, problem = None, "; ".join(exc.problems) or str(exc)
        order = _step_order(spec) if spec is not None else []
        order += [step for step in dict.fromkeys(record.step_id for record in run.steps) if step not in order]
        states = step_states(spec, order, run.steps, run.status)
        views: list[StepView] = []
        for step in order:
            declared = spec.steps.get(step) if spec is not None else None
            views.append(
                StepView(
                    step_id=step,
                    tool=declared.tool if declared is not None else "?",
                    state=states[step],
                    records=tuple(record for record in run.steps if record.step_id == step),
                    for_each=declared.for_each is not None if declared is not None else False,
                )
            )
        return cls(run, tuple(views), problem)

    @property
    def in_flight(self) -> list[str]:
        """The steps journalled as running (for a run that stopped: in flight when it did)."""
        return [step.step_id for step in self.steps if step.in_flight]

    def lines(self, now: datetime) -> list[str]:
        """One line per step, as ``run`` draws them."""
        width = max((len(step.step_id) for step in self.steps), default=4)
        status = self.run.status
        return [step_line(step.step_id, width, step.tool, step.state, step.note(status, now)) for step in self.steps]


def run_header(run: RunRecord, now: datetime) -> list[str]:
    """The lines above a run's steps: id, workflow, status, error, who, when, deadline, catalogue."""
    lines = [
        f"run        {run.id}",
        f"workflow   {run.workflow} (plan {run.plan_hash[:SHORT_ID]})",
        f"status     {run.status}",
    ]
    if run.error:
        lines.append(f"error      {run.error}")
    lines.append(f"by         {principal_text(run)}")
    lines.append(f"created    {local_time(run.created_at)}")
    if run.finished_at is not None:
        took = seconds_text((run.finished_at - run.created_at).total_seconds())
        lines.append(f"finished   {local_time(run.finished_at)} (after {took})")
    else:
        held = f", held by {run.owner}" if run.owner is not None else ", held by no process yet"
        lines.append(f"running    for {seconds_text((now - run.created_at).total_seconds())}{held}")
    if run.deadline is not None:
        lines.append(f"deadline   {local_time(run.deadline)}")
    if run.catalogue_version is not None:
        lines.append(f"catalogue  {run.catalogue_version}")
    return lines
