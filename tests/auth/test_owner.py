"""The owner's password: scrypt at rest, wrong guesses counted across calls, lock-out honoured."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.engine import make_url

from orchestrator.auth._owner import (
    PasswordTooShortError,
    check_owner_password,
    hash_password,
    set_password,
    verify_password,
)
from orchestrator.config import OAuthSpec
from orchestrator.store import find_owner, open_store
from tests.auth.helpers import Clock

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery"


def test_a_hash_carries_its_parameters_and_salt_and_only_the_password_verifies() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("scrypt$n=32768,r=8,p=1$")
    assert first != second  # a fresh salt each time
    assert PASSWORD not in first
    assert verify_password(PASSWORD, first)
    assert verify_password(PASSWORD, second)
    assert not verify_password(PASSWORD + "!", first)
    assert not verify_password(PASSWORD, "scrypt$garbage")
    assert not verify_password(PASSWORD, "md5$n=1,r=1,p=1$AAAA$AAAA")


def test_a_short_password_is_refused() -> None:
    with pytest.raises(PasswordTooShortError, match="at least 12 characters"):
        hash_password("elevenchars")


async def test_wrong_guesses_lock_sign_in_and_while_locked_even_the_right_password_fails(tmp_path: Path) -> None:
    clock = Clock()
    spec = OAuthSpec(issuer="http://127.0.0.1:8123", login_attempts=3, lockout=60)
    async with open_store(make_url(f"sqlite+aiosqlite:///{tmp_path / 'state.db'}")) as store:
        unset = await check_owner_password(store, spec, PASSWORD, clock.now)
        assert (unset.ok, unset.no_password_set) == (False, True)

        await set_password(store, PASSWORD, clock.now)
        owner = await find_owner(store.engine)
        assert owner is not None
        assert PASSWORD not in owner.password_hash
        assert (await check_owner_password(store, spec, PASSWORD, clock.now)).ok

        results = [await check_owner_password(store, spec, "wrong guess!", clock.now) for _ in range(3)]
        assert [result.ok for result in results] == [False, False, False]
        assert [result.locked_until for result in results] == [None, None, clock.now + timedelta(seconds=60)]

        clock.now += timedelta(seconds=30)
        locked = await check_owner_password(store, spec, PASSWORD, clock.now)
        assert not locked.ok
        assert locked.locked_until is not None
        # Not even checked: a guess during the lock counts for nothing.
        still = await find_owner(store.engine)
        assert still is not None
        assert still.failures == 0

        clock.now += timedelta(seconds=31)
        assert (await check_owner_password(store, spec, PASSWORD, clock.now)).ok
        # A success clears the count: two more misses do not lock.
        for _ in range(2):
            assert (await check_owner_password(store, spec, "wrong guess!", clock.now)).locked_until is None
