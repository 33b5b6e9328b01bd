"""Each downstream server's last listing, kept so a lazy server can be served without starting it.

One row per server key: the listing as JSON (what the server sent, in wire form), the
fingerprint of the connection settings it was listed with, and when. Every listing replaces
the row. ``downstream`` decides when a listing is trusted as the server's (same fingerprint)
and ``trust`` judges it against the pins like a live one; this module only keeps the records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from orchestrator.errors import StoreError
from orchestrator.store._failures import database_failure, shown_url
from orchestrator.store._schema import server_manifests

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["StoredManifest", "forget_manifest", "read_manifest", "save_manifest"]


@dataclass(frozen=True, slots=True)
class StoredManifest:
    """One server's last listing, as kept.

    Attributes:
        server: The server's key in the config.
        connection: The fingerprint of the connection settings it was listed with.
        listing: ``{"tools": [...], "prompts": [...], "resources": [...], "resource_templates": [...]}``,
            each item as the wire carries it.
        listed_at: When it was listed.
    """

    server: str
    connection: str
    listing: dict[str, Any]
    listed_at: datetime


async def save_manifest(
    engine: AsyncEngine, server: str, connection: str, listing: dict[str, Any], *, at: datetime
) -> None:
    """Keep ``listing`` as ``server``'s last one, replacing any.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    # Values go with the execution, not into the statement: a compiled statement is cached,
    # and one holding its values would hold a 10,000-tool listing for the process's lifetime.
    values = {"connection": connection, "listing": listing, "listed_at": at}
    where = server_manifests.c.server == server
    try:
        for _ in range(2):  # a second writer may insert the row between our update and insert
            async with engine.begin() as db:
                changed = await db.execute(update(server_manifests).where(where), values)
                if changed.rowcount:
                    return
                try:
                    await db.execute(insert(server_manifests), {"server": server, **values})
                except IntegrityError:
                    continue
                return
    except DBAPIError as exc:
        raise database_failure(engine, "save a server's listing", exc) from None
    raise StoreError(shown_url(engine), "cannot save a server's listing: written concurrently")


async def read_manifest(engine: AsyncEngine, server: str) -> StoredManifest | None:
    """``server``'s last listing, or ``None`` when none is kept.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    try:
        async with engine.connect() as db:
            row = (
                (await db.execute(select(server_manifests).where(server_manifests.c.server == server)))
                .mappings()
                .one_or_none()
            )
    except DBAPIError as exc:
        raise database_failure(engine, "read a server's listing", exc) from None
    if row is None:
        return None
    return StoredManifest(
        server=row["server"], connection=row["connection"], listing=dict(row["listing"]), listed_at=row["listed_at"]
    )


async def forget_manifest(engine: AsyncEngine, server: str) -> bool:
    """Forget ``server``'s last listing; whether one was kept.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    try:
        async with engine.begin() as db:
            deleted = await db.execute(delete(server_manifests).where(server_manifests.c.server == server))
    except DBAPIError as exc:
        raise database_failure(engine, "forget a server's listing", exc) from None
    return bool(deleted.rowcount)
