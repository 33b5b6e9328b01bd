"""The embedded OAuth authorization server's records: clients and grants, requests, codes, tokens, owner.

Every code, token, pending request id and client secret arrives here already hashed (SHA-256
hex, made by ``auth``): the store never sees one in plain. Single use is decided by the
database, not by a read followed by a write: a code or a pending request is taken with
``DELETE ... RETURNING``, a refresh token is rotated with a conditional ``UPDATE`` whose row
count says who won, so two racing requests (or two replicas) cannot both succeed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from orchestrator.store._schema import (
    oauth_access_tokens,
    oauth_authorization_codes,
    oauth_clients,
    oauth_pending_authorizations,
    oauth_refresh_tokens,
    owner_credentials,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime, timedelta

    from sqlalchemy import Table
    from sqlalchemy.engine import RowMapping
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = [
    "ClientOrigin",
    "IssuedToken",
    "OwnerCredentials",
    "PendingRecord",
    "StoredClient",
    "add_authorization_code",
    "add_pending_authorization",
    "find_access_token",
    "find_authorization_code",
    "find_client",
    "find_granted_access_token",
    "find_owner",
    "find_pending_authorization",
    "find_refresh_token",
    "issue_tokens",
    "list_clients",
    "prune_oauth",
    "record_sign_in_failure",
    "record_sign_in_success",
    "revoke_client",
    "revoke_token_family",
    "rotate_refresh_token",
    "save_client",
    "set_grant",
    "set_owner_password",
    "take_authorization_code",
    "take_pending_authorization",
]

ClientOrigin = Literal["dynamic", "metadata_document"]
_OWNER = "owner"


@dataclass(frozen=True, slots=True)
class StoredClient:
    """A client as the store keeps it.

    Attributes:
        client_id: Its id (a UUID from registration, or the https URL of its metadata document).
        origin: ``dynamic`` (RFC 7591 registration) or ``metadata_document``.
        registration: The registered (or fetched) client metadata, without any secret.
        secret_hash: SHA-256 hex of its client secret; ``None`` for a public client.
        created_at: When it was first seen.
        grant: The grant selectors the owner approved; ``None`` until approved, or after revocation.
        granted_at: When the grant was last set.
        revoked_at: When the owner last revoked it (it must be approved again).
    """

    client_id: str
    origin: ClientOrigin
    registration: dict[str, Any]
    secret_hash: str | None
    created_at: datetime
    grant: tuple[str, ...] | None
    granted_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """An authorization request waiting for the owner, or an issued code: who asked, and with what."""

    client_id: str
    params: dict[str, Any]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """An access or refresh token as stored (its hash, never the token).

    Attributes:
        token_hash: SHA-256 hex of the token.
        client_id: The client it was issued to.
        family_id: Shared by every token descending from one authorization code.
        scopes: OAuth scopes.
        resource: The resource (audience) it is bound to.
        subject: The resource owner.
        issued_at: When it was issued.
        expires_at: When it lapses.
        rotated_at: For a refresh token: when it was exchanged (it is spent from then on).
    """

    token_hash: str
    client_id: str
    family_id: str
    scopes: tuple[str, ...]
    resource: str
    subject: str | None
    issued_at: datetime
    expires_at: datetime
    rotated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OwnerCredentials:
    """The owner's password hash and sign-in lock-out state."""

    password_hash: str
    failures: int
    locked_until: datetime | None


def _client(row: RowMapping) -> StoredClient:
    grant = row["grant"]
    return StoredClient(
        client_id=row["client_id"],
        origin=row["origin"],
        registration=dict(row["registration"]),
        secret_hash=row["secret_hash"],
        created_at=row["created_at"],
        grant=tuple(grant) if grant is not None else None,
        granted_at=row["granted_at"],
        revoked_at=row["revoked_at"],
    )


def _token(row: RowMapping) -> IssuedToken:
    return IssuedToken(
        token_hash=row["token_hash"],
        client_id=row["client_id"],
        family_id=row["family_id"],
        scopes=tuple(row["scopes"]),
        resource=row["resource"],
        subject=row["subject"],
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        rotated_at=row.get("rotated_at"),
    )


