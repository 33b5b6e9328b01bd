"""The OAuth records in the store, on SQLite and on a real PostgreSQL: single use holds under races."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.store import (
    IssuedToken,
    PendingRecord,
    add_authorization_code,
    add_pending_authorization,
    find_access_token,
    find_authorization_code,
    find_client,
    find_granted_access_token,
    find_owner,
    find_pending_authorization,
    find_refresh_token,
    issue_tokens,
    list_clients,
    prune_oauth,
    record_sign_in_failure,
    record_sign_in_success,
    revoke_client,
    revoke_token_family,
    rotate_refresh_token,
    save_client,
    set_grant,
    set_owner_password,
    take_authorization_code,
    take_pending_authorization,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def _client(engine: AsyncEngine) -> str:
    # PostgreSQL is shared by the session: every test works on clients of its own.
    client_id = str(uuid.uuid4())
    await save_client(
        engine,
        client_id,
        origin="dynamic",
        registration={"client_name": "Claude", "redirect_uris": ["https://claude.ai/cb"]},
        secret_hash=None,
        now=NOW,
    )
    return client_id


def _token(client_id: str, family: str, name: str, expires_at: datetime = LATER) -> IssuedToken:
    return IssuedToken(
        token_hash=_hash(name),
        client_id=client_id,
        family_id=family,
        scopes=("mcp",),
        resource="https://mcp.example.com/mcp",
        subject="owner",
        issued_at=NOW,
        expires_at=expires_at,
    )


async def test_a_client_keeps_its_grant_when_registered_again_and_loses_it_on_revocation(engine: AsyncEngine) -> None:
    client_id = await _client(engine)
    assert await set_grant(engine, client_id, ["server:b", "server:a", "server:a"], NOW)
    await save_client(
        engine,
        client_id,
        origin="dynamic",
        registration={"client_name": "Claude 2"},
        secret_hash=_hash("s"),
        now=LATER,
    )
    client = await find_client(engine, client_id)
    assert client is not None
    assert (client.registration["client_name"], client.secret_hash) == ("Claude 2", _hash("s"))
    assert (client.grant, client.granted_at, client.created_at) == (("server:a", "server:b"), NOW, NOW)
    assert client_id in [listed.client_id for listed in await list_clients(engine)]

    family = uuid.uuid4().hex
    await issue_tokens(engine, _token(client_id, family, f"a-{family}"), _token(client_id, family, f"r-{family}"))
    await add_authorization_code(engine, _hash(f"c-{family}"), PendingRecord(client_id, {"x": 1}, LATER))
    await add_pending_authorization(engine, _hash(f"p-{family}"), PendingRecord(client_id, {"x": 1}, LATER))
    assert await revoke_client(engine, client_id, LATER)

    revoked = await find_client(engine, client_id)
    assert revoked is not None
    assert (revoked.grant, revoked.revoked_at) == (None, LATER)
    assert await find_access_token(engine, _hash(f"a-{family}"), NOW) is None
    assert await find_refresh_token(engine, _hash(f"r-{family}"), NOW) is None
    assert await find_authorization_code(engine, _hash(f"c-{family}"), NOW) is None
    assert await find_pending_authorization(engine, _hash(f"p-{family}"), NOW) is None
    assert not await set_grant(engine, "no-such-client", ["*"], NOW)
    assert not await revoke_client(engine, "no-such-client", NOW)
    assert await find_client(engine, "no-such-client") is None


async def test_a_code_is_taken_by_exactly_one_of_many_racing_exchanges(engine: AsyncEngine) -> None:
    client_id = await _client(engine)
    code = _hash(f"code-{client_id}")
    await add_authorization_code(engine, code, PendingRecord(client_id, {"code_challenge": "abc"}, LATER))
    assert await find_authorization_code(engine, code, NOW) == PendingRecord(
        client_id, {"code_challenge": "abc"}, LATER
    )
    winners: list[PendingRecord] = []

    async def exchange() -> None:
        if (taken := await take_authorization_code(engine, code, NOW)) is not None:
            winners.append(taken)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(exchange)
    assert len(winners) == 1
    assert await take_authorization_code(engine, code, NOW) is None


async def test_an_expired_pending_request_or_code_is_not_handed_out(engine: AsyncEngine) -> None:
    client_id = await _client(engine)
    request, code = _hash(f"p-{client_id}"), _hash(f"c-{client_id}")
    await add_pending_authorization(engine, request, PendingRecord(client_id, {"state": "s"}, LATER))
    await add_authorization_code(engine, code, PendingRecord(client_id, {}, LATER))
    assert await find_pending_authorization(engine, request, NOW) is not None
    assert await find_pending_authorization(engine, request, LATER) is None
    assert await take_authorization_code(engine, code, LATER + timedelta(seconds=1)) is None
    taken = await take_pending_authorization(engine, request, NOW)
    assert taken is not None
    assert taken.params == {"state": "s"}
    assert await take_pending_authorization(engine, request, NOW) is None


async def test_a_refresh_token_rotates_once_even_when_exchanges_race(engine: AsyncEngine) -> None:
    client_id = await _client(engine)
    family = uuid.uuid4().hex
    await issue_tokens(engine, _token(client_id, family, "a0" + family), _token(client_id, family, "r0" + family))
    found = await find_refresh_token(engine, _hash("r0" + family), NOW)
    assert found is not None
    assert found.rotated_at is None
    results: list[bool] = []

    async def rotate(n: int) -> None:
        access = _token(client_id, family, f"a{n}{family}")
        refresh = _token(client_id, family, f"r{n}{family}")
        results.append(await rotate_refresh_token(engine, _hash("r0" + family), access, refresh, NOW))

    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            for n in range(1, 5):
                group.start_soon(rotate, n)
    assert sorted(results) == [False, False, False, True]
    spent = await find_refresh_token(engine, _hash("r0" + family), NOW)
    assert spent is not None
    assert spent.rotated_at == NOW
    # The family's earlier access token went with the rotation.
    assert await find_access_token(engine, _hash("a0" + family), NOW) is None
    live = [n for n in range(1, 5) if await find_access_token(engine, _hash(f"a{n}{family}"), NOW)]
    assert len(live) == 1
    assert await revoke_token_family(engine, family) == 3
    assert await find_access_token(engine, _hash(f"a{live[0]}{family}"), NOW) is None


async def test_an_expired_refresh_token_does_not_rotate_and_pruning_removes_only_expired_rows(
    engine: AsyncEngine,
) -> None:
    client_id = await _client(engine)
    family = uuid.uuid4().hex
    expiring = _token(client_id, family, "old" + family, expires_at=NOW + timedelta(minutes=1))
    await issue_tokens(engine, expiring, _token(client_id, family, "r" + family, expires_at=NOW + timedelta(minutes=1)))
    await issue_tokens(engine, _token(client_id, family, "fresh" + family), None)
    after = NOW + timedelta(minutes=2)
    assert not await rotate_refresh_token(
        engine, _hash("r" + family), _token(client_id, family, "x"), _token(client_id, family, "y"), after
    )
    assert await find_refresh_token(engine, _hash("r" + family), after) is None
    assert await prune_oauth(engine, after) >= 2
    assert await find_access_token(engine, _hash("old" + family), NOW) is None
    assert await find_access_token(engine, _hash("fresh" + family), NOW) is not None
    await revoke_token_family(engine, family)


async def test_sign_in_failures_add_up_to_a_lock_and_a_success_clears_them(engine: AsyncEngine) -> None:
    await set_owner_password(engine, "scrypt$first", NOW)
    owner = await find_owner(engine)
    assert owner is not None
    assert (owner.password_hash, owner.failures, owner.locked_until) == ("scrypt$first", 0, None)
    lockout = timedelta(minutes=15)
    assert await record_sign_in_failure(engine, NOW, max_failures=3, lockout=lockout) is None
    await record_sign_in_success(engine, NOW)
    results = [await record_sign_in_failure(engine, NOW, max_failures=3, lockout=lockout) for _ in range(3)]
    assert results == [None, None, NOW + lockout]
    locked = await find_owner(engine)
    assert locked is not None
    assert (locked.failures, locked.locked_until) == (0, NOW + lockout)
    await set_owner_password(engine, "scrypt$second", LATER)
    reset = await find_owner(engine)
    assert reset is not None
    assert (reset.password_hash, reset.failures, reset.locked_until) == ("scrypt$second", 0, None)


async def test_an_access_token_is_found_with_its_clients_current_grant_and_not_without_one(
    engine: AsyncEngine,
) -> None:
    client_id = await _client(engine)
    family = uuid.uuid4().hex
    await issue_tokens(engine, _token(client_id, family, f"a-{family}"), _token(client_id, family, f"r-{family}"))
    assert await find_granted_access_token(engine, _hash(f"a-{family}"), NOW) is None  # approved nothing yet

    await set_grant(engine, client_id, ["server:a"], NOW)
    found = await find_granted_access_token(engine, _hash(f"a-{family}"), NOW)
    assert found is not None
    assert (found[0].client_id, found[1]) == (client_id, ("server:a",))

    await set_grant(engine, client_id, ["tool:x"], NOW)  # an edit holds at once
    found = await find_granted_access_token(engine, _hash(f"a-{family}"), NOW)
    assert found is not None
    assert found[1] == ("tool:x",)
    assert await find_granted_access_token(engine, _hash(f"a-{family}"), LATER + timedelta(hours=1)) is None
