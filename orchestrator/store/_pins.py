"""Pins of downstream servers: what was approved, and the live changes waiting for approval.

A server is pinned once, on first sight (``pin_first_sight``): its identity and one row per
definition, the rows together being its name set. What a later listing says differently is
kept as pending (``record_pending``) until someone approves it (``approve_pins``), which
replaces the pins it covers. Each row may keep the definition's canonical JSON text, so a
report can show how it changed, not only which fields. This module stores and returns records;
deciding what differs, and what may be served meanwhile, is ``trust``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from orchestrator.errors import StoreError
from orchestrator.store._failures import database_failure, shown_url
from orchestrator.store._schema import trust_pending, trust_pins, trust_servers

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence
    from datetime import datetime

    from sqlalchemy.engine import RowMapping
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = [
    "DefinitionPin",
    "PendingDefinition",
    "ServerPins",
    "approve_pins",
    "forget_pins",
    "list_pins",
    "pin_first_sight",
    "read_pins",
    "record_pending",
]


def _frozen(fields: Mapping[str, str] | None) -> Mapping[str, str] | None:
    return None if fields is None else MappingProxyType(dict(fields))


@dataclass(frozen=True, slots=True)
class DefinitionPin:
    """One pinned definition of a server.

    Attributes:
        kind: ``tool``, ``prompt`` or ``resource_template``.
        name: Its name on its own server.
        digest: SHA-256 hex of its canonical definition.
        fields: SHA-256 hex of each top-level field.
        pinned_at: When it was pinned (set by the store; ignored on the way in).
        approved_by: Who approved it; ``None`` when pinned on first sight.
        definition: Its canonical JSON text, or ``None`` when it was too big to keep.
    """

    kind: str
    name: str
    digest: str
    fields: Mapping[str, str] = field(hash=False)
    pinned_at: datetime | None = field(default=None, compare=False)
    approved_by: str | None = field(default=None, compare=False)
    definition: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", _frozen(self.fields))


@dataclass(frozen=True, slots=True)
class PendingDefinition:
    """A live definition that differs from its pin, waiting for approval.

    Attributes:
        kind: ``tool``, ``prompt`` or ``resource_template``.
        name: Its name on its own server.
        digest: The live digest; ``None`` when a pinned definition is no longer listed.
        fields: The live per-field hashes; ``None`` with ``digest``.
        seen_at: When this version was first seen (kept while it stays the same).
        definition: The live canonical JSON text; ``None`` for a removal, or when too big to keep.
    """

    kind: str
    name: str
    digest: str | None
    fields: Mapping[str, str] | None = field(hash=False)
    seen_at: datetime | None = field(default=None, compare=False)
    definition: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", _frozen(self.fields))

    @property
    def removed(self) -> bool:
        """Whether this change is a pinned definition the server no longer lists."""
        return self.digest is None


@dataclass(frozen=True, slots=True)
class ServerPins:
    """Everything stored about one server's pins.

    Attributes:
        server: The server's key in the config.
        identity: Its pinned identity (transport and command line, or URL without secrets).
        pinned_at: When it was first pinned, or last approved as a whole.
        approved_by: Who approved it last; ``None`` when pinned on first sight.
        definitions: Its pinned definitions, sorted by kind and name: its name set.
        pending: Live changes waiting for approval, sorted by kind and name.
        pending_identity: A live identity that differs from ``identity``, or ``None``.
    """

    server: str
    identity: str
    pinned_at: datetime
    approved_by: str | None
    definitions: tuple[DefinitionPin, ...]
    pending: tuple[PendingDefinition, ...] = ()
    pending_identity: str | None = None


def _pin_rows(server: str, definitions: Sequence[DefinitionPin], at: datetime, by: str | None) -> list[dict[str, Any]]:
    return [
        {
            "server": server,
            "kind": item.kind,
            "name": item.name,
            "digest": item.digest,
            "fields": dict(item.fields),
            "pinned_at": at,
            "approved_by": by,
            "definition": item.definition,
        }
        for item in definitions
    ]


def _pin(row: RowMapping) -> DefinitionPin:
    return DefinitionPin(
        kind=row["kind"],
        name=row["name"],
        digest=row["digest"],
        fields=row["fields"],
        pinned_at=row["pinned_at"],
        approved_by=row["approved_by"],
        definition=row["definition"],
    )


def _pending(row: RowMapping) -> PendingDefinition:
    return PendingDefinition(
        kind=row["kind"],
        name=row["name"],
        digest=row["digest"],
        fields=row["fields"],
        seen_at=row["seen_at"],
        definition=row["definition"],
    )


async def _read(connection: AsyncConnection, servers: Sequence[str] | None) -> list[ServerPins]:
    server_query = select(trust_servers).order_by(trust_servers.c.server)
    pin_query = select(trust_pins).order_by(trust_pins.c.kind, trust_pins.c.name)
    pending_query = select(trust_pending).order_by(trust_pending.c.kind, trust_pending.c.name)
    if servers is not None:
        server_query = server_query.where(trust_servers.c.server.in_(servers))
        pin_query = pin_query.where(trust_pins.c.server.in_(servers))
        pending_query = pending_query.where(trust_pending.c.server.in_(servers))
    rows = (await connection.execute(server_query)).mappings().all()
    pins: dict[str, list[DefinitionPin]] = {row["server"]: [] for row in rows}
    pending: dict[str, list[PendingDefinition]] = {row["server"]: [] for row in rows}
    for row in (await connection.execute(pin_query)).mappings():
        pins.setdefault(row["server"], []).append(_pin(row))
    for row in (await connection.execute(pending_query)).mappings():
        pending.setdefault(row["server"], []).append(_pending(row))
    return [
        ServerPins(
            server=row["server"],
            identity=row["identity"],
            pinned_at=row["pinned_at"],
            approved_by=row["approved_by"],
            definitions=tuple(pins[row["server"]]),
            pending=tuple(pending[row["server"]]),
            pending_identity=row["pending_identity"],
        )
        for row in rows
    ]


async def read_pins(engine: AsyncEngine, server: str) -> ServerPins | None:
    """The pins of ``server`` with its pending changes, or ``None`` if it was never pinned.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    try:
        async with engine.connect() as connection:
            found = await _read(connection, [server])
    except DBAPIError as exc:
        raise database_failure(engine, "read pins", exc) from None
    return found[0] if found else None


