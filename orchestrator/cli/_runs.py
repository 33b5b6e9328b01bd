"""``orchestrator runs``: the journalled workflow runs: list them, show or follow one, cancel, resume.

Without an action it lists the newest runs of the state database (``state.url``): id, workflow,
status, when it started, how long it ran (or has been running), who started it, and how many
of its steps are done. ``show RUN`` prints one run and a line per step, drawn as ``run`` draws
them (``--follow`` redraws until the run is over); ``cancel RUN`` cancels a running run;
``resume RUN`` makes a run that stopped (interrupted, failed, cancelled) running again, for a
serving process to pick up. RUN is a run id or an unambiguous prefix of six characters or more.
Each opens the state database of the config, so it works while ``serve`` runs.

Exit status: 0 on success, 1 when the run is not found or the action is refused (a run that
cannot be cancelled or resumed, an unknown step, a step in flight with no decision), 2 on a
usage, config or database error.

``--json`` prints one object. Listing::

    {"runs": [{"id": str, "workflow": str, "status": str, "error": str | null,
               "principal": {"client_id": str | null, "subject": str | null},
               "created_at": str, "finished_at": str | null, "duration_seconds": float,
               "steps_done": int | null, "steps_total": int | null}]}

``show``: the run (``id``, ``workflow``, ``status``, ``error``, ``principal``, ``plan_hash``,
``catalogue_version``, ``created_at``, ``updated_at``, ``finished_at``, ``deadline``,
``owner``, ``lease_until``, ``input``, ``outcome``) and its ``steps`` in order, each
``{"id", "tool", "status", "attempts", "started_at", "finished_at", "error", "result",
"items": [...] | null}``. It holds the run's input and results as journalled; the text never does.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

import anyio

from orchestrator import store as state_db
from orchestrator.catalog import close_names
from orchestrator.cli._runshow import (
    RunSteps,
    iso,
    local_time,
    principal_text,
    progress,
    run_header,
    seconds_text,
    short_id,
    workflow_of,
)
from orchestrator.cli._subcommands import (
    CONFIG_HELP,
    CommandError,
    acted_by,
    add_config_option,
    add_json_option,
    config_of,
    exit_status_of,
    open_state_of,
)
from orchestrator.errors import (
    RunAlreadyOver,
    RunNotResumable,
    UsageError,
    WorkflowDefinitionError,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orchestrator.cli._subcommands import SubcommandAdder
    from orchestrator.config import OrchestratorConfig
    from orchestrator.store import RunRecord, StepState, Store
    from orchestrator.workflow import WorkflowSpec

__all__ = ["RUN_STATUS_CHOICES", "add_parser", "run"]

RUN_STATUS_CHOICES = ("running", "succeeded", "failed", "interrupted", "cancelled", "declined")
"""``--status`` values: the journal's run statuses (spelt out: the store loads only when a command runs)."""
DEFAULT_LIMIT = 20
MIN_PREFIX = 6
"""The shortest run id prefix accepted: shorter ones match too many runs to be meant."""
_MATCHES_SHOWN = 10
_RESUMABLE = ("interrupted", "failed", "cancelled")


