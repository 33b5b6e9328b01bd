"""Token buckets of rate limits kept in the state database, so several processes share one limit.

``admit_call`` takes a token from every bucket a call needs, or from none, in one write
transaction that starts with one statement creating the missing buckets and locking the others
(``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``): SQLite takes its single writer lock with
it (waited for under the busy timeout), PostgreSQL the rows' locks. A bucket is refilled when it
is read, from the time it was last written, so no process has to keep it up. A bucket that is
full again is the same as none, and ``prune_rate_buckets`` deletes those.

Does not: decide which buckets a call needs or how big they are (``orchestrator.auth`` does,
from the config), or read a clock (the caller says what time it is).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from orchestrator.store._failures import database_failure
from orchestrator.store._schema import rate_buckets
from orchestrator.store._twin import in_transaction

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["RateBucket", "admit_call", "prune_rate_buckets"]


@dataclass(frozen=True, slots=True)
class RateBucket:
    """One token bucket a call takes a token from.

    Attributes:
        tool: The tool whose calls the bucket counts; ``""`` for all the principal's calls.
        rate: Tokens added per second (more than 0).
        burst: Tokens held at most (at least 1); a new bucket is full.
    """

    tool: str
    rate: float
    burst: int


_TAKE = (
    update(rate_buckets)
    .where(rate_buckets.c.principal == bindparam("b_principal"), rate_buckets.c.tool == bindparam("b_tool"))
    .values(tokens=bindparam("b_tokens"), updated=bindparam("b_updated"), full_at=bindparam("b_full_at"))
)


def _principal_digest(principal_key: str) -> str:
    return hashlib.sha256(principal_key.encode()).hexdigest()


async def admit_call(
    engine: AsyncEngine, principal_key: str, buckets: Sequence[RateBucket], *, now: float
) -> float | None:
    """Take one token from each of ``principal_key``'s ``buckets``, if each holds one; else take none.

    Each bucket is first refilled by the seconds since it was last written times its rate,
    up to its burst; one never written is full. Atomic across processes: two processes
    admitting at once never take the same token.

    Args:
        engine: The store's engine.
        principal_key: Who calls (``Principal.key``); kept only as a digest.
        buckets: The buckets the call needs, each of a different tool (empty: admitted).
        now: Wall-clock seconds (``time.time()``), the same clock for every process.

    Returns:
        ``None`` when the call is admitted, else the seconds until the same call would be
        (nothing was taken).

    Raises:
        StoreError: The database refused or could not be reached.
    """
    if not buckets:
        return None
    principal = _principal_digest(principal_key)
    # The same order in every process: two transactions lock the same rows in the same order.
    ordered = sorted(buckets, key=lambda bucket: bucket.tool)
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    fresh = [
        {"principal": principal, "tool": bucket.tool, "tokens": float(bucket.burst), "updated": now, "full_at": now}
        for bucket in ordered
    ]
    # Creates the missing rows and locks the others (an update that changes nothing), returning
    # what each holds: then no other transaction can change or prune them until this one ends.
    upsert = dialect.insert(rate_buckets).values(fresh)
    create_or_lock = upsert.on_conflict_do_update(
        index_elements=[rate_buckets.c.principal, rate_buckets.c.tool], set_={"tokens": rate_buckets.c.tokens}
    ).returning(rate_buckets.c.tool, rate_buckets.c.tokens, rate_buckets.c.updated)

    def admit(connection: Connection) -> float | None:
        # On SQLite the driver begins the transaction at this first statement, a write: it takes
        # the database's one write lock (waiting under the busy timeout) before anything is read,
        # so no other process writes between this read and the update below. On PostgreSQL the
        # rows stay locked until the commit.
        rows = connection.execute(create_or_lock)
        stored = {row.tool: (float(row.tokens), float(row.updated)) for row in rows}
        taken: list[dict[str, Any]] = []
        wait = 0.0
        for bucket in ordered:
            tokens, updated = stored[bucket.tool]
            tokens = min(float(bucket.burst), tokens + max(0.0, now - updated) * bucket.rate)
            wait = max(wait, (1.0 - tokens) / bucket.rate)
            # A clock behind the one that wrote last adds nothing, and must not let the next
            # reader count the same seconds again.
            at = max(updated, now)
            left = tokens - 1.0
            taken.append(
                {
                    "b_principal": principal,
                    "b_tool": bucket.tool,
                    "b_tokens": left,
                    "b_updated": at,
                    "b_full_at": at + (bucket.burst - left) / bucket.rate,
                }
            )
        if wait > 0:
            return wait  # nothing taken: a refill need not be written, it is the same when read later
        connection.execute(_TAKE, taken)
        return None

    try:
        return await in_transaction(engine, admit)
    except DBAPIError as exc:
        raise database_failure(engine, "take rate-limit tokens", exc) from None


async def prune_rate_buckets(engine: AsyncEngine, *, now: float) -> int:
    """Delete the buckets that are full again by ``now`` (wall-clock seconds); how many went.

    A full bucket is the same as none: its principal starts with the same full burst.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    try:
        async with engine.begin() as connection:
            deleted = await connection.execute(delete(rate_buckets).where(rate_buckets.c.full_at <= now))
    except DBAPIError as exc:
        raise database_failure(engine, "prune rate-limit buckets", exc) from None
    return deleted.rowcount
