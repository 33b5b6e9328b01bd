"""The consent page's signed session cookies and CSRF tokens (pure: no server, no browser)."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.auth._consent import consent_routes
from orchestrator.auth._consent_session import SIGNED_IN_SECONDS, VISITOR_SECONDS, SessionSigner
from tests.auth.consent_site import MemoryConsentBackend

NOW = 1_800_000_000.0


def test_a_session_round_trips_through_its_cookie_until_it_expires() -> None:
    signer = SessionSigner()
    visitor = signer.new(signed_in=False, now=NOW)
    owner = signer.new(signed_in=True, now=NOW)
    assert visitor.expires_at == NOW + VISITOR_SECONDS
    assert owner.expires_at == NOW + SIGNED_IN_SECONDS
    assert visitor.nonce != owner.nonce
    for session in (visitor, owner):
        assert signer.decode(signer.encode(session), now=NOW) == session
        assert signer.decode(signer.encode(session), now=session.expires_at) is None


def test_a_cookie_signed_with_another_key_or_altered_is_no_session() -> None:
    signer, other = SessionSigner(), SessionSigner()
    value = signer.encode(signer.new(signed_in=False, now=NOW))
    nonce, expires, _, mac = value.split(".")
    assert other.decode(value, now=NOW) is None
    assert signer.decode(f"{nonce}.{expires}.1.{mac}", now=NOW) is None
    assert signer.decode(f"{nonce}.{int(expires) + 3600}.0.{mac}", now=NOW) is None
    assert signer.decode(None, now=NOW) is None
    assert signer.decode("", now=NOW) is None


@given(st.text(max_size=200))
def test_no_arbitrary_cookie_value_is_a_session(value: str) -> None:
    assert SessionSigner(b"k" * 32).decode(value, now=NOW) is None


def test_a_csrf_token_answers_one_purpose_one_request_and_one_session() -> None:
    signer = SessionSigner()
    session, other_session = signer.new(signed_in=True, now=NOW), signer.new(signed_in=True, now=NOW)
    token = signer.csrf_token(session, "decide", "req-1")
    assert signer.csrf_valid(session, "decide", "req-1", token)
    assert not signer.csrf_valid(session, "sign-in", "req-1", token)
    assert not signer.csrf_valid(session, "decide", "req-2", token)
    assert not signer.csrf_valid(other_session, "decide", "req-1", token)
    assert not signer.csrf_valid(session, "decide", "req-1", "")
    assert not signer.csrf_valid(session, "decide", "req-1", None)
    assert not signer.csrf_valid(session, "decide", "req-1", token.upper())


def test_a_shared_key_signs_alike_in_every_replica_and_a_short_key_is_refused() -> None:
    key = b"0123456789abcdef0123456789abcdef"
    first, second = SessionSigner(key), SessionSigner(key)
    session = first.new(signed_in=True, now=NOW)
    assert second.decode(first.encode(session), now=NOW) == session
    with pytest.raises(ValueError, match="at least 32 bytes"):
        SessionSigner(b"short")


def test_the_routes_live_under_the_given_path() -> None:
    routes = consent_routes(MemoryConsentBackend(), path="/oauth/consent/", secure_cookies=True)
    assert sorted({route.path for route in routes}) == [
        "/oauth/consent",
        "/oauth/consent/sign-in",
        "/oauth/consent/static/consent.css",
    ]
    for bad in ("consent", "/", ""):
        with pytest.raises(ValueError, match="must start with '/'"):
            consent_routes(MemoryConsentBackend(), path=bad, secure_cookies=False)


def test_the_package_data_globs_ship_every_template_and_stylesheet() -> None:
    root = Path(__file__).resolve().parents[2]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["orchestrator"]
    package = root / "orchestrator"
    assets = [path for folder in ("templates", "static") for path in (package / "auth" / folder).rglob("*")]
    assert assets
    for asset in assets:
        relative = asset.relative_to(package).as_posix()
        assert any(fnmatch(relative, pattern) for pattern in globs), relative
