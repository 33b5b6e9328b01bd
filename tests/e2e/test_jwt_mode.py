"""JWT mode end to end: ``orchestrator serve`` checks an identity provider's tokens against its JWKS.

Every forged, misdirected or stale token gets 401 at the edge, and nothing reaches a
downstream server (the fault server records each call it starts); a good token works, and
key rotation is covered, with a clock of its own, in ``tests/auth/test_jwt.py``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx2
import mcp_types as types
import pytest

from tests.auth.identity_provider import AUDIENCE, ISSUER, SigningKey, claims, hmac_signed, serve_jwks, unsigned
from tests.e2e.harness import fault_entry, http_aggregator, write_config
from tests.fakes import EVENTS_FILE_ENV

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.auth.identity_provider import Provider

pytestmark = pytest.mark.anyio


@pytest.fixture
def provider() -> Iterator[Provider]:
    yield from serve_jwks(SigningKey.rsa("key-1"))


def _call(name: str) -> dict[str, Any]:
    """A 2026-07-28 ``tools/call`` in one stateless POST: if it got through, the tool would run."""
    meta = {
        types.PROTOCOL_VERSION_META_KEY: "2026-07-28",
        types.CLIENT_INFO_META_KEY: {"name": "probe", "version": "0"},
        types.CLIENT_CAPABILITIES_META_KEY: {},
    }
    params = {"name": name, "arguments": {"text": "hi"} if name.endswith("echo") else {}, "_meta": meta}
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2026-07-28",
    "Mcp-Method": "tools/call",
}


async def test_only_good_tokens_pass_and_nothing_else_reaches_a_downstream(tmp_path: Path, provider: Provider) -> None:
    events = tmp_path / "events.log"
    key = SigningKey.rsa("key-1")
    provider.endpoint.publish(key)
    config = write_config(
        tmp_path,
        {"f": fault_entry(env={EVENTS_FILE_ENV: str(events)})},
        serve={
            "auth": {
                "jwt": {"issuer": ISSUER, "jwks_url": provider.jwks_url, "audience": AUDIENCE, "scopes": {"mcp": ["*"]}}
            }
        },
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
    )
    other = SigningKey.rsa("key-1")  # same kid, another key: a forgery
    unpublished = SigningKey.ec("key-2")
    now = int(time.time())
    forged = {
        "wrong audience": key.sign(claims(aud="https://elsewhere.example/mcp")),
        "wrong issuer": key.sign(claims(iss="https://evil.example/realms/main")),
        "expired": key.sign(claims(exp=now - 3600, iat=now - 7200)),
        "not yet valid": key.sign(claims(nbf=now + 3600)),
        "unknown kid": unpublished.sign(claims()),
        "alg none": unsigned(claims(), kid="key-1"),
        "HS256 with the public key": hmac_signed(claims(), key.public_pem(), kid="key-1"),
        "signed by another key": other.sign(claims()),
        "garbage": "not.a.token",
    }
    async with http_aggregator(config) as url, httpx2.AsyncClient(timeout=30) as http:
        for why, token in forged.items():
            response = await http.post(
                url,
                json=_call("f__hang"),
                headers={**_HEADERS, "Mcp-Name": "f__hang", "Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 401, why
            assert "scope=" not in response.headers["www-authenticate"], "no scope is required: none to name"
            assert (
                'resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"'
                in (response.headers["www-authenticate"])
            ), why
        good = key.sign(claims())
        in_query = await http.post(
            f"{url}?access_token={good}", json=_call("f__hang"), headers={**_HEADERS, "Mcp-Name": "f__hang"}
        )
        assert in_query.status_code == 401

        ok = await http.post(
            url, json=_call("f__echo"), headers={**_HEADERS, "Mcp-Name": "f__echo", "Authorization": f"Bearer {good}"}
        )
        assert ok.status_code == 200, ok.text
        assert "hi" in ok.text

        metadata = (await http.get(url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp"))).json()
        assert metadata["authorization_servers"] == [ISSUER]
    assert "started hang" not in (events.read_text() if events.exists() else "")


async def test_a_token_without_a_required_scope_gets_403_naming_the_scope(tmp_path: Path, provider: Provider) -> None:
    key = SigningKey.rsa("key-1")
    provider.endpoint.publish(key)
    jwt = {
        "issuer": ISSUER,
        "jwks_url": provider.jwks_url,
        "audience": AUDIENCE,
        "required_scopes": ["mcp"],
        "scopes": {"mcp": ["*"]},
    }
    config = write_config(
        tmp_path, {"f": fault_entry()}, serve={"auth": {"jwt": jwt}}, state={"url": f"sqlite:///{tmp_path / 's.db'}"}
    )
    async with http_aggregator(config) as url, httpx2.AsyncClient(timeout=30) as http:
        headers = {**_HEADERS, "Mcp-Name": "f__echo"}
        narrow = key.sign(claims(scope="openid profile"))
        refused = await http.post(url, json=_call("f__echo"), headers={**headers, "Authorization": f"Bearer {narrow}"})
        assert refused.status_code == 403
        challenge = refused.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in challenge
        assert 'scope="mcp"' in challenge
        wide = key.sign(claims(scope="openid mcp"))
        allowed = await http.post(url, json=_call("f__echo"), headers={**headers, "Authorization": f"Bearer {wide}"})
        assert allowed.status_code == 200, allowed.text