def add_parser(subparsers: SubcommandAdder) -> None:
    """Register ``orchestrator runs`` and its actions with the CLI's subcommands."""
    parser = subparsers.add_parser(
        "runs",
        help="list journalled workflow runs; show, follow, cancel or resume one",
        description=(
            "Without an action: list the newest workflow runs of the state database (state.url in the "
            "config), newest first, with their status, timing, who started them and their steps done."
        ),
    )
    add_config_option(parser)
    parser.add_argument("--status", choices=RUN_STATUS_CHOICES, help="only runs with this status")
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, metavar="N", help=f"the newest N runs (default {DEFAULT_LIMIT})"
    )
    add_json_option(parser, "print one JSON object (see `orchestrator.cli._runs`)")
    actions = parser.add_subparsers(dest="runs_command", metavar="ACTION")
    run_help = f"a run id, or an unambiguous prefix of it ({MIN_PREFIX} characters or more)"

    show = actions.add_parser(
        "show",
        help="show a run and each of its steps; --follow redraws it until it is over",
        description="Show a run: its header and one line per step of its workflow, in order, as `run` draws them.",
    )
    show.add_argument("run", metavar="RUN", help=run_help)
    # SUPPRESS: an action's unset --json must not hide one given before the action.
    show.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print the run and its steps as JSON"
    )
    show.add_argument("--follow", action="store_true", help="for a running run: redraw as it changes, until it is over")
    show.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="with --follow: how often the journal is read (default 1, between 0.1 and 60)",
    )

    cancel = actions.add_parser(
        "cancel",
        help="cancel a running run; the process running it stops it at its next step boundary",
        description="Cancel a running run. The process running it notices and stops it at its next step boundary.",
    )
    cancel.add_argument("run", metavar="RUN", help=run_help)

    resume = actions.add_parser(
        "resume",
        help="make a run that stopped (interrupted, failed, cancelled) running again, for serve to pick up",
        description=(
            "Make a run that stopped running again: what succeeded stays done, failed steps run again. "
            "A step that was in flight when the run stopped may or may not have acted: say for each "
            "whether to call it again (--retry-step) or to treat it as skipped (--skip-step). "
            "A serving process (orchestrator serve on the same state database) picks the run up."
        ),
    )
    resume.add_argument("run", metavar="RUN", help=run_help)
    resume.add_argument(
        "--retry-step",
        dest="retry_steps",
        action="append",
        default=[],
        metavar="STEP",
        help="run this step again, whole (every item of a for-each); repeatable",
    )
    resume.add_argument(
        "--skip-step",
        dest="skip_steps",
        action="append",
        default=[],
        metavar="STEP",
        help="treat this step as skipped (its dependents get its default); repeatable",
    )
    answers: list[argparse.ArgumentParser] = []
    for verb, what in (("approve", "approve"), ("decline", "decline")):
        answer = actions.add_parser(
            verb,
            help=f"{what} an approval step a run waits for (a task-based or resumed run)",
            description=(
                f"{what.capitalize()} the approval a run's step waits for. A run no client waits on (an MCP "
                "task, a run resumed after a crash) keeps its question in the journal until someone answers "
                "it, or runs.approval_timeout passes."
            ),
        )
        answer.add_argument("run", metavar="RUN", help=run_help)
        answer.add_argument("step", metavar="STEP", nargs="?", help="the waiting step (needed when several wait)")
        answers.append(answer)
    for action in (show, cancel, resume, *answers):
        # SUPPRESS: an action's unset -c must not hide one given before the action.
        action.add_argument("-c", "--config", default=argparse.SUPPRESS, help=CONFIG_HELP)


def run(args: argparse.Namespace) -> int:
    """Run ``orchestrator runs`` as parsed by ``add_parser``'s parser."""
    return exit_status_of(lambda: _dispatch(args), mistakes=(RunNotResumable, RunAlreadyOver))


def _dispatch(args: argparse.Namespace) -> int:
    if args.runs_command == "show":
        if args.follow and args.json:
            raise UsageError("--follow draws the run for a person; --json prints it once", "--follow")
        if not 0.1 <= args.interval <= 60:
            raise UsageError(f"must be between 0.1 and 60 seconds, got {args.interval:g}", "--interval")
        return anyio.run(_show, config_of(args.config), args.run, args.json, args.follow, args.interval)
    if args.runs_command == "cancel":
        return anyio.run(_cancel, config_of(args.config), args.run)
    if args.runs_command == "resume":
        return anyio.run(_resume, config_of(args.config), args.run, args.retry_steps, args.skip_steps)
    if args.runs_command in ("approve", "decline"):
        approved = args.runs_command == "approve"
        return anyio.run(_answer, config_of(args.config), args.run, args.step, approved)
    if args.limit < 1:
        raise UsageError(f"must be at least 1, got {args.limit}", "--limit")
    return anyio.run(_list, config_of(args.config), args.status, args.limit, args.json)


def _now() -> datetime:
    return datetime.now(UTC)