def _token_row(token: IssuedToken) -> dict[str, Any]:
    return {
        "token_hash": token.token_hash,
        "client_id": token.client_id,
        "family_id": token.family_id,
        "scopes": list(token.scopes),
        "resource": token.resource,
        "subject": token.subject,
        "issued_at": token.issued_at,
        "expires_at": token.expires_at,
    }


# Clients and grants


async def save_client(
    engine: AsyncEngine,
    client_id: str,
    *,
    origin: ClientOrigin,
    registration: Mapping[str, Any],
    secret_hash: str | None,
    now: datetime,
) -> None:
    """Record a client, or refresh the registration of a known one (its grant is kept).

    A metadata-document client is saved again whenever its document changes; a dynamic
    client is saved once, at registration.
    """
    values = {"origin": origin, "registration": dict(registration), "secret_hash": secret_hash}
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(oauth_clients).values(client_id=client_id, created_at=now, **values))
    except IntegrityError:
        # Already known (or saved by a racing request): keep its grant and creation time.
        async with engine.begin() as connection:
            await connection.execute(
                update(oauth_clients).where(oauth_clients.c.client_id == client_id).values(**values)
            )


async def find_client(engine: AsyncEngine, client_id: str) -> StoredClient | None:
    """The client ``client_id``, or ``None``."""
    async with engine.connect() as connection:
        row = (
            (await connection.execute(select(oauth_clients).where(oauth_clients.c.client_id == client_id)))
            .mappings()
            .first()
        )
    return _client(row) if row is not None else None


async def list_clients(engine: AsyncEngine) -> list[StoredClient]:
    """Every client, oldest first."""
    query = select(oauth_clients).order_by(oauth_clients.c.created_at, oauth_clients.c.client_id)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [_client(row) for row in rows]


async def set_grant(engine: AsyncEngine, client_id: str, selectors: Sequence[str], now: datetime) -> bool:
    """Replace the grant of ``client_id`` (effective on its next request); whether the client exists."""
    async with engine.begin() as connection:
        result = await connection.execute(
            update(oauth_clients)
            .where(oauth_clients.c.client_id == client_id)
            .values(grant=sorted(set(selectors)), granted_at=now)
        )
    return result.rowcount > 0


async def revoke_client(engine: AsyncEngine, client_id: str, now: datetime) -> bool:
    """Take everything from ``client_id``: its tokens, codes, pending requests and grant.

    The client stays registered, but must be approved on the consent page again. Whether the
    client exists.
    """
    async with engine.begin() as connection:
        for table in (
            oauth_access_tokens,
            oauth_refresh_tokens,
            oauth_authorization_codes,
            oauth_pending_authorizations,
        ):
            await connection.execute(delete(table).where(table.c.client_id == client_id))
        result = await connection.execute(
            update(oauth_clients)
            .where(oauth_clients.c.client_id == client_id)
            .values(grant=None, granted_at=None, revoked_at=now)
        )
    return result.rowcount > 0


# Pending requests and authorization codes: both single-use records keyed by a hash.


async def _add_record(engine: AsyncEngine, table: Table, key: str, record: PendingRecord) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            insert(table).values(
                {
                    table.primary_key.columns.values()[0].name: key,
                    "client_id": record.client_id,
                    "params": record.params,
                    "expires_at": record.expires_at,
                }
            )
        )


async def _find_record(engine: AsyncEngine, table: Table, key: str, now: datetime) -> PendingRecord | None:
    key_column = table.primary_key.columns.values()[0]
    async with engine.connect() as connection:
        row = (
            (await connection.execute(select(table).where(key_column == key, table.c.expires_at > now)))
            .mappings()
            .first()
        )
    return PendingRecord(row["client_id"], dict(row["params"]), row["expires_at"]) if row is not None else None


async def _take_record(engine: AsyncEngine, table: Table, key: str, now: datetime) -> PendingRecord | None:
    key_column = table.primary_key.columns.values()[0]
    async with engine.begin() as connection:
        row = (
            (
                await connection.execute(
                    delete(table)
                    .where(key_column == key)
                    .returning(table.c.client_id, table.c.params, table.c.expires_at)
                )
            )
            .mappings()
            .first()
        )
    if row is None or row["expires_at"] <= now:
        return None
    return PendingRecord(row["client_id"], dict(row["params"]), row["expires_at"])