async def list_pins(engine: AsyncEngine) -> list[ServerPins]:
    """The pins of every server, sorted by server key, each with its pending changes.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    try:
        async with engine.connect() as connection:
            return await _read(connection, None)
    except DBAPIError as exc:
        raise database_failure(engine, "list pins", exc) from None


async def pin_first_sight(
    engine: AsyncEngine,
    server: str,
    identity: str,
    definitions: Sequence[DefinitionPin],
    *,
    at: datetime,
    approved_by: str | None = None,
) -> ServerPins:
    """Pin ``server`` as first seen, unless it is pinned already; its pins either way.

    Trust on first use: the first listing becomes the pin. When two processes see the server
    first at once, one pin wins and both get it back, so they judge the next listing alike.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    try:
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    insert(trust_servers),
                    [{"server": server, "identity": identity, "pinned_at": at, "approved_by": approved_by}],
                )
                if definitions:
                    await connection.execute(insert(trust_pins), _pin_rows(server, definitions, at, approved_by))
        except IntegrityError:
            pass  # pinned already (before, or by another process just now): that pin stands
        async with engine.connect() as connection:
            found = await _read(connection, [server])
    except DBAPIError as exc:
        raise database_failure(engine, "pin a server", exc) from None
    if not found:  # forgotten again between the two transactions
        raise StoreError(shown_url(engine), f"pins of {server!r} vanished while saved")
    return found[0]


