"""The audit log's recording side: records of calls made without values, written in the background.

``argument_shape`` and ``argument_hash`` turn a call's arguments into what may be kept: their
structure and a digest, never a value. ``AuditLog`` takes records from the call path without
making it wait for the database, and writes them to the store in batches.

Does not: write SQL (``orchestrator.store`` does), read the log back (``orchestrator audit``
does, through the store), or decide what is called (the policy and the server do).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Self, cast

import anyio

from orchestrator import store as state_db
from orchestrator.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from types import TracebackType

    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from orchestrator.auth._principal import Principal
    from orchestrator.config import AuditSpec
    from orchestrator.store import AuditRecord, Store

__all__ = ["AuditLog", "argument_hash", "argument_shape", "audit_record", "definition_change_record", "outcome_of"]

logger = logging.getLogger(__name__)

MAX_DEPTH = 8
"""Nesting kept in a shape; deeper containers are told only as ``"object"`` or ``"array"``."""
MAX_NODES = 256
"""Values looked at in one shape, in all; the rest of a container is summed up, not walked."""
MAX_KEY_LENGTH = 64
"""Characters kept of one key; a longer one is cut and marked with ``…``."""
MORE_KEYS = "…"
"""The key that counts an object's keys left out of its shape: ``{"…": "12 more keys"}``."""

_OBJECT, _ARRAY = "object", "array"


def argument_shape(arguments: object) -> Any:
    """The structure of ``arguments`` with every value replaced by its JSON type name.

    Scalars become ``"string"``, ``"integer"``, ``"number"``, ``"boolean"`` or ``"null"``.
    An object keeps its keys, each with the shape of its value. A list becomes a list of the
    distinct kinds of its items, merged: at most one object (the union of the items' keys),
    one list, and one string naming the scalar types met (``"integer|null"``); an empty list
    stays ``[]``. ``[1, 2.5]`` is ``["number"]``. A key whose value is of different kinds in
    the items of a list gets the type names only (``"object|string"``).

    Keys are kept because they are the structure, not the values: a caller that puts data in
    keys (``{"alice@example.com": ...}``) has them recorded, cut to ``MAX_KEY_LENGTH``. The
    shape is bounded whatever the input: past ``MAX_DEPTH`` levels a container is told only
    as ``"object"`` or ``"array"``, and after ``MAX_NODES`` values the rest of an object is
    counted under the key ``"…"`` and the rest of a list is not looked at.
    """
    return _Shaper().shape(arguments, 0)


class _Shaper:
    """One walk with a budget of values, so a huge argument makes a small shape."""

    def __init__(self) -> None:
        self.budget = MAX_NODES

    def shape(self, value: object, depth: int) -> Any:
        self.budget -= 1
        if isinstance(value, dict):
            if depth >= MAX_DEPTH or self.budget <= 0:
                return _OBJECT
            return self._object(cast("dict[object, object]", value), depth)
        if isinstance(value, list | tuple):
            if depth >= MAX_DEPTH or self.budget <= 0:
                return _ARRAY
            return self._array(list(cast("Iterable[object]", value)), depth)
        return _scalar_type(value)

    def _object(self, value: dict[object, object], depth: int) -> dict[str, Any]:
        shape: dict[str, Any] = {}
        items = list(value.items())
        for index, (key, item) in enumerate(items):
            if self.budget <= 0:
                shape[MORE_KEYS] = f"{len(items) - index} more keys"
                break
            shape[_key(key)] = self.shape(item, depth + 1)
        return shape

    def _array(self, value: list[object], depth: int) -> list[Any]:
        kinds: dict[str, Any] = {}
        for item in value:
            if self.budget <= 0:
                break
            item_shape = self.shape(item, depth + 1)
            kind = _kind(item_shape)
            kinds[kind] = _merge(kinds[kind], item_shape) if kind in kinds else item_shape
        return list(kinds.values())


def _scalar_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "unknown"  # not JSON: arguments come from JSON, so only an embedder's mistake