async def add_pending_authorization(engine: AsyncEngine, request_hash: str, record: PendingRecord) -> None:
    """Keep an authorization request until the owner decides (or it expires)."""
    await _add_record(engine, oauth_pending_authorizations, request_hash, record)


async def find_pending_authorization(engine: AsyncEngine, request_hash: str, now: datetime) -> PendingRecord | None:
    """The unexpired pending request, without using it up."""
    return await _find_record(engine, oauth_pending_authorizations, request_hash, now)


async def take_pending_authorization(engine: AsyncEngine, request_hash: str, now: datetime) -> PendingRecord | None:
    """Remove the pending request and return it if it was there and unexpired; exactly one caller gets it."""
    return await _take_record(engine, oauth_pending_authorizations, request_hash, now)


async def add_authorization_code(engine: AsyncEngine, code_hash: str, record: PendingRecord) -> None:
    """Keep an issued authorization code until it is exchanged (or expires)."""
    await _add_record(engine, oauth_authorization_codes, code_hash, record)


async def find_authorization_code(engine: AsyncEngine, code_hash: str, now: datetime) -> PendingRecord | None:
    """The unexpired code, without using it up."""
    return await _find_record(engine, oauth_authorization_codes, code_hash, now)


async def take_authorization_code(engine: AsyncEngine, code_hash: str, now: datetime) -> PendingRecord | None:
    """Remove the code and return it if it was there and unexpired; exactly one exchange gets it."""
    return await _take_record(engine, oauth_authorization_codes, code_hash, now)


# Tokens


async def issue_tokens(engine: AsyncEngine, access: IssuedToken, refresh: IssuedToken | None) -> None:
    """Store a new access token and, when given, its refresh token, in one transaction."""
    async with engine.begin() as connection:
        await connection.execute(insert(oauth_access_tokens).values(_token_row(access)))
        if refresh is not None:
            await connection.execute(insert(oauth_refresh_tokens).values(_token_row(refresh)))


async def find_access_token(engine: AsyncEngine, token_hash: str, now: datetime) -> IssuedToken | None:
    """The unexpired access token, or ``None`` (unknown, expired or revoked)."""
    query = select(oauth_access_tokens).where(
        oauth_access_tokens.c.token_hash == token_hash, oauth_access_tokens.c.expires_at > now
    )
    async with engine.connect() as connection:
        row = (await connection.execute(query)).mappings().first()
    return _token(row) if row is not None else None


async def find_granted_access_token(
    engine: AsyncEngine, token_hash: str, now: datetime
) -> tuple[IssuedToken, tuple[str, ...]] | None:
    """The unexpired access token and its client's current grant, in one query (every request asks).

    ``None`` when the token is unknown, expired or revoked, or its client holds no grant.
    """
    query = (
        select(oauth_access_tokens, oauth_clients.c.grant)
        .join(oauth_clients, oauth_clients.c.client_id == oauth_access_tokens.c.client_id)
        .where(
            oauth_access_tokens.c.token_hash == token_hash,
            oauth_access_tokens.c.expires_at > now,
            oauth_clients.c.grant.is_not(None),
        )
    )
    async with engine.connect() as connection:
        row = (await connection.execute(query)).mappings().first()
    if row is None or row["grant"] is None:  # a JSON null is not SQL NULL on every database
        return None
    return _token(row), tuple(row["grant"])


async def find_refresh_token(engine: AsyncEngine, token_hash: str, now: datetime) -> IssuedToken | None:
    """The unexpired refresh token, spent (``rotated_at`` set) or not; ``None`` if unknown or expired."""
    query = select(oauth_refresh_tokens).where(
        oauth_refresh_tokens.c.token_hash == token_hash, oauth_refresh_tokens.c.expires_at > now
    )
    async with engine.connect() as connection:
        row = (await connection.execute(query)).mappings().first()
    return _token(row) if row is not None else None


