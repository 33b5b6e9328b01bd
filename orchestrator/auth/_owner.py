"""The owner's password: a scrypt hash at rest, a constant-time check, lock-out after failures.

The lock-out state lives in the store, so every replica counts the same failures and honours
the same lock. While sign-in is locked the password is not even checked: a guess made during
a lock tells nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Final

import anyio.to_thread

from orchestrator import store as state_db
from orchestrator.auth._consent_types import SignInResult

if TYPE_CHECKING:
    from datetime import datetime

    from orchestrator.config import OAuthSpec
    from orchestrator.store import Store

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "PasswordTooShortError",
    "check_owner_password",
    "hash_password",
    "set_password",
    "verify_password",
]

MIN_PASSWORD_LENGTH: Final = 12

# scrypt cost: 2**15 x 8 x 128 bytes = 32 MiB and ~0.1 s per check (OWASP's minimum is 2**17 x 8
# x 1 for a login; 2**15 with r=8 is RFC 7914's interactive setting). Stored with the hash, so
# a later version can raise it and old hashes still verify.
_N: Final = 2**15
_R: Final = 8
_P: Final = 1
_KEY_BYTES: Final = 32
_SALT_BYTES: Final = 16
_MAXMEM: Final = 64 * 1024 * 1024
_SCHEME: Final = "scrypt"


class PasswordTooShortError(ValueError):
    """An owner password shorter than ``MIN_PASSWORD_LENGTH``."""

    def __init__(self) -> None:
        super().__init__(f"the owner password needs at least {MIN_PASSWORD_LENGTH} characters")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """``scrypt$n=…,r=…,p=…$SALT$KEY``: the password's hash with a random salt and its parameters.

    Raises:
        PasswordTooShortError: ``password`` is shorter than ``MIN_PASSWORD_LENGTH``.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordTooShortError
    salt = secrets.token_bytes(_SALT_BYTES)
    key = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_KEY_BYTES, maxmem=_MAXMEM)
    return f"{_SCHEME}$n={_N},r={_R},p={_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded`` (from ``hash_password``); a malformed hash matches nothing."""
    try:
        scheme, parameters, salt_text, key_text = encoded.split("$")
        settings = dict(item.split("=", 1) for item in parameters.split(","))
        n, r, p = int(settings["n"]), int(settings["r"]), int(settings["p"])
        salt, key = _unb64(salt_text), _unb64(key_text)
    except (ValueError, KeyError):
        return False
    if scheme != _SCHEME or not key:
        return False
    candidate = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(key), maxmem=_MAXMEM)
    return hmac.compare_digest(candidate, key)


async def set_password(store: Store, password: str, now: datetime) -> None:
    """Hash ``password`` and make it the owner's (clears failures and any lock).

    Raises:
        PasswordTooShortError: ``password`` is shorter than ``MIN_PASSWORD_LENGTH``.
    """
    encoded = await anyio.to_thread.run_sync(hash_password, password)
    await state_db.set_owner_password(store.engine, encoded, now)


async def check_owner_password(store: Store, spec: OAuthSpec, password: str, now: datetime) -> SignInResult:
    """One sign-in attempt: locked, no password set, wrong (counted, maybe locking), or right."""
    owner = await state_db.find_owner(store.engine)
    if owner is None:
        return SignInResult(ok=False, no_password_set=True)
    if owner.locked_until is not None and owner.locked_until > now:
        return SignInResult(ok=False, locked_until=owner.locked_until)
    # scrypt takes a tenth of a second of CPU: off the event loop.
    if await anyio.to_thread.run_sync(verify_password, password, owner.password_hash):
        await state_db.record_sign_in_success(store.engine, now)
        return SignInResult(ok=True)
    locked_until = await state_db.record_sign_in_failure(
        store.engine, now, max_failures=spec.login_attempts, lockout=timedelta(seconds=spec.lockout)
    )
    return SignInResult(ok=False, locked_until=locked_until)