def _key(key: object) -> str:
    text = str(key)
    return text if len(text) <= MAX_KEY_LENGTH else text[: MAX_KEY_LENGTH - 1] + "…"


def _kind(shape: Any) -> str:
    if isinstance(shape, dict) or shape == _OBJECT:
        return _OBJECT
    if isinstance(shape, list) or shape == _ARRAY:
        return _ARRAY
    return "scalar"


def _merge(left: Any, right: Any) -> Any:
    """One shape covering two of the same kind (see ``argument_shape``)."""
    if left == right:
        return left
    if isinstance(left, dict) and isinstance(right, dict):
        left_keys, right_keys = cast("dict[str, Any]", left), cast("dict[str, Any]", right)
        merged = dict(left_keys)
        for key, shape in right_keys.items():
            if key not in merged:
                merged[key] = shape
            elif key != MORE_KEYS:  # a count of left-out keys is kept as first met: the shape is partial
                merged[key] = (
                    _merge(merged[key], shape) if _kind(merged[key]) == _kind(shape) else _union(merged[key], shape)
                )
        return merged
    if isinstance(left, list) and isinstance(right, list):
        kinds: dict[str, Any] = {}
        for shape in [*cast("list[Any]", left), *cast("list[Any]", right)]:
            kind = _kind(shape)
            kinds[kind] = _merge(kinds[kind], shape) if kind in kinds else shape
        return list(kinds.values())
    if isinstance(left, str) and isinstance(right, str) and _kind(left) == "scalar":
        types = set(left.split("|")) | set(right.split("|"))
        if "integer" in types and "number" in types:
            types.discard("integer")  # every integer is a number
        return "|".join(sorted(types))
    # A container told only by its kind (past the depth or the budget) says nothing of its
    # contents: the other's detail stands for both.
    return cast("Any", right if left in (_OBJECT, _ARRAY) else left)


def _union(left: Any, right: Any) -> str:
    """The type names of two shapes of different kinds, as one (``"object|string"``): their detail goes."""
    names: set[str] = set()
    for shape in (left, right):
        kind = _kind(shape)
        names |= set(cast("str", shape).split("|")) if kind == "scalar" else {kind}
    return "|".join(sorted(names))


def argument_hash(arguments: object, key: bytes | None = None) -> str:
    """A SHA-256 hex digest of ``arguments`` in canonical JSON (sorted keys, no spaces, UTF-8).

    Equal arguments give equal digests whatever their key order, so the log can show that a
    call repeated another; it says nothing else about them. A digest of a guessable value
    (``true``, a small number, a known id) can be confirmed by hashing the guess: pass a
    secret ``key`` (HMAC-SHA256) to make that impossible for whoever lacks the key.

    Args:
        arguments: The call's arguments, as JSON values.
        key: A secret for HMAC-SHA256, or ``None`` for plain SHA-256.
    """
    canonical = json.dumps(
        arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_unknown_value
    ).encode()
    if key is not None:
        return hmac.new(key, canonical, hashlib.sha256).hexdigest()
    return hashlib.sha256(canonical).hexdigest()


def _unknown_value(value: object) -> str:
    # Not JSON (an embedder's mistake): hashed by type so a digest is still made.
    return f"<{type(value).__name__}>"


def outcome_of(error: BaseException | None = None, *, is_error: bool = False) -> str:
    """The outcome a record keeps: ``ok``, the error's type name, or ``tool_error``.

    Args:
        error: What the call raised, if it raised.
        is_error: The call returned a result with ``isError: true`` (the tool refused).
    """
    if error is not None:
        return type(error).__name__
    return "tool_error" if is_error else "ok"


