"""The key that encrypts secrets at rest, and the encryption itself (AES-256-GCM).

The key lives in the OS keyring (``keyring``) when a usable backend exists (macOS Keychain,
Windows Credential Locker, a Secret Service on Linux desktops); otherwise in a key file beside
the state database, created owner-only (0600) and refused when group or others may read it.
One key per state database: the keyring entry is named after the database URL.

Each blob is bound to what it holds (server key and kind) as associated data, so a blob copied
onto another server's row does not decrypt. The store only ever sees the blobs.

Does not: decide what is secret or when to store it (``_oauth_tokens``), or write SQL.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Final

import keyring
import keyring.errors
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from keyring.backends import fail

from orchestrator.errors import SecretKeyError
from orchestrator.store import default_state_dir

if TYPE_CHECKING:
    from collections.abc import Mapping

    from keyring.backend import KeyringBackend
    from sqlalchemy.engine import URL

__all__ = ["KEYRING_SERVICE", "KEY_FILE_NAME", "SecretBox", "key_file_for", "open_secret_box"]

logger = logging.getLogger(__name__)

KEY_FILE_NAME: Final = "secrets.key"
KEYRING_SERVICE: Final = "mcp-orchestrator"
_KEY_BYTES: Final = 32
_NONCE_BYTES: Final = 12
_FORMAT: Final = b"\x01"
"""The first byte of every blob: the format, so a later one can be told apart."""


class SecretBox:
    """Encrypts and decrypts blobs with one key (AES-256-GCM, a fresh nonce per blob)."""

    def __init__(self, key: bytes, location: str) -> None:
        if len(key) != _KEY_BYTES:
            raise SecretKeyError(location, f"is not a key of this program ({_KEY_BYTES} bytes, base64)")
        self._aead = AESGCM(key)
        self._key = key
        self.location = location
        """Where the key is kept (a file path or the keyring entry), for messages."""

    def derived_key(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` (HKDF-SHA256 of this key): the same wherever this key is.

        Replicas given one key file sign with one derived key (the consent page's cookies),
        while the key itself never signs anything but these blobs.
        """
        return HKDF(algorithm=SHA256(), length=_KEY_BYTES, salt=None, info=purpose.encode()).derive(self._key)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        """``plaintext`` encrypted and bound to ``context`` (e.g. ``"tokens:KEY"``)."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _FORMAT + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, blob: bytes, context: str) -> bytes:
        """The plaintext of a blob ``seal`` made for the same ``context``.

        Raises:
            SecretKeyError: The blob was not sealed with this key for this context (the key
                changed, or the blob was tampered with or moved).
        """
        if blob[:1] != _FORMAT or len(blob) < 1 + _NONCE_BYTES:
            raise SecretKeyError(self.location, f"a stored secret ({context}) is not in a format this program wrote")
        nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, context.encode())
        except InvalidTag:
            raise SecretKeyError(
                self.location, f"a stored secret ({context}) does not decrypt with this key (was the key replaced?)"
            ) from None


def key_file_for(url: URL, env: Mapping[str, str]) -> Path:
    """Where the key file of the state database at ``url`` is: beside a SQLite file, else in the state folder."""
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).parent / KEY_FILE_NAME
    return default_state_dir(env) / KEY_FILE_NAME


def _usable_keyring() -> KeyringBackend | None:
    backend = keyring.get_keyring()
    # The "fail" backend (and any of priority <= 0) means no keyring: servers, containers, CI.
    if isinstance(backend, fail.Keyring) or backend.priority <= 0:
        return None
    return backend


def _keyring_key(account: str) -> bytes | None:
    backend = _usable_keyring()
    if backend is None:
        return None
    location = f"keyring {KEYRING_SERVICE}/{account}"
    try:
        stored = backend.get_password(KEYRING_SERVICE, account)
        if stored is None:
            stored = base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode()
            backend.set_password(KEYRING_SERVICE, account, stored)  # pyright: ignore[reportUnknownMemberType] (keyring's decorator is untyped)
    except keyring.errors.KeyringError as exc:
        logger.warning("the OS keyring cannot be used (%s); using a key file", type(exc).__name__)
        return None
    try:
        return base64.b64decode(stored, validate=True)
    except ValueError:
        raise SecretKeyError(location, "holds something that is not a key of this program") from None


def _read_key_file(path: Path) -> bytes:
    try:
        info = path.stat()
    except OSError as exc:
        raise SecretKeyError(str(path), f"cannot be read: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretKeyError(
            str(path),
            f"group or others may read it (mode {stat.S_IMODE(info.st_mode):04o}); it guards stored tokens: "
            f"run 'chmod 600 {path}'",
        )
    if info.st_uid != os.getuid():
        raise SecretKeyError(str(path), "belongs to another user; it must be this user's own file")
    try:
        return base64.b64decode(path.read_bytes().strip(), validate=True)
    except ValueError:
        raise SecretKeyError(str(path), "is not a key of this program (32 bytes, base64)") from None


def _create_key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(_KEY_BYTES)
    # Written whole under a temporary name, then linked into place, which fails if the file is
    # there: two processes starting at once never each keep a key of their own, and neither
    # reads the other's file half written.
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise SecretKeyError(str(path), f"cannot be created: {exc.strerror}") from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(base64.b64encode(key) + b"\n")
        os.link(temporary, path)
    except FileExistsError:
        return _read_key_file(path)
    except OSError as exc:
        raise SecretKeyError(str(path), f"cannot be created: {exc.strerror}") from None
    finally:
        os.unlink(temporary)
    logger.info("created the key file %s (owner-only) for secrets at rest", path)
    return key


def open_secret_box(url: URL, env: Mapping[str, str], *, use_keyring: bool = True) -> SecretBox:
    """The box for secrets of the state database at ``url``: its key from the keyring, else its key file.

    The key is created on first use.

    Args:
        url: The state database's URL (names the keyring entry and places the key file).
        env: Where the state folder is read from (``ORCHESTRATOR_STATE_DIR``, ``XDG_STATE_HOME``).
        use_keyring: Try the OS keyring first.

    Raises:
        SecretKeyError: The key file may be read by group or others, belongs to another user,
            or is not a key; or it cannot be created.
    """
    account = f"secrets {url.render_as_string(hide_password=True)}"
    key = _keyring_key(account) if use_keyring else None
    if key is not None:
        return SecretBox(key, f"keyring {KEYRING_SERVICE}/{account}")
    path = key_file_for(url, env)
    key = _read_key_file(path) if path.exists() else _create_key_file(path)
    return SecretBox(key, str(path))
