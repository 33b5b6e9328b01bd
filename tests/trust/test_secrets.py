"""The key for secrets at rest: an owner-only key file when no OS keyring is usable, and AES-GCM blobs."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.engine import URL

from orchestrator.errors import SecretKeyError
from orchestrator.trust import KEY_FILE_NAME, SecretBox, key_file_for, open_secret_box

if TYPE_CHECKING:
    from pathlib import Path


def _sqlite(folder: Path) -> URL:
    return URL.create("sqlite+aiosqlite", database=str(folder / "state.db"))


def test_the_key_file_is_created_owner_only_beside_the_database_and_reused(tmp_path: Path) -> None:
    url = _sqlite(tmp_path / "state")

    box = open_secret_box(url, {}, use_keyring=False)
    again = open_secret_box(url, {}, use_keyring=False)

    path = tmp_path / "state" / KEY_FILE_NAME
    assert key_file_for(url, {}) == path
    assert box.location == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert again.open(box.seal(b"secret", "tokens:docs"), "tokens:docs") == b"secret"


def test_a_database_elsewhere_keeps_its_key_in_the_state_folder(tmp_path: Path) -> None:
    url = URL.create("postgresql+asyncpg", username="u", host="db", database="state")

    assert key_file_for(url, {"ORCHESTRATOR_STATE_DIR": str(tmp_path)}) == tmp_path / KEY_FILE_NAME


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_key_file_others_may_read_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    url = _sqlite(tmp_path)
    open_secret_box(url, {}, use_keyring=False)
    path = tmp_path / KEY_FILE_NAME
    os.chmod(path, mode)

    with pytest.raises(SecretKeyError) as caught:
        open_secret_box(url, {}, use_keyring=False)

    assert str(caught.value) == (
        f"{path}: group or others may read it (mode {mode:04o}); it guards stored tokens: run 'chmod 600 {path}'"
    )


def test_a_key_file_that_holds_no_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    path.write_bytes(b"not a key\n")
    os.chmod(path, 0o600)

    with pytest.raises(SecretKeyError, match="is not a key of this program"):
        open_secret_box(_sqlite(tmp_path), {}, use_keyring=False)


def test_blobs_are_encrypted_fresh_each_time_and_bound_to_what_they_hold(tmp_path: Path) -> None:
    box = open_secret_box(_sqlite(tmp_path), {}, use_keyring=False)
    plaintext = b'{"access_token": "very-secret-token"}'

    first, second = box.seal(plaintext, "tokens:docs"), box.seal(plaintext, "tokens:docs")

    assert first != second
    assert b"very-secret-token" not in first
    assert box.open(first, "tokens:docs") == plaintext
    with pytest.raises(SecretKeyError, match=r"a stored secret \(tokens:mail\) does not decrypt with this key"):
        box.open(first, "tokens:mail")
    tampered = first[:-1] + bytes([first[-1] ^ 1])
    with pytest.raises(SecretKeyError, match="does not decrypt"):
        box.open(tampered, "tokens:docs")


def test_another_key_cannot_open_the_blobs(tmp_path: Path) -> None:
    sealed = open_secret_box(_sqlite(tmp_path / "a"), {}, use_keyring=False).seal(b"secret", "tokens:docs")

    with pytest.raises(SecretKeyError, match="was the key replaced"):
        open_secret_box(_sqlite(tmp_path / "b"), {}, use_keyring=False).open(sealed, "tokens:docs")


def test_without_a_usable_os_keyring_the_key_file_is_used(tmp_path: Path) -> None:
    # This machine, like CI, has no keyring backend: the default path must still work.
    box = open_secret_box(_sqlite(tmp_path), {})

    assert box.location == str(tmp_path / KEY_FILE_NAME)


def test_a_derived_key_is_the_same_for_one_key_and_purpose_and_tells_keys_and_purposes_apart() -> None:
    key = bytes(range(32))
    one, same = SecretBox(key, "a"), SecretBox(key, "b")
    other = SecretBox(bytes(32), "c")
    assert one.derived_key("consent page sessions") == same.derived_key("consent page sessions")
    assert len(one.derived_key("consent page sessions")) == 32
    assert one.derived_key("consent page sessions") != one.derived_key("something else")
    assert one.derived_key("consent page sessions") != other.derived_key("consent page sessions")
    assert one.derived_key("consent page sessions") != key
