"""The run journal: workflow runs and their steps, kept so a run can resume after a crash.

A run is created once per idempotency key (``create_run``); each step's start and outcome is
written as it happens (``record_step_started``, ``record_step_finished``), keyed by the step's
identity (its id, plus the item index inside a for-each), so a resumed run knows what is done
whatever order the steps ran in. The process that runs a run holds a lease on it
(``renew_lease``); a run still ``running`` whose lease ran out is taken over by whichever
process claims it first (``claim_runs``). An operator may cancel a running run
(``cancel_run``) or reopen one that stopped (``reopen_run``), deciding what becomes of its
steps. This module stores and returns records: deciding what to run, and when, is the
executor's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, cast

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError

from orchestrator.errors import RunAlreadyOver, RunLeaseLost, RunNotResumable, StoreError
from orchestrator.store._failures import database_failure, shown_url
from orchestrator.store._principal import RunPrincipal
from orchestrator.store._schema import run_steps, runs
from orchestrator.store._twin import in_transaction

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import datetime

    from sqlalchemy.engine import Connection, RowMapping
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
    from sqlalchemy.sql.elements import ColumnElement


__all__ = [
    "APPROVAL_STATUSES",
    "RESUMABLE_STATUSES",
    "RUN_STATUSES",
    "STEP_STATUSES",
    "JournalEntry",
    "RunPrincipal",
    "RunRecord",
    "StepRecord",
    "StepState",
    "answer_approval",
    "cancel_run",
    "claim_runs",
    "create_run",
    "finish_run",
    "list_runs",
    "prune_runs",
    "read_run",
    "read_step",
    "read_step_states",
    "record_step_finished",
    "record_step_started",
    "release_run",
    "renew_lease",
    "reopen_run",
    "run_ids_starting_with",
    "step_key",
    "write_journal",
]

RUN_STATUSES: Final = frozenset({"running", "succeeded", "failed", "interrupted", "cancelled", "declined"})
"""What a run's status may be; every one but ``running`` is final."""

STEP_STATUSES: Final = frozenset({"running", "succeeded", "failed", "skipped", "waiting", "approved", "declined"})
"""What a step's status may be.

``running``: an attempt is in flight; ``succeeded``, ``failed``, ``skipped``: its outcome;
``waiting``: it waits for the user's approval (its ``result`` holds the question);
``approved``, ``declined``: the answer, until the step runs (or the run stops as declined).
"""

RESUMABLE_STATUSES: Final = frozenset({"interrupted", "failed", "cancelled"})
"""The final statuses a run may be reopened from (``reopen_run``)."""

APPROVAL_STATUSES: Final = frozenset({"waiting", "approved", "declined"})
"""The statuses of a step's approval, before the step itself starts."""


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step of a run (or one item of a for-each step) as the journal keeps it.

    Attributes:
        step_id: The step's id in the workflow.
        item: The item's index inside a for-each step; ``None`` for a plain step.
        status: ``running``, ``succeeded``, ``failed`` or ``skipped``.
        attempts: How many times it was started (0 for a step skipped without starting).
        result: Its result (JSON), once it succeeded.
        error: Why it failed.
        started_at: When its latest attempt started.
        finished_at: When it reached its outcome.
    """

    step_id: str
    item: int | None
    status: str
    attempts: int
    result: Any = field(default=None, repr=False)
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def key(self) -> str:
        """Its key in the journal (see ``step_key``)."""
        return step_key(self.step_id, self.item)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One workflow run as the journal keeps it.

    Attributes:
        id: The run's id: its idempotency key.
        workflow: The workflow's name.
        plan_hash: The hash of the compiled plan the run follows.
        workflow_snapshot: The workflow file as compiled when it began.
        input: Its input (JSON).
        principal: Who started it.
        status: One of ``RUN_STATUSES``.
        error: Why it failed (or was interrupted, cancelled or declined), once finished.
        catalogue_version: The version of the served catalogue it began against.
        created_at: When it was created.
        updated_at: When it (or one of its steps) was last written.
        finished_at: When it reached its final status.
        deadline: When it must be over, whoever runs it (a durable timeout).
        owner: The process running it; ``None`` when no one is.
        lease_until: Until when ``owner`` holds it, unless renewed.
        outcome: The tool result it returned (a ``CallToolResult`` as JSON), once it is over.
        steps: Its steps, sorted by step id then item.
    """

    id: str
    workflow: str
    plan_hash: str
    workflow_snapshot: str = field(repr=False)
    input: Any = field(repr=False)
    principal: RunPrincipal
    status: str
    error: str | None
    catalogue_version: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    deadline: datetime | None
    owner: str | None
    lease_until: datetime | None
    outcome: Any = field(default=None, repr=False)
    steps: tuple[StepRecord, ...] = ()

    def step(self, step_id: str, item: int | None = None) -> StepRecord | None:
        """The record of ``step_id`` (item ``item`` of it, for a for-each), if it was ever written."""
        key = step_key(step_id, item)
        return next((record for record in self.steps if record.key == key), None)