async def _resolve(store: Store, text: str) -> RunRecord:
    """The run ``text`` names: its id, or an unambiguous prefix of it.

    Raises:
        CommandError: No run, or several, match.
    """
    run = await state_db.read_run(store.engine, text)
    if run is not None:
        return run
    if len(text) < MIN_PREFIX:
        raise CommandError(
            f"no run {text!r}; a prefix of a run id needs {MIN_PREFIX} characters or more (see 'orchestrator runs')"
        )
    ids = await state_db.run_ids_starting_with(store.engine, text, limit=_MATCHES_SHOWN + 1)
    if not ids:
        raise CommandError(f"no run {text!r} (see 'orchestrator runs')")
    if len(ids) > 1:
        shown = ", ".join(ids[:_MATCHES_SHOWN]) + (", ..." if len(ids) > _MATCHES_SHOWN else "")
        raise CommandError(f"{text!r} is the start of several runs: {shown}; give more of the id")
    run = await state_db.read_run(store.engine, ids[0])
    if run is None:  # pruned between the two reads
        raise CommandError(f"no run {text!r} (see 'orchestrator runs')")
    return run


# list


def _spec(run: RunRecord, known: dict[str, WorkflowSpec | None]) -> WorkflowSpec | None:
    """A run's workflow (``None`` if its snapshot is unreadable), read once per snapshot."""
    if run.workflow_snapshot not in known:
        try:
            known[run.workflow_snapshot] = workflow_of(run)
        except WorkflowDefinitionError:
            known[run.workflow_snapshot] = None
    return known[run.workflow_snapshot]


def _run_identity(run: RunRecord) -> dict[str, Any]:
    """The fields every JSON form of a run starts with: which run, its status, who started it."""
    return {
        "id": run.id,
        "workflow": run.workflow,
        "status": run.status,
        "error": run.error,
        "principal": {"client_id": run.principal.client_id, "subject": run.principal.subject},
    }


def _duration(run: RunRecord, now: datetime) -> float:
    return ((run.finished_at or now) - run.created_at).total_seconds()


def _list_row(run: RunRecord, states: Sequence[StepState], spec: WorkflowSpec | None, now: datetime) -> dict[str, Any]:
    done, total = progress(spec, states, run.status) if spec is not None else (None, None)
    return {
        **_run_identity(run),
        "created_at": iso(run.created_at),
        "finished_at": iso(run.finished_at),
        "duration_seconds": round(_duration(run, now), 3),
        "steps_done": done,
        "steps_total": total,
    }


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


async def _list(config: OrchestratorConfig, status: str | None, limit: int, as_json: bool) -> int:
    async with open_state_of(config) as store:
        found = await state_db.list_runs(store.engine, status=status, limit=limit)
        states = await state_db.read_step_states(store.engine, [run.id for run in found])
    now = _now()
    known: dict[str, WorkflowSpec | None] = {}
    rows = [_list_row(run, states.get(run.id, []), _spec(run, known), now) for run in found]
    if as_json:
        print(json.dumps({"runs": rows}, indent=2, ensure_ascii=False))
        return 0
    if not found:
        print(f"no {status} runs in the journal" if status else "no runs in the journal", file=sys.stderr)
        return 0
    table = [("RUN", "WORKFLOW", "STATUS", "STARTED", "DURATION", "BY", "STEPS")]
    for run, row in zip(found, rows, strict=True):
        took = seconds_text(row["duration_seconds"])
        steps = "?" if row["steps_total"] is None else f"{row['steps_done']}/{row['steps_total']}"
        table.append(
            (
                short_id(run.id),
                run.workflow,
                run.status,
                local_time(run.created_at),
                f"running for {took}" if run.status == "running" else took,
                principal_text(run),
                steps,
            )
        )
    sys.stdout.write(_table(table))
    return 0


# show


def _run_json(steps: RunSteps) -> dict[str, Any]:
    run = steps.run
    return {
        **_run_identity(run),
        "plan_hash": run.plan_hash,
        "catalogue_version": run.catalogue_version,
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
        "finished_at": iso(run.finished_at),
        "deadline": iso(run.deadline),
        "owner": run.owner,
        "lease_until": iso(run.lease_until),
        "input": run.input,
        "outcome": run.outcome,
        "snapshot_problem": steps.problem,
        "steps": [step.to_json() for step in steps.steps],
    }