async def rotate_refresh_token(
    engine: AsyncEngine, old_hash: str, access: IssuedToken, refresh: IssuedToken, now: datetime
) -> bool:
    """Spend the refresh token ``old_hash`` and store its successors, atomically.

    The family's earlier access tokens go too. Returns ``False``, changing nothing, when the
    old token was already spent (by an earlier or a racing exchange), expired or unknown:
    the caller treats that as reuse.
    """
    async with engine.begin() as connection:
        spent = await connection.execute(
            update(oauth_refresh_tokens)
            .where(
                oauth_refresh_tokens.c.token_hash == old_hash,
                oauth_refresh_tokens.c.rotated_at.is_(None),
                oauth_refresh_tokens.c.expires_at > now,
            )
            .values(rotated_at=now)
        )
        if spent.rowcount != 1:
            return False
        await connection.execute(delete(oauth_access_tokens).where(oauth_access_tokens.c.family_id == access.family_id))
        await connection.execute(insert(oauth_access_tokens).values(_token_row(access)))
        await connection.execute(insert(oauth_refresh_tokens).values(_token_row(refresh)))
    return True


async def _delete_family(connection: AsyncConnection, family_id: str) -> int:
    removed = 0
    for table in (oauth_access_tokens, oauth_refresh_tokens):
        removed += (await connection.execute(delete(table).where(table.c.family_id == family_id))).rowcount
    return removed


async def revoke_token_family(engine: AsyncEngine, family_id: str) -> int:
    """Delete every access and refresh token of one family; how many went."""
    async with engine.begin() as connection:
        return await _delete_family(connection, family_id)


async def prune_oauth(engine: AsyncEngine, now: datetime) -> int:
    """Delete expired pending requests, codes and tokens; how many rows went."""
    removed = 0
    async with engine.begin() as connection:
        for table in (
            oauth_pending_authorizations,
            oauth_authorization_codes,
            oauth_access_tokens,
            oauth_refresh_tokens,
        ):
            removed += (await connection.execute(delete(table).where(table.c.expires_at <= now))).rowcount
    return removed


# The owner


async def find_owner(engine: AsyncEngine) -> OwnerCredentials | None:
    """The owner's credentials, or ``None`` before a password was set."""
    query = select(owner_credentials).where(owner_credentials.c.owner == _OWNER)
    async with engine.connect() as connection:
        row = (await connection.execute(query)).mappings().first()
    if row is None:
        return None
    return OwnerCredentials(row["password_hash"], row["failures"], row["locked_until"])


async def set_owner_password(engine: AsyncEngine, password_hash: str, now: datetime) -> None:
    """Set (or replace) the owner's password hash; failures and any lock are cleared."""
    values = {"password_hash": password_hash, "failures": 0, "locked_until": None, "updated_at": now}
    async with engine.begin() as connection:
        changed = await connection.execute(
            update(owner_credentials).where(owner_credentials.c.owner == _OWNER).values(**values)
        )
        if changed.rowcount == 0:
            await connection.execute(insert(owner_credentials).values(owner=_OWNER, **values))


async def record_sign_in_failure(
    engine: AsyncEngine, now: datetime, *, max_failures: int, lockout: timedelta
) -> datetime | None:
    """Count one wrong password; lock sign-in for ``lockout`` at ``max_failures`` in a row.

    The count is raised by one ``UPDATE`` (not read-then-written), so failures on several
    replicas add up. Returns the time the lock ends, when this failure set it.
    """
    table = owner_credentials
    async with engine.begin() as connection:
        failures = (
            await connection.execute(
                update(table)
                .where(table.c.owner == _OWNER)
                .values(failures=table.c.failures + 1, updated_at=now)
                .returning(table.c.failures)
            )
        ).scalar_one_or_none()
        if failures is None or failures < max_failures:
            return None
        until = now + lockout
        await connection.execute(
            update(table).where(table.c.owner == _OWNER).values(failures=0, locked_until=until, updated_at=now)
        )
    return until


async def record_sign_in_success(engine: AsyncEngine, now: datetime) -> None:
    """Clear the count of failures and any lapsed lock."""
    table = owner_credentials
    async with engine.begin() as connection:
        await connection.execute(
            update(table)
            .where(table.c.owner == _OWNER, or_(table.c.failures != 0, table.c.locked_until.is_not(None)))
            .values(failures=0, locked_until=None, updated_at=now)
        )