def audit_record(
    *,
    principal: Principal,
    tool: str,
    arguments: Mapping[str, Any] | None,
    outcome: str,
    duration: float,
    server: str | None = None,
    downstream_tool: str | None = None,
    trace_id: str | None = None,
    run_id: str | None = None,
    step_id: str | None = None,
    catalogue_version: str | None = None,
    started_at: datetime | None = None,
    hash_key: bytes | None = None,
) -> AuditRecord:
    """The record of one call, or one step of a run, keeping the arguments' shape and hash only.

    Args:
        principal: Who called.
        tool: The exposed tool (or composite) name.
        arguments: The call's arguments (``None`` counts as ``{}``).
        outcome: ``ok``, or the error type (see ``outcome_of``).
        duration: Seconds the call took.
        server: The downstream server that served it (``None`` for a composite).
        downstream_tool: The tool's name on that server.
        trace_id: The trace, when tracing is on.
        run_id: The run, for a composite or a step of one.
        step_id: The step, for a step of a run.
        catalogue_version: The version of the catalogue served when the call was made.
        started_at: When the call started; default: now less ``duration``.
        hash_key: A secret for the arguments' hash (see ``argument_hash``).

    Raises:
        ValueError: ``started_at`` has no time zone.
    """
    if started_at is not None and started_at.utcoffset() is None:
        raise ValueError("started_at must be timezone-aware")
    at = started_at.astimezone(UTC) if started_at is not None else datetime.now(UTC) - timedelta(seconds=duration)
    values = dict(arguments) if arguments is not None else {}
    return state_db.AuditRecord(
        at=at,
        tool=tool,
        argument_shape=argument_shape(values),
        argument_hash=argument_hash(values, hash_key),
        outcome=outcome,
        duration_ms=round(duration * 1000, 3),
        client_id=principal.client_id,
        subject=principal.subject,
        server=server,
        downstream_tool=downstream_tool,
        run_id=run_id,
        step_id=step_id,
        trace_id=trace_id,
        catalogue_version=catalogue_version,
    )


def definition_change_record(
    *, server: str, kind: str, name: str, change: str, fields: Sequence[str], digest: str
) -> AuditRecord:
    """The record of a definition served although it differs from its pin (a server under ``trust: warn``).

    Its ``outcome`` is ``definition_changed`` or ``definition_added``; ``tool`` and
    ``downstream_tool`` are the definition's name on ``server``; ``argument_shape`` holds its
    kind and the fields that changed; ``argument_hash`` is the served definition's digest.
    """
    return state_db.AuditRecord(
        at=_now(),
        tool=name,
        argument_shape={"kind": kind, "fields": list(fields)},
        argument_hash=digest,
        outcome=f"definition_{change}",
        duration_ms=0.0,
        server=server,
        downstream_tool=name,
    )