def _hints(steps: RunSteps) -> list[str]:
    """What can be done with the run next."""
    run = steps.run
    short = short_id(run.id)
    if run.status == "running":
        return [f"cancel with: orchestrator runs cancel {short}"]
    if run.status not in _RESUMABLE:
        return []
    if in_flight := steps.in_flight:
        return [
            f"in flight when it stopped: {', '.join(in_flight)} (each may or may not have acted)",
            f"resume with: orchestrator runs resume {short} "
            + " ".join(f"--retry-step {step}" for step in in_flight)
            + "  (or --skip-step STEP for any of them)",
        ]
    return [f"resume with: orchestrator runs resume {short}"]


def _view(steps: RunSteps, now: datetime) -> list[str]:
    return [*run_header(steps.run, now), "", *steps.lines(now)]


def _signature(steps: RunSteps) -> dict[str, tuple[object, ...]]:
    """What of each step a follower reports when it changes (not the ticking of a running step's clock)."""
    return {
        step.step_id: (step.state, tuple((record.item, record.status, record.attempts) for record in step.records))
        for step in steps.steps
    }


class _Follower:
    """Draws a run again each time the journal is read: in place on a terminal, else changed lines only."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._live = stream.isatty()
        self._drawn = 0
        self._seen: dict[str, tuple[object, ...]] | None = None
        self._status: str | None = None

    def draw(self, steps: RunSteps, now: datetime) -> None:
        if self._live:
            lines = _view(steps, now)
            if self._drawn:
                self._stream.write(f"\x1b[{self._drawn}F")
            self._stream.write("".join(f"\x1b[2K{line[:200]}\n" for line in lines))
            self._drawn = len(lines)
        elif self._seen is None:
            self._stream.write("".join(f"{line}\n" for line in _view(steps, now)))
        else:
            seen, now_seen = self._seen, _signature(steps)
            changed = [
                line
                for step, line in zip(steps.steps, steps.lines(now), strict=True)
                if seen.get(step.step_id) != now_seen[step.step_id]
            ]
            if steps.run.status != self._status:
                changed += [line for line in run_header(steps.run, now) if line.startswith(("status", "error"))]
            self._stream.write("".join(f"{line}\n" for line in changed))
        self._seen, self._status = _signature(steps), steps.run.status
        self._stream.flush()


async def _follow(store: Store, run: RunRecord, interval: float) -> RunSteps:
    """Draw ``run`` until it is over; its last state."""
    follower = _Follower(sys.stdout)
    while True:
        steps = RunSteps.of(run)
        follower.draw(steps, _now())
        if run.status != "running":
            return steps
        await anyio.sleep(interval)
        again = await state_db.read_run(store.engine, run.id)
        if again is None:
            raise CommandError(f"run {run.id} is no longer in the journal (pruned)")
        run = again


async def _show(config: OrchestratorConfig, text: str, as_json: bool, follow: bool, interval: float) -> int:
    async with open_state_of(config) as store:
        run = await _resolve(store, text)
        if follow and run.status == "running":
            steps = await _follow(store, run, interval)
        else:
            steps = RunSteps.of(run)
            if as_json:
                print(json.dumps(_run_json(steps), indent=2, ensure_ascii=False))
                return 0
            print("\n".join(_view(steps, _now())))
    if steps.problem is not None:
        print(f"note: its workflow snapshot cannot be read, steps are as journalled: {steps.problem}", file=sys.stderr)
    if hints := _hints(steps):
        print("\n" + "\n".join(hints))
    return 0


# cancel


async def _cancel(config: OrchestratorConfig, text: str) -> int:
    async with open_state_of(config) as store:
        run = await _resolve(store, text)
        if run.status != "running":
            raise RunAlreadyOver(run.id, run.status)
        reason = f"cancelled by {acted_by('orchestrator runs cancel')}"
        await state_db.cancel_run(store.engine, run.id, at=_now(), reason=reason)
    print(f"cancelled run {run.id} ({run.workflow})")
    if run.owner is not None:
        print(f"the process running it ({run.owner}) stops it at its next step boundary")
    return 0


# approve, decline


async def _answer(config: OrchestratorConfig, text: str, step: str | None, approved: bool) -> int:
    async with open_state_of(config) as store:
        run = await _resolve(store, text)
        waiting = [record.step_id for record in run.steps if record.status == "waiting" and record.item is None]
        if run.status != "running" or not waiting:
            raise CommandError(f"run {run.id} ({run.workflow}, {run.status}) waits for no approval")
        if step is None:
            if len(waiting) > 1:
                raise CommandError(f"run {run.id} waits for several approvals; name one of: {', '.join(waiting)}")
            step = waiting[0]
        if step not in waiting:
            raise CommandError(f"step {step!r} of run {run.id} waits for no approval; waiting: {', '.join(waiting)}")
        by = acted_by(f"orchestrator runs {'approve' if approved else 'decline'}")
        if not await state_db.answer_approval(store.engine, run.id, step, approved=approved, at=_now(), by=by):
            raise CommandError(f"step {step!r} of run {run.id} was answered, or stopped waiting, meanwhile")
    print(f"{'approved' if approved else 'declined'} step {step} of run {run.id} ({run.workflow})")
    print("the process running it goes on within a second")
    return 0


# resume


def _unknown_steps(run: RunRecord, names: Sequence[str]) -> list[str]:
    """A problem per name that is no step of the run's workflow, with the close matches."""
    try:
        known = list(workflow_of(run).steps)
    except WorkflowDefinitionError:  # shown by `runs show`; the journal's steps are all that is known
        known = [record.step_id for record in run.steps]
    problems: list[str] = []
    for name in dict.fromkeys(names):
        if name in known:
            continue
        problem = f"{run.workflow!r} has no step {name!r}"
        if suggestions := close_names(name, known):
            problem += f"; did you mean {', '.join(map(repr, suggestions))}?"
        problems.append(problem)
    return problems


