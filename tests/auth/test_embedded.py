"""The embedded authorization server as a provider and consent back end, without HTTP."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest
from mcp.server.auth.provider import AuthorizationParams, AuthorizeError, RegistrationError, TokenError
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import AnyUrl

from orchestrator.auth import Grant
from orchestrator.auth._embedded import AuthorizationRequestGone, EmbeddedAuthServer, presented_client_secrets
from orchestrator.store import list_clients, revoke_client, set_grant
from tests.auth.helpers import CATALOGUE, RESOURCE, Clock, auth_server, pkce

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.auth._consent_types import ConsentBackend

pytestmark = pytest.mark.anyio

REDIRECT = "https://claude.ai/api/mcp/auth_callback"


def _client(secret: str | None = "s3cret-of-the-client", redirect: str = REDIRECT) -> OAuthClientInformationFull:
    return OAuthClientInformationFull(
        client_id="c-1",
        client_secret=secret,
        client_name="Claude",
        redirect_uris=[AnyUrl(redirect)],
        token_endpoint_auth_method="client_secret_post" if secret else "none",
        scope="mcp",
    )


def _params(challenge: str, *, resource: str | None = RESOURCE, scopes: list[str] | None = None) -> AuthorizationParams:
    return AuthorizationParams(
        state="st",
        scopes=scopes,
        code_challenge=challenge,
        redirect_uri=AnyUrl(REDIRECT),
        redirect_uri_provided_explicitly=True,
        resource=resource,
    )


def _request_id(consent_url: str) -> str:
    return parse_qs(urlsplit(consent_url).query)["request"][0]


async def _approved_tokens(server: EmbeddedAuthServer, grant: list[str]) -> tuple[str, str]:
    client = await server.get_client("c-1")
    assert client is not None
    _, challenge = pkce()
    request_id = _request_id(await server.authorize(client, _params(challenge)))
    code = parse_qs(urlsplit(await server.approve(request_id, Grant.of(grant))).query)["code"][0]
    loaded = await server.load_authorization_code(client, code)
    assert loaded is not None
    tokens = await server.exchange_authorization_code(client, loaded)
    assert tokens.refresh_token is not None
    return tokens.access_token, tokens.refresh_token


async def test_a_request_goes_to_the_consent_page_and_approval_returns_a_code_state_and_issuer(tmp_path: Path) -> None:
    async with auth_server(tmp_path) as (server, _):
        backend: ConsentBackend = server
        assert backend.catalogue() == CATALOGUE
        await server.register_client(_client())
        client = await server.get_client("c-1")
        assert client is not None
        _, challenge = pkce()
        consent = await server.authorize(client, _params(challenge))
        assert consent.startswith("http://127.0.0.1:8123/consent?request=")
        request_id = _request_id(consent)
        assert len(request_id) >= 43

        pending = await backend.pending(request_id)
        assert pending is not None
        assert (pending.client_id, pending.client_name, pending.redirect_uri) == ("c-1", "Claude", REDIRECT)
        assert (pending.scopes, pending.current_grant) == (("mcp",), None)

        answer = urlsplit(await backend.approve(request_id, Grant.of(["server:a"])))
        query = parse_qs(answer.query)
        assert f"{answer.scheme}://{answer.netloc}{answer.path}" == REDIRECT
        assert (query["state"], query["iss"]) == (["st"], ["http://127.0.0.1:8123"])
        assert len(query["code"][0]) >= 43
        assert await backend.pending(request_id) is None
        with pytest.raises(AuthorizationRequestGone):
            await backend.approve(request_id, Grant.of(["*"]))

        # The next request of this client shows its current grant pre-ticked; a denial says so.
        again = _request_id(await server.authorize(client, _params(challenge)))
        next_pending = await backend.pending(again)
        assert next_pending is not None
        assert next_pending.current_grant == Grant.of(["server:a"])
        denied = parse_qs(urlsplit(await backend.deny(again)).query)
        assert (denied["error"], denied["state"]) == (["access_denied"], ["st"])
        with pytest.raises(AuthorizationRequestGone):
            await backend.deny(again)


async def test_a_pending_request_lapses_after_ten_minutes(tmp_path: Path) -> None:
    clock = Clock()
    async with auth_server(tmp_path, clock=clock) as (server, _):
        await server.register_client(_client())
        client = await server.get_client("c-1")
        assert client is not None
        request_id = _request_id(await server.authorize(client, _params(pkce()[1])))
        clock.now += timedelta(minutes=10, seconds=1)
        assert await server.pending(request_id) is None
        with pytest.raises(AuthorizationRequestGone):
            await server.approve(request_id, Grant.of(["*"]))


async def test_other_resources_scopes_plain_challenges_and_unregistered_redirects_are_refused(tmp_path: Path) -> None:
    async with auth_server(tmp_path) as (server, _):
        await server.register_client(_client())
        client = await server.get_client("c-1")
        assert client is not None
        challenge = pkce()[1]
        with pytest.raises(AuthorizeError) as other_resource:
            await server.authorize(client, _params(challenge, resource="https://elsewhere.example/mcp"))
        assert other_resource.value.error == "invalid_target"
        # The same URL with a trailing slash is the same resource.
        assert await server.authorize(client, _params(challenge, resource=RESOURCE + "/"))
        with pytest.raises(AuthorizeError) as other_scope:
            await server.authorize(client, _params(challenge, scopes=["mcp", "admin"]))
        assert other_scope.value.error == "invalid_scope"
        with pytest.raises(AuthorizeError) as plain:
            await server.authorize(client, _params("a-plain-verifier-used-as-its-own-challenge-000000"))
        assert plain.value.error == "invalid_request"
        elsewhere = _params(challenge).model_copy(update={"redirect_uri": AnyUrl("https://claude.ai/other")})
        with pytest.raises(AuthorizeError) as redirect:
            await server.authorize(client, elsewhere)
        assert redirect.value.error == "invalid_request"


@pytest.mark.parametrize(
    ("redirect", "problem"),
    [
        ("https://claude.ai/cb#frag", "fragment"),
        ("http://claude.ai/cb", "plain http off loopback"),
        ("javascript://claude.ai/cb", "unacceptable scheme"),
    ],
)
async def test_registration_refuses_unsafe_redirect_uris(tmp_path: Path, redirect: str, problem: str) -> None:
    async with auth_server(tmp_path) as (server, _):
        with pytest.raises(RegistrationError) as refused:
            await server.register_client(_client(redirect=redirect))
        assert refused.value.error == "invalid_redirect_uri"
        assert problem in (refused.value.error_description or "")


async def test_an_access_token_carries_the_clients_current_grant_until_revoked(tmp_path: Path) -> None:
    clock = Clock()
    async with auth_server(tmp_path, clock=clock, access_token_ttl=60) as (server, store):
        await server.register_client(_client())
        access, refresh = await _approved_tokens(server, ["server:a"])
        token = await server.load_access_token(access)
        assert token is not None
        assert (token.kind, token.client_id, token.subject, token.grant) == ("oauth", "c-1", "owner", ("server:a",))
        assert (token.resource, token.claims, token.scopes) == (RESOURCE, {"iss": "http://127.0.0.1:8123"}, ["mcp"])

        assert await set_grant(store.engine, "c-1", ["server:a", "tool:b__get"], clock.now)
        edited = await server.load_access_token(access)
        assert edited is not None
        assert edited.grant == ("server:a", "tool:b__get")

        clock.now += timedelta(seconds=61)
        assert await server.load_access_token(access) is None
        assert await server.prune() == 1  # the expired access token; the refresh token lives on
        client = await server.get_client("c-1")
        assert client is not None
        assert await server.load_refresh_token(client, refresh) is not None

        assert await revoke_client(store.engine, "c-1", clock.now)
        assert await server.load_refresh_token(client, refresh) is None
        [listed] = await list_clients(store.engine)
        assert (listed.grant, listed.revoked_at) == (None, clock.now)


async def test_a_spent_code_and_a_replayed_refresh_token_are_refused_and_replay_revokes_the_family(
    tmp_path: Path,
) -> None:
    async with auth_server(tmp_path) as (server, _):
        await server.register_client(_client())
        client = await server.get_client("c-1")
        assert client is not None
        request_id = _request_id(await server.authorize(client, _params(pkce()[1])))
        code = parse_qs(urlsplit(await server.approve(request_id, Grant.of(["*"]))).query)["code"][0]
        loaded = await server.load_authorization_code(client, code)
        assert loaded is not None
        first = await server.exchange_authorization_code(client, loaded)
        with pytest.raises(TokenError) as spent:
            await server.exchange_authorization_code(client, loaded)
        assert spent.value.error == "invalid_grant"
        assert await server.load_authorization_code(client, code) is None

        assert first.refresh_token is not None
        old = await server.load_refresh_token(client, first.refresh_token)
        assert old is not None
        second = await server.exchange_refresh_token(client, old, ["mcp"])
        assert await server.load_access_token(first.access_token) is None
        assert await server.load_access_token(second.access_token) is not None
        # Exchanging the old one again (a race, or a thief): refused, and the family is gone.
        with pytest.raises(TokenError):
            await server.exchange_refresh_token(client, old, ["mcp"])
        assert await server.load_access_token(second.access_token) is None
        assert second.refresh_token is not None
        assert await server.load_refresh_token(client, second.refresh_token) is None


async def test_secrets_codes_and_tokens_are_stored_only_as_hashes(tmp_path: Path) -> None:
    async with auth_server(tmp_path) as (server, _):
        secret = "s3cret-of-the-client-that-must-not-be-stored"
        await server.register_client(_client(secret=secret))
        access, refresh = await _approved_tokens(server, ["*"])
        client = await server.get_client("c-1")
        assert client is not None
        request_id = _request_id(await server.authorize(client, _params(pkce()[1])))
    with sqlite3.connect(tmp_path / "state.db") as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        dump = "\n".join(repr(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"'))
    assert "Claude" in dump  # the dump is real
    for plain in (secret, access, refresh, request_id):
        assert plain not in dump


async def test_a_confidential_client_gets_its_secret_back_only_when_it_presents_it(tmp_path: Path) -> None:
    async with auth_server(tmp_path) as (server, _):
        await server.register_client(_client(secret="the-real-secret"))
        stranger = await server.get_client("c-1")
        assert stranger is not None
        assert stranger.client_secret not in (None, "the-real-secret")
        reset = presented_client_secrets.set(("a-guess", "the-real-secret"))
        try:
            presenting = await server.get_client("c-1")
        finally:
            presented_client_secrets.reset(reset)
        assert presenting is not None
        assert presenting.client_secret == "the-real-secret"
        await server.register_client(_client(secret=None).model_copy(update={"client_id": "public"}))
        public = await server.get_client("public")
        assert public is not None
        assert public.client_secret is None
