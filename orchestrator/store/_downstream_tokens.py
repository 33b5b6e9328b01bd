"""Credentials of the orchestrator as an OAuth client of remote downstream servers, per server key.

Keeps two opaque blobs per server (its tokens, and the client registration the authorization
server gave us) and, in words, why the last token refresh was refused. The blobs arrive
encrypted (``trust`` encrypts them with a key the store never sees): this module stores and
returns bytes, and never learns what a token is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from orchestrator.errors import StoreError
from orchestrator.store._failures import database_failure, shown_url
from orchestrator.store._schema import downstream_credentials

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "DownstreamCredentials",
    "delete_downstream_tokens",
    "read_downstream_credentials",
    "record_downstream_refresh_failure",
    "save_downstream_client",
    "save_downstream_tokens",
]

_REASON_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class DownstreamCredentials:
    """What is kept for one server.

    Attributes:
        server: The server's key in the config.
        tokens: The encrypted tokens; ``None`` when not logged in.
        client_info: The encrypted client registration; ``None`` before the first registration.
        refresh_failure: Why the last refresh was refused (no secrets); ``None`` when it was not.
        updated_at: When any of it last changed.
    """

    server: str
    tokens: bytes | None
    client_info: bytes | None
    refresh_failure: str | None
    updated_at: datetime


async def _upsert(engine: AsyncEngine, server: str, values: dict[str, Any], action: str) -> None:
    where = downstream_credentials.c.server == server
    try:
        for _ in range(2):  # a second writer may insert the row between our update and insert
            async with engine.begin() as connection:
                changed = await connection.execute(update(downstream_credentials).where(where).values(values))
                if changed.rowcount:
                    return
                try:
                    await connection.execute(insert(downstream_credentials).values(server=server, **values))
                except IntegrityError:
                    continue
                return
    except DBAPIError as exc:
        raise database_failure(engine, action, exc) from None
    raise StoreError(shown_url(engine), f"cannot {action}: written concurrently")


async def read_downstream_credentials(engine: AsyncEngine, server: str) -> DownstreamCredentials | None:
    """What is kept for ``server``, or ``None`` when nothing is.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    try:
        async with engine.connect() as connection:
            row = (
                (
                    await connection.execute(
                        select(downstream_credentials).where(downstream_credentials.c.server == server)
                    )
                )
                .mappings()
                .one_or_none()
            )
    except DBAPIError as exc:
        raise database_failure(engine, "read downstream credentials", exc) from None
    if row is None:
        return None
    return DownstreamCredentials(
        server=row["server"],
        tokens=row["tokens"],
        client_info=row["client_info"],
        refresh_failure=row["refresh_failure"],
        updated_at=row["updated_at"],
    )


async def save_downstream_tokens(engine: AsyncEngine, server: str, tokens: bytes, *, at: datetime) -> None:
    """Keep ``server``'s (encrypted) tokens, replacing any, and forget a refresh failure.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    await _upsert(
        engine, server, {"tokens": tokens, "refresh_failure": None, "updated_at": at}, "save downstream tokens"
    )


async def save_downstream_client(engine: AsyncEngine, server: str, client_info: bytes, *, at: datetime) -> None:
    """Keep ``server``'s (encrypted) client registration, replacing any.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    await _upsert(engine, server, {"client_info": client_info, "updated_at": at}, "save a downstream client")


async def record_downstream_refresh_failure(engine: AsyncEngine, server: str, reason: str, *, at: datetime) -> None:
    """Note why ``server``'s token refresh was refused (words only, no secrets), until the next login.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    values = {"refresh_failure": reason[:_REASON_LENGTH], "updated_at": at}
    await _upsert(engine, server, values, "record a refresh failure")


async def delete_downstream_tokens(engine: AsyncEngine, server: str, *, at: datetime) -> bool:
    """Forget ``server``'s tokens and refresh failure (its client registration stays); whether it had tokens.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    where = downstream_credentials.c.server == server
    try:
        async with engine.begin() as connection:
            had = (
                await connection.execute(select(downstream_credentials.c.tokens).where(where))
            ).scalar_one_or_none() is not None
            await connection.execute(
                update(downstream_credentials).where(where).values(tokens=None, refresh_failure=None, updated_at=at)
            )
            # A row with nothing left in it says nothing: remove it.
            await connection.execute(
                delete(downstream_credentials).where(where, downstream_credentials.c.client_info.is_(None))
            )
    except DBAPIError as exc:
        raise database_failure(engine, "delete downstream tokens", exc) from None
    return had