def _now() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    """Records written to the store in the background, in batches; all of them by the end.

    ``record`` puts a record on a bounded buffer and returns: the call does not wait for the
    database unless the buffer is full, and then it waits rather than lose the record. A
    task writes what has gathered in one transaction at a time. Leaving the context writes
    everything still buffered, even when the leaving is a cancellation (bounded by
    ``flush_timeout``). Records older than ``spec.retention`` are pruned on entering and
    then every ``prune_every`` seconds.

    A batch the database refuses (``StoreError``: unreachable, full) is logged with its size
    and dropped, so a broken database does not stop the calls.
    """

    def __init__(
        self,
        store: Store,
        spec: AuditSpec,
        *,
        buffer_size: int = 1024,
        batch_size: int = 256,
        prune_every: float = 3600.0,
        flush_timeout: float = 30.0,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        """Keep the records of ``store``'s audit log as ``spec`` says.

        Args:
            store: An opened store; it must outlive this log.
            spec: The audit settings (``audit``): its retention is used here.
            buffer_size: Records waiting at most before ``record`` waits.
            batch_size: Records written in one transaction at most.
            prune_every: Seconds between prunings after the first.
            flush_timeout: Seconds one write may take, and the last writes when leaving.
            clock: The time now (aware), for pruning; tests pass a fixed one.

        Raises:
            ValueError: A size is less than 1.
        """
        if buffer_size < 1 or batch_size < 1:
            raise ValueError("buffer_size and batch_size must be at least 1")
        self._store = store
        self._retention = timedelta(seconds=spec.retention)
        self._buffer_size = buffer_size
        self._batch_size = batch_size
        self._prune_every = prune_every
        self._flush_timeout = flush_timeout
        self._clock = clock
        self._send: MemoryObjectSendStream[AuditRecord] | None = None
        self._receive: MemoryObjectReceiveStream[AuditRecord] | None = None
        self._task_group: TaskGroup | None = None
        self._pruning = anyio.CancelScope()

    async def record(self, record: AuditRecord) -> None:
        """Queue ``record`` for writing; waits only while the buffer is full.

        With room in the buffer it takes no checkpoint, so the record of a call that is being
        cancelled is still kept; a caller that may wait on a full buffer while cancelled and
        must not lose the record shields the call.

        Raises:
            RuntimeError: The log is not open (before entering or after leaving).
        """
        if self._send is None:
            raise RuntimeError("the audit log is not open")
        try:
            try:
                self._send.send_nowait(record)
            except anyio.WouldBlock:
                await self._send.send(record)
        except anyio.ClosedResourceError:
            raise RuntimeError("the audit log is not open") from None

    async def prune(self) -> int:
        """Delete the records older than the retention; how many went.

        Raises:
            StoreError: The database refused.
        """
        removed = await state_db.prune_audit(self._store.engine, self._clock() - self._retention)
        if removed:
            logger.info("audit log: pruned %d record(s) older than %s", removed, self._retention)
        return removed

    async def __aenter__(self) -> Self:
        """Prune once, then start writing and pruning in the background.

        Raises:
            StoreError: The first pruning failed: the database is not usable.
        """
        await self.prune()
        self._send, self._receive = anyio.create_memory_object_stream[state_db.AuditRecord](self._buffer_size)
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._write_batches, self._receive)
        self._task_group.start_soon(self._prune_periodically)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Write everything buffered, stop pruning, and close.

        Raises:
            RuntimeError: The log was not entered.
        """
        if self._send is None or self._receive is None or self._task_group is None:
            raise RuntimeError("the audit log was not entered")
        # The writer ends once the closed stream is drained; pruning would go on for ever.
        self._send.close()
        self._pruning.cancel()
        try:
            await self._task_group.__aexit__(None, None, None)
        finally:
            # Under cancellation the writer stopped early: what it left is written here, shielded.
            with anyio.move_on_after(self._flush_timeout, shield=True) as scope:
                await self._flush_rest(self._receive)
            if scope.cancelled_caught:
                logger.error("audit log: records still buffered after %gs of writing were lost", self._flush_timeout)
            self._receive.close()

    async def _write_batches(self, receive: MemoryObjectReceiveStream[AuditRecord]) -> None:
        async for first in receive:
            batch = [first]
            while len(batch) < self._batch_size:
                try:
                    batch.append(receive.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
            await self._write(batch)

    async def _flush_rest(self, receive: MemoryObjectReceiveStream[AuditRecord]) -> None:
        while True:
            batch: list[AuditRecord] = []
            while len(batch) < self._batch_size:
                try:
                    batch.append(receive.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    break
            if not batch:
                return
            await self._write(batch)

    async def _write(self, batch: list[AuditRecord]) -> None:
        # Taken off the buffer, a batch is written whole even while the log is being cancelled.
        with anyio.move_on_after(self._flush_timeout, shield=True) as scope:
            try:
                await state_db.write_audit(self._store.engine, batch)
            except StoreError as exc:
                logger.error("audit log: %d record(s) could not be written: %s", len(batch), exc)
        if scope.cancelled_caught:
            logger.error("audit log: %d record(s) not written within %gs", len(batch), self._flush_timeout)

    async def _prune_periodically(self) -> None:
        with self._pruning:
            while True:
                await anyio.sleep(self._prune_every)
                try:
                    await self.prune()
                except StoreError as exc:
                    logger.error("audit log: pruning failed: %s", exc)