async def _resume(config: OrchestratorConfig, text: str, retry: list[str], skip: list[str]) -> int:
    if both := sorted(set(retry) & set(skip)):
        raise UsageError(f"{', '.join(both)}: a step is either retried or skipped, not both", "--retry-step")
    async with open_state_of(config) as store:
        run = await _resolve(store, text)
        if run.status == "running":
            raise RunNotResumable(
                run.id, run.status, f"it is running (to stop it: orchestrator runs cancel {short_id(run.id)})"
            )
        if run.status not in _RESUMABLE:
            # The store's own refusal says why; nothing is written.
            await state_db.reopen_run(store.engine, run.id, at=_now())
        if problems := _unknown_steps(run, [*retry, *skip]):
            raise CommandError("; ".join(problems) + "; nothing resumed")
        steps = RunSteps.of(run)
        if undecided := [step for step in steps.in_flight if step not in retry and step not in skip]:
            flags = " ".join(f"--retry-step {step}" for step in undecided)
            raise CommandError(
                f"run {run.id} stopped while {', '.join(undecided)} {'was' if len(undecided) == 1 else 'were'} "
                "in flight, so it may or may not have acted: decide for each, with --retry-step STEP to call "
                f"it again or --skip-step STEP to treat it as skipped (e.g. {flags}); nothing resumed"
            )
        again = [step.step_id for step in steps.steps if step.state == "failed" and step.step_id not in retry]
        await state_db.reopen_run(store.engine, run.id, at=_now(), retry_steps=retry, skip_steps=skip)
    print(f"resumed run {run.id} ({run.workflow}): it is running again, held by no process yet")
    for step in dict.fromkeys(retry):
        print(f"  {step}: runs again")
    for step in dict.fromkeys(skip):
        print(f"  {step}: skipped")
    for step in again:
        print(f"  {step}: failed before; tried again")
    print(
        "A serving process (orchestrator serve on the same state database) picks it up within its lease "
        f"check (runs.lease: {config.runs.lease:g}s)."
    )
    print(f"Follow it with: orchestrator runs show {short_id(run.id)} --follow")
    return 0