@dataclass(frozen=True, slots=True)
class StepState:
    """Where one step (or one item of a for-each) of a run stands, without its result.

    Attributes:
        step_id: The step's id in the workflow.
        item: The item's index inside a for-each step; ``None`` for a plain step.
        status: ``running``, ``succeeded``, ``failed`` or ``skipped``.
    """

    step_id: str
    item: int | None
    status: str


def step_key(step_id: str, item: int | None = None) -> str:
    """The journal's key of a step: its id, plus ``[index]`` for an item of a for-each.

    Step ids are lower-case letters, digits and underscores, so the two forms never meet.

    Raises:
        ValueError: ``item`` is negative (a bug in the caller).
    """
    if item is None:
        return step_id
    if item < 0:
        raise ValueError(f"a for-each item index is never negative, got {item}")
    return f"{step_id}[{item}]"


def _step(row: RowMapping) -> StepRecord:
    return StepRecord(
        step_id=row["step_id"],
        item=row["item"],
        status=row["status"],
        attempts=row["attempts"],
        result=row["result"],
        error=row["error"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def _run(row: RowMapping | Mapping[str, Any], steps: Sequence[StepRecord]) -> RunRecord:
    return RunRecord(
        id=row["id"],
        workflow=row["workflow"],
        plan_hash=row["plan_hash"],
        workflow_snapshot=row["workflow_snapshot"],
        input=row["input"],
        principal=RunPrincipal(
            client_id=row["client_id"],
            subject=row["subject"],
            grant=None if row["grant"] is None else tuple(row["grant"]),
        ),
        status=row["status"],
        error=row["error"],
        catalogue_version=row["catalogue_version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
        deadline=row["deadline"],
        owner=row["owner"],
        lease_until=row["lease_until"],
        outcome=row["outcome"],
        steps=tuple(steps),
    )


async def _read(connection: AsyncConnection, ids: Sequence[str], *, with_steps: bool = True) -> list[RunRecord]:
    """The runs ``ids`` that exist, in the order of ``ids``."""
    return await connection.run_sync(_read_sync, ids, with_steps)


def _read_sync(connection: Connection, ids: Sequence[str], with_steps: bool = True) -> list[RunRecord]:
    """``_read`` on a synchronous connection."""
    if not ids:
        return []
    rows = {row["id"]: row for row in connection.execute(select(runs).where(runs.c.id.in_(ids))).mappings()}
    steps: dict[str, list[StepRecord]] = {run_id: [] for run_id in rows}
    if with_steps:
        query = (
            select(run_steps)
            .where(run_steps.c.run_id.in_(list(rows)))
            .order_by(run_steps.c.run_id, run_steps.c.step_id, run_steps.c.item)
        )
        for row in connection.execute(query).mappings():
            steps[row["run_id"]].append(_step(row))
    return [_run(rows[run_id], steps[run_id]) for run_id in ids if run_id in rows]


async def create_run(
    engine: AsyncEngine,
    run_id: str,
    *,
    workflow: str,
    plan_hash: str,
    workflow_snapshot: str,
    input: Any,
    principal: RunPrincipal,
    catalogue_version: str | None,
    at: datetime,
    owner: str,
    lease_seconds: float,
    deadline: datetime | None = None,
) -> tuple[RunRecord, bool]:
    """Create run ``run_id``, ``running`` and leased to ``owner``, unless it exists already.

    The id is the idempotency key: creating a run that exists (whatever its status, whoever
    created it, or two processes creating it at once) changes nothing and returns it as stored.

    Returns:
        The run as stored, and whether this call created it.

    Raises:
        StoreError: The database refused or could not be reached.
        sqlalchemy.exc.StatementError: ``input`` is not JSON, or a time has no zone: a bug.
    """
    row = {
        "id": run_id,
        "workflow": workflow,
        "plan_hash": plan_hash,
        "workflow_snapshot": workflow_snapshot,
        "input": input,
        "client_id": principal.client_id,
        "subject": principal.subject,
        "grant": None if principal.grant is None else list[str](principal.grant),
        "status": "running",
        "error": None,
        "catalogue_version": catalogue_version,
        "created_at": at,
        "updated_at": at,
        "finished_at": None,
        "deadline": deadline,
        "owner": owner,
        "lease_until": at + timedelta(seconds=lease_seconds),
        "outcome": None,
    }
    try:
        try:
            await in_transaction(engine, lambda connection: connection.execute(insert(runs), [row]))
        except IntegrityError:
            pass  # the key was used before (or by another process just now): that run stands
        else:
            return _run(row, []), True  # what was written is what is stored: no need to read it back
        async with engine.connect() as connection:
            found = await _read(connection, [run_id])
    except DBAPIError as exc:
        raise database_failure(engine, "create a run", exc) from None
    if not found:  # pruned between the two transactions
        raise StoreError(shown_url(engine), f"run {run_id!r} vanished while created")
    return found[0], False


async def read_run(engine: AsyncEngine, run_id: str) -> RunRecord | None:
    """Run ``run_id`` with its steps, or ``None`` if there is none.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    try:
        async with engine.connect() as connection:
            found = await _read(connection, [run_id])
    except DBAPIError as exc:
        raise database_failure(engine, "read a run", exc) from None
    return found[0] if found else None


async def read_step(engine: AsyncEngine, run_id: str, step_id: str, item: int | None = None) -> StepRecord | None:
    """One step (or for-each item) of a run as journalled, or ``None`` if it never was.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    query = select(run_steps).where(run_steps.c.run_id == run_id, run_steps.c.step_key == step_key(step_id, item))
    try:
        async with engine.connect() as connection:
            row = (await connection.execute(query)).mappings().one_or_none()
    except DBAPIError as exc:
        raise database_failure(engine, "read a run's step", exc) from None
    return None if row is None else _step(row)


def _principal_is(principal: RunPrincipal) -> ColumnElement[bool]:
    client = runs.c.client_id.is_(None) if principal.client_id is None else runs.c.client_id == principal.client_id
    subject = runs.c.subject.is_(None) if principal.subject is None else runs.c.subject == principal.subject
    return and_(client, subject)


async def list_runs(
    engine: AsyncEngine,
    *,
    status: str | None = None,
    principal: RunPrincipal | None = None,
    limit: int = 100,
) -> list[RunRecord]:
    """The newest runs first, without their steps (``read_run`` has them).

    Args:
        engine: The store's engine.
        status: Only runs with this status.
        principal: Only runs started by exactly this client and subject (a ``None`` part
            matches only runs where it is ``None`` too: runs are bound to who started them).
        limit: Runs returned at most.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    query = select(runs.c.id).order_by(runs.c.created_at.desc(), runs.c.id).limit(limit)
    if status is not None:
        query = query.where(runs.c.status == status)
    if principal is not None:
        query = query.where(_principal_is(principal))
    try:
        async with engine.connect() as connection:
            ids = list((await connection.execute(query)).scalars())
            return await _read(connection, ids, with_steps=False)
    except DBAPIError as exc:
        raise database_failure(engine, "list runs", exc) from None


async def _touch(
    connection: AsyncConnection, engine: AsyncEngine, run_id: str, owner: str | None, at: datetime
) -> None:
    """Mark the run written at ``at``, refusing a run that is over or (with ``owner``) not its.

    This write comes first in its transaction: on SQLite it takes the write lock before anything
    is read, so a concurrent claim cannot slip in between the check and the step's write.
    """
    await connection.run_sync(_touch_sync, shown_url(engine), run_id, owner, at)


def _touch_sync(connection: Connection, shown: str, run_id: str, owner: str | None, at: datetime) -> None:
    """``_touch`` on a synchronous connection (``shown``: the database URL for messages).

    Raises:
        RunLeaseLost: The run is over, or not ``owner``'s.
        StoreError: There is no such run.
    """
    where = [runs.c.id == run_id, runs.c.status == "running"]
    if owner is not None:
        where.append(runs.c.owner == owner)
    result = connection.execute(update(runs).where(*where).values(updated_at=at))
    if result.rowcount == 1:
        return
    row = connection.execute(select(runs.c.owner, runs.c.status).where(runs.c.id == run_id)).one_or_none()
    if row is None:
        raise StoreError(shown, f"no run {run_id!r} in the journal")
    raise RunLeaseLost(shown, run_id, row.owner, row.status)


async def record_step_started(
    engine: AsyncEngine,
    run_id: str,
    step_id: str,
    item: int | None = None,
    *,
    at: datetime,
    owner: str | None = None,
) -> StepRecord:
    """Journal that a step (or item ``item`` of a for-each step) starts an attempt now.

    A step started again (a retry, or a run resumed after a crash) counts one more attempt and
    forgets its earlier outcome.

    Args:
        engine: The store's engine.
        run_id: The run.
        step_id: The step's id.
        item: The item's index, for a for-each step.
        at: When (aware).
        owner: The process running the run; when given, nothing is written unless it still
            holds the run.

    Returns:
        The step as journalled now.

    Raises:
        RunLeaseLost: The run is over, or ``owner`` no longer holds it (nothing was written).
        StoreError: There is no such run, or the database refused or could not be reached.
    """
    return await _record_one(
        engine, JournalEntry(run_id, step_id, item, "running"), at, owner, "journal a step's start"
    )


async def record_step_finished(
    engine: AsyncEngine,
    run_id: str,
    step_id: str,
    item: int | None = None,
    *,
    status: str,
    at: datetime,
    result: Any = None,
    error: str | None = None,
    owner: str | None = None,
) -> StepRecord:
    """Journal a step's outcome; it is committed when this returns, so dependents may start.

    A step skipped without being started (its condition was false) is journalled with no
    attempts.

    Args:
        engine: The store's engine.
        run_id: The run.
        step_id: The step's id.
        item: The item's index, for a for-each step.
        status: ``succeeded``, ``failed`` or ``skipped``.
        at: When (aware).
        result: Its result (JSON), for a step that succeeded.
        error: Why it failed.
        owner: The process running the run; when given, nothing is written unless it still
            holds the run.

    Returns:
        The step as journalled now.

    Raises:
        ValueError: ``status`` is not an outcome (a bug in the caller).
        RunLeaseLost: The run is over, or ``owner`` no longer holds it (nothing was written).
        StoreError: There is no such run, or the database refused or could not be reached.
        sqlalchemy.exc.StatementError: ``result`` is not JSON: a bug.
    """
    if status not in STEP_STATUSES - {"running"}:
        raise ValueError(f"a step's outcome is succeeded, failed or skipped, not {status!r}")
    entry = JournalEntry(run_id, step_id, item, status, result, error)
    return await _record_one(engine, entry, at, owner, "journal a step's outcome")


async def _record_one(
    engine: AsyncEngine, entry: JournalEntry, at: datetime, owner: str | None, doing: str
) -> StepRecord:
    """Write one journal entry as ``write_journal`` does, and read the step back.

    Raises:
        RunLeaseLost: The run is over, or ``owner`` no longer holds it (nothing was written).
        StoreError: There is no such run, or the database refused or could not be reached.
    """
    shown = shown_url(engine)
    key = step_key(entry.step_id, entry.item)

    def record(connection: Connection) -> StepRecord:
        lost = _write_entries(connection, engine, shown, [entry], owner, at)
        if lost:
            raise lost[entry.run_id]
        query = select(run_steps).where(run_steps.c.run_id == entry.run_id, run_steps.c.step_key == key)
        return _step(connection.execute(query).mappings().one())

    try:
        return await in_transaction(engine, record)
    except DBAPIError as exc:
        raise database_failure(engine, doing, exc) from None


async def finish_run(
    engine: AsyncEngine,
    run_id: str,
    status: str,
    *,
    at: datetime,
    error: str | None = None,
    outcome: Any = None,
    owner: str | None = None,
    with_steps: bool = True,
) -> RunRecord:
    """Give a running run its final status (and the tool result it returned), and release it.

    Args:
        engine: The store's engine.
        run_id: The run.
        status: Any of ``RUN_STATUSES`` but ``running``.
        at: When (aware).
        error: Why it did not succeed.
        owner: The process running the run; when given, nothing is written unless it still
            holds the run.

    Returns:
        The run as stored now, with its steps.

    Raises:
        ValueError: ``status`` is not a final status (a bug in the caller).
        RunLeaseLost: The run is over already, or ``owner`` no longer holds it (nothing was written).
        StoreError: There is no such run, or the database refused or could not be reached.
    """
    if status not in RUN_STATUSES - {"running"}:
        raise ValueError(f"a run's final status is one of {sorted(RUN_STATUSES - {'running'})}, not {status!r}")
    shown = shown_url(engine)

    def finish(connection: Connection) -> RunRecord:
        _touch_sync(connection, shown, run_id, owner, at)
        connection.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(status=status, error=error, outcome=outcome, finished_at=at, owner=None, lease_until=None)
        )
        return _read_sync(connection, [run_id], with_steps)[0]

    try:
        return await in_transaction(engine, finish)
    except DBAPIError as exc:
        raise database_failure(engine, "finish a run", exc) from None


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One write of ``write_journal``: a step (or item) starts an attempt, or reaches its outcome.

    Attributes:
        run_id: The run.
        step_id: The step's id.
        item: The item's index, for a for-each step.
        status: ``running`` for a start (one more attempt), else the outcome
            (``succeeded``, ``failed`` or ``skipped``).
        result: Its result (JSON), for a step that succeeded.
        error: Why it failed.
    """

    run_id: str
    step_id: str
    item: int | None
    status: str
    result: Any = field(default=None, repr=False)
    error: str | None = None


async def write_journal(
    engine: AsyncEngine, entries: Sequence[JournalEntry], *, owner: str, at: datetime
) -> dict[str, RunLeaseLost]:
    """Write many steps' starts and outcomes in one transaction (group commit): durable on return.

    Entries of a run that ``owner`` no longer holds (it is over, or another process claimed it)
    are not written; the others are. Starts are written before outcomes, so an entry list
    never records an outcome that its own start then undoes.

    Returns:
        By run: why its entries were refused (``owner`` lost it); empty when all were written.

    Raises:
        ValueError: An entry's status is none of ``STEP_STATUSES`` (a bug in the caller).
        StoreError: The database refused or could not be reached.
        sqlalchemy.exc.StatementError: A result is not JSON: a bug.
    """
    if unknown := {entry.status for entry in entries} - STEP_STATUSES:
        raise ValueError(f"a step's status is one of {sorted(STEP_STATUSES)}, not {sorted(unknown)}")
    shown = shown_url(engine)
    try:
        return await in_transaction(
            engine, lambda connection: _write_entries(connection, engine, shown, entries, owner, at)
        )
    except DBAPIError as exc:
        raise database_failure(engine, "write the run journal", exc) from None


def _write_entries(
    connection: Connection,
    engine: AsyncEngine,
    shown: str,
    entries: Sequence[JournalEntry],
    owner: str | None,
    at: datetime,
) -> dict[str, RunLeaseLost]:
    """The body of ``write_journal``'s transaction: the entries of the runs ``owner`` holds.

    Returns:
        By run: why its entries were refused.

    Raises:
        StoreError: An entry's run does not exist.
    """
    lost: dict[str, RunLeaseLost] = {}
    # First, as in `_touch`: the write lock is taken before anything is judged.
    for run_id in dict.fromkeys(entry.run_id for entry in entries):
        try:
            _touch_sync(connection, shown, run_id, owner, at)
        except RunLeaseLost as exc:
            lost[run_id] = exc
    kept = [entry for entry in entries if entry.run_id not in lost]
    starts = [_journal_row(entry, at) for entry in kept if entry.status == "running"]
    outcomes = [_journal_row(entry, at) for entry in kept if entry.status != "running"]
    if starts:
        connection.execute(_journal_upsert(engine, started=True), starts)
    if outcomes:
        connection.execute(_journal_upsert(engine, started=False), outcomes)
    return lost


def _journal_row(entry: JournalEntry, at: datetime) -> dict[str, Any]:
    started = entry.status == "running"
    waiting = entry.status == "waiting"  # since when: an approval's timeout counts from there
    return {
        "run_id": entry.run_id,
        "step_key": step_key(entry.step_id, entry.item),
        "step_id": entry.step_id,
        "item": entry.item,
        "status": entry.status,
        "attempts": 1 if started else 0,
        "result": None if started else entry.result,
        "error": None if started else entry.error,
        "started_at": at if started or waiting else None,
        "finished_at": None if started or waiting else at,
    }


def _journal_upsert(engine: AsyncEngine, *, started: bool) -> Any:
    """The upsert of journal rows (``_journal_row``): a start counts an attempt; an outcome keeps them."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(run_steps)
    excluded = statement.excluded
    if started:
        change = {
            "status": excluded.status,
            "attempts": run_steps.c.attempts + 1,
            "result": None,
            "error": None,
            "started_at": excluded.started_at,
            "finished_at": None,
        }
    else:
        change = {
            "status": excluded.status,
            "result": excluded.result,
            "error": excluded.error,
            "started_at": func.coalesce(excluded.started_at, run_steps.c.started_at),
            "finished_at": excluded.finished_at,
        }
    return statement.on_conflict_do_update(index_elements=[run_steps.c.run_id, run_steps.c.step_key], set_=change)


def _claimable(now: datetime) -> ColumnElement[bool]:
    return and_(
        runs.c.status == "running",
        or_(runs.c.owner.is_(None), runs.c.lease_until.is_(None), runs.c.lease_until <= now),
    )


async def claim_runs(
    engine: AsyncEngine,
    owner: str,
    *,
    lease_seconds: float,
    now: datetime,
    limit: int = 100,
) -> list[RunRecord]:
    """Take the running runs that no one holds (a lease ran out, or was never taken), oldest first.

    Two processes claiming at once never both get a run: PostgreSQL locks the rows it takes and
    skips those another claimer has locked (``FOR UPDATE SKIP LOCKED``); SQLite takes them with
    one conditional update, which its single writer makes atomic.

    Args:
        engine: The store's engine.
        owner: The claiming process (unique per process).
        lease_seconds: How long the lease lasts before ``renew_lease`` must extend it.
        now: The time (aware) leases are judged by.
        limit: Runs taken at most.

    Returns:
        The runs taken, with their steps, oldest first.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    lease_until = now + timedelta(seconds=lease_seconds)
    claim = {"owner": owner, "lease_until": lease_until, "updated_at": now}
    oldest = select(runs.c.id).where(_claimable(now)).order_by(runs.c.created_at, runs.c.id).limit(limit)
    try:
        async with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                ids = list((await connection.execute(oldest.with_for_update(skip_locked=True))).scalars())
                if ids:
                    await connection.execute(update(runs).where(runs.c.id.in_(ids)).values(claim))
            else:
                # The condition is checked again inside the update: what another claimer took
                # between the subquery's read and this write is no longer claimable.
                taken = await connection.execute(
                    update(runs)
                    .where(runs.c.id.in_(oldest.scalar_subquery()), _claimable(now))
                    .values(claim)
                    .returning(runs.c.id)
                )
                ids = list(taken.scalars())
            found = await _read(connection, ids)
    except DBAPIError as exc:
        raise database_failure(engine, "claim runs", exc) from None
    return sorted(found, key=lambda run: (run.created_at, run.id))


async def renew_lease(
    engine: AsyncEngine,
    run_id: str,
    owner: str,
    *,
    lease_seconds: float,
    now: datetime,
) -> datetime:
    """Extend ``owner``'s lease on a running run to ``lease_seconds`` from ``now``.

    A lease that ran out is renewed too, as long as no other process claimed the run meanwhile.

    Returns:
        The new end of the lease.

    Raises:
        RunLeaseLost: Another process holds the run, or it is over (nothing was written).
        StoreError: There is no such run, or the database refused or could not be reached.
    """
    lease_until = now + timedelta(seconds=lease_seconds)
    try:
        async with engine.begin() as connection:
            await _touch(connection, engine, run_id, owner, now)
            await connection.execute(update(runs).where(runs.c.id == run_id).values(lease_until=lease_until))
    except DBAPIError as exc:
        raise database_failure(engine, "renew a run's lease", exc) from None
    return lease_until


async def answer_approval(
    engine: AsyncEngine, run_id: str, step_id: str, *, approved: bool, at: datetime, by: str | None = None
) -> bool:
    """Answer the approval step ``step_id`` of a running run waits for; whoever holds the run goes on.

    Args:
        engine: The store's engine.
        run_id: The run.
        step_id: The step waiting for approval.
        approved: The answer.
        at: When (aware).
        by: Who answered (kept with the answer, e.g. ``cli`` or a client id); never a secret.

    Returns:
        Whether the step was waiting (and is answered now); ``False`` when it was not (answered
        already, timed out, or no such step or run).

    Raises:
        StoreError: The database refused or could not be reached.
    """
    waiting = and_(
        run_steps.c.run_id == run_id,
        run_steps.c.step_key == step_key(step_id),
        run_steps.c.status == "waiting",
        runs.c.status == "running",
    )
    try:
        async with engine.begin() as connection:
            row = (await connection.execute(select(run_steps.c.result).join(runs).where(waiting))).one_or_none()
            if row is None:
                return False
            question: Any = row.result
            result: Any = question
            if isinstance(question, dict):
                result = {**cast("dict[str, Any]", question), "answered_by": by}
            answered = await connection.execute(
                update(run_steps)
                .where(
                    run_steps.c.run_id == run_id,
                    run_steps.c.step_key == step_key(step_id),
                    run_steps.c.status == "waiting",
                )
                .values(status="approved" if approved else "declined", result=result, finished_at=at)
            )
    except DBAPIError as exc:
        raise database_failure(engine, "answer an approval", exc) from None
    return answered.rowcount == 1


async def release_run(engine: AsyncEngine, run_id: str, owner: str, *, at: datetime) -> bool:
    """``owner`` stops running a run that is not over (it is shutting down): anyone may claim it now.

    Returns:
        Whether the run was ``owner``'s and running (and so is released now).

    Raises:
        StoreError: The database refused or could not be reached.
    """
    try:
        async with engine.begin() as connection:
            released = await connection.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.status == "running", runs.c.owner == owner)
                .values(owner=None, lease_until=None, updated_at=at)
            )
    except DBAPIError as exc:
        raise database_failure(engine, "release a run", exc) from None
    return released.rowcount == 1


async def prune_runs(engine: AsyncEngine, finished_before: datetime) -> int:
    """Delete the runs that finished before ``finished_before``, with their steps; how many went.

    Running runs are kept, however old.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    old = select(runs.c.id).where(runs.c.status != "running", runs.c.finished_at < finished_before)
    try:
        async with engine.begin() as connection:
            # Explicit rather than by the foreign key's cascade, which SQLite honours only with
            # its pragma on.
            await connection.execute(delete(run_steps).where(run_steps.c.run_id.in_(old.scalar_subquery())))
            result = await connection.execute(delete(runs).where(runs.c.id.in_(old.scalar_subquery())))
    except DBAPIError as exc:
        raise database_failure(engine, "prune runs", exc) from None
    return result.rowcount


async def read_step_states(engine: AsyncEngine, run_ids: Sequence[str]) -> dict[str, list[StepState]]:
    """Where each step of the runs ``run_ids`` stands, without results: cheap for a listing.

    Returns:
        Each run's steps (only runs that have some), sorted by step id then item.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    if not run_ids:
        return {}
    query = (
        select(run_steps.c.run_id, run_steps.c.step_id, run_steps.c.item, run_steps.c.status)
        .where(run_steps.c.run_id.in_(list(run_ids)))
        .order_by(run_steps.c.run_id, run_steps.c.step_id, run_steps.c.item)
    )
    states: dict[str, list[StepState]] = {}
    try:
        async with engine.connect() as connection:
            for row in await connection.execute(query):
                states.setdefault(row.run_id, []).append(StepState(row.step_id, row.item, row.status))
    except DBAPIError as exc:
        raise database_failure(engine, "read the steps of runs", exc) from None
    return states


async def run_ids_starting_with(engine: AsyncEngine, prefix: str, *, limit: int = 10) -> list[str]:
    """The ids of the runs that begin with ``prefix``, sorted, at most ``limit`` of them.

    ``prefix`` is matched literally: ``_`` and ``%`` are not wildcards.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    query = select(runs.c.id).where(runs.c.id.startswith(prefix, autoescape=True)).order_by(runs.c.id).limit(limit)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(query)).scalars())
    except DBAPIError as exc:
        raise database_failure(engine, "look up runs by id", exc) from None


async def _status_of(connection: AsyncConnection, engine: AsyncEngine, run_id: str) -> str:
    """The status of a run a conditional update did not match.

    Raises:
        StoreError: There is no such run.
    """
    status = (await connection.execute(select(runs.c.status).where(runs.c.id == run_id))).scalar_one_or_none()
    if status is None:
        raise StoreError(shown_url(engine), f"no run {run_id!r} in the journal")
    return status


async def cancel_run(engine: AsyncEngine, run_id: str, *, at: datetime, reason: str) -> RunRecord:
    """Make a running run ``cancelled`` now, and release it.

    The process running it is not told directly: its next journal write or lease renewal
    raises ``RunLeaseLost``, and it stops the run at the next step boundary. A step in flight
    keeps its ``running`` record, so the journal shows what was under way.

    Args:
        engine: The store's engine.
        run_id: The run.
        at: When (aware).
        reason: Why, kept as the run's error (``cancelled by alice``).

    Returns:
        The run as stored now, with its steps.

    Raises:
        RunAlreadyOver: The run is over already (nothing was written).
        StoreError: There is no such run, or the database refused or could not be reached.
    """
    try:
        async with engine.begin() as connection:
            cancelled = await connection.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.status == "running")
                .values(status="cancelled", error=reason, finished_at=at, updated_at=at, owner=None, lease_until=None)
            )
            if cancelled.rowcount != 1:
                raise RunAlreadyOver(run_id, await _status_of(connection, engine, run_id))
            return (await _read(connection, [run_id]))[0]
    except DBAPIError as exc:
        raise database_failure(engine, "cancel a run", exc) from None


def _not_resumable(run_id: str, status: str) -> RunNotResumable:
    if status == "running":
        return RunNotResumable(run_id, status, "it is running (cancel it first to stop it)")
    if status == "succeeded":
        return RunNotResumable(run_id, status, "it succeeded: there is nothing left to run")
    if status == "declined":
        return RunNotResumable(run_id, status, "it was declined at an approval step; start a new run instead")
    return RunNotResumable(run_id, status, f"it is {status}")


async def reopen_run(
    engine: AsyncEngine,
    run_id: str,
    *,
    at: datetime,
    retry_steps: Iterable[str] = (),
    skip_steps: Iterable[str] = (),
) -> RunRecord:
    """Make a run that stopped ``running`` again, unowned, so a serving process claims and resumes it.

    Only a run that is ``interrupted``, ``failed`` or ``cancelled`` is reopened. Its error,
    outcome and end are cleared; its steps become, in one transaction with that:

    - each step in ``retry_steps``: forgotten (its record and every item's), so it runs again;
    - each step in ``skip_steps``: ``skipped``, with no result (its attempts kept, its items
      forgotten), so its dependents get its ``default``;
    - every other record that is ``failed`` or ``running``: forgotten too. A resumed run tries
      its failed steps again, and a ``running`` record would tell the resuming process that
      the step was in flight when its process died, which after this decision is not so.

    What succeeded or was skipped stays done. Which steps exist is the caller's to check:
    names that match no record are forgotten or skipped all the same. The run's deadline is
    moved: it has its whole time limit again from ``at``.

    Args:
        engine: The store's engine.
        run_id: The run.
        at: When (aware).
        retry_steps: Step ids to run again.
        skip_steps: Step ids to mark skipped.

    Returns:
        The run as stored now, with its steps.

    Raises:
        ValueError: A step is both retried and skipped (a bug in the caller).
        RunNotResumable: The run is running, succeeded or declined (nothing was written).
        StoreError: There is no such run, or the database refused or could not be reached.
    """
    retry, skip = set(retry_steps), set(skip_steps)
    if both := sorted(retry & skip):
        raise ValueError(f"a step is either retried or skipped, not both: {', '.join(both)}")
    try:
        async with engine.begin() as connection:
            # First in the transaction: on SQLite it takes the write lock before anything is read.
            reopened = await connection.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.status.in_(RESUMABLE_STATUSES))
                .values(
                    status="running",
                    error=None,
                    outcome=None,
                    finished_at=None,
                    updated_at=at,
                    owner=None,
                    lease_until=None,
                )
            )
            if reopened.rowcount != 1:
                raise _not_resumable(run_id, await _status_of(connection, engine, run_id))
            # Its time limit starts again: the deadline counted across restarts, but a run someone
            # resumes by hand (hours later, maybe) gets its whole limits.timeout anew.
            times = (
                await connection.execute(select(runs.c.created_at, runs.c.deadline).where(runs.c.id == run_id))
            ).one()
            if times.deadline is not None:
                await connection.execute(
                    update(runs).where(runs.c.id == run_id).values(deadline=at + (times.deadline - times.created_at))
                )
            of_run = run_steps.c.run_id == run_id
            if retry:
                await connection.execute(delete(run_steps).where(of_run, run_steps.c.step_id.in_(retry)))
            for step_id in sorted(skip):
                await connection.execute(
                    delete(run_steps).where(of_run, run_steps.c.step_id == step_id, run_steps.c.item.is_not(None))
                )
                skipped = _journal_row(JournalEntry(run_id, step_id, None, "skipped"), at)
                await connection.execute(_journal_upsert(engine, started=False), [skipped])
            await connection.execute(delete(run_steps).where(of_run, run_steps.c.status.in_(("failed", "running"))))
            return (await _read(connection, [run_id]))[0]
    except DBAPIError as exc:
        raise database_failure(engine, "reopen a run", exc) from None