async def record_pending(
    engine: AsyncEngine,
    server: str,
    identity: str,
    changes: Sequence[PendingDefinition],
    *,
    at: datetime,
) -> bool:
    """Make ``changes`` (and ``identity``, if it differs from the pin) the pending set of ``server``.

    The latest listing replaces what was pending before: a change that was reverted stops
    waiting. A change already pending with the same digest keeps its first ``seen_at``.

    Returns:
        Whether ``server`` is pinned (nothing is recorded for a server that is not).

    Raises:
        StoreError: The database refused or could not be reached.
    """
    where = trust_pending.c.server == server
    try:
        async with engine.begin() as connection:
            pinned = (
                await connection.execute(select(trust_servers.c.identity).where(trust_servers.c.server == server))
            ).scalar_one_or_none()
            if pinned is None:
                return False
            before = {
                (row["kind"], row["name"], row["digest"]): row["seen_at"]
                for row in (await connection.execute(select(trust_pending).where(where))).mappings()
            }
            await connection.execute(delete(trust_pending).where(where))
            rows = [
                {
                    "server": server,
                    "kind": item.kind,
                    "name": item.name,
                    "digest": item.digest,
                    "fields": None if item.fields is None else dict(item.fields),
                    "seen_at": before.get((item.kind, item.name, item.digest), at),
                    "definition": item.definition,
                }
                for item in changes
            ]
            if rows:
                await connection.execute(insert(trust_pending), rows)
            await connection.execute(
                update(trust_servers)
                .where(trust_servers.c.server == server)
                .values(pending_identity=identity if identity != pinned else None)
            )
    except DBAPIError as exc:
        raise database_failure(engine, "record pending pin changes", exc) from None
    return True


async def approve_pins(
    engine: AsyncEngine,
    server: str,
    names: Collection[tuple[str, str]] | None = None,
    *,
    at: datetime,
    approved_by: str | None = None,
) -> tuple[PendingDefinition, ...]:
    """Replace pins of ``server`` with its pending changes: all of them, or those in ``names``.

    A pending removal removes the pin. Approving everything (``names`` is ``None``) also
    approves a pending identity; approving some names leaves it waiting.

    Args:
        engine: The store's engine.
        server: The server's key.
        names: (kind, name) pairs to approve; ``None`` for every pending change.
        at: When (aware).
        approved_by: Who approves, for the record.

    Returns:
        The changes approved, sorted by kind and name; a name that was not pending is not
        among them (nothing to approve), which the caller can report.

    Raises:
        StoreError: The database refused or could not be reached, or another process changed
            the same pins at once (nothing was approved; try again).
    """
    wanted = None if names is None else set(names)
    where = trust_pending.c.server == server
    try:
        async with engine.begin() as connection:
            rows = (
                await connection.execute(
                    select(trust_pending).where(where).order_by(trust_pending.c.kind, trust_pending.c.name)
                )
            ).mappings()
            approved = [
                change for change in map(_pending, rows) if wanted is None or (change.kind, change.name) in wanted
            ]
            for change in approved:
                key = (
                    trust_pins.c.server == server,
                    trust_pins.c.kind == change.kind,
                    trust_pins.c.name == change.name,
                )
                await connection.execute(delete(trust_pins).where(*key))
                await connection.execute(
                    delete(trust_pending).where(
                        where, trust_pending.c.kind == change.kind, trust_pending.c.name == change.name
                    )
                )
            added = [
                DefinitionPin(
                    kind=change.kind,
                    name=change.name,
                    digest=change.digest,
                    fields=change.fields or {},
                    definition=change.definition,
                )
                for change in approved
                if change.digest is not None
            ]
            if added:
                await connection.execute(insert(trust_pins), _pin_rows(server, added, at, approved_by))
            if wanted is None:
                pending_identity = (
                    await connection.execute(
                        select(trust_servers.c.pending_identity).where(trust_servers.c.server == server)
                    )
                ).scalar_one_or_none()
                if approved or pending_identity is not None:
                    values: dict[str, Any] = {"pinned_at": at, "approved_by": approved_by, "pending_identity": None}
                    if pending_identity is not None:
                        values["identity"] = pending_identity
                    await connection.execute(
                        update(trust_servers).where(trust_servers.c.server == server).values(values)
                    )
    except DBAPIError as exc:
        raise database_failure(engine, "approve pins", exc) from None
    return tuple(approved)


async def forget_pins(engine: AsyncEngine, server: str) -> bool:
    """Delete every pin and pending change of ``server``; whether it had any.

    The next listing of a forgotten server is a first sight again.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    try:
        async with engine.begin() as connection:
            await connection.execute(delete(trust_pending).where(trust_pending.c.server == server))
            await connection.execute(delete(trust_pins).where(trust_pins.c.server == server))
            result = await connection.execute(delete(trust_servers).where(trust_servers.c.server == server))
    except DBAPIError as exc:
        raise database_failure(engine, "forget pins", exc) from None
    return result.rowcount > 0
