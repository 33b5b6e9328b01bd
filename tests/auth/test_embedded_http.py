"""The embedded authorization server over real HTTP (uvicorn on 127.0.0.1, httpx2 as the client).

Metadata, dynamic registration, /authorize to the consent page, approval, /token with PKCE,
single-use codes, refresh rotation and replay, /revoke, and Client ID Metadata Documents
fetched from this same server on 127.0.0.1 through the egress guard.
"""

from __future__ import annotations

import socket
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from orchestrator._egress import EgressError, EgressPolicy, fetch_guarded
from orchestrator.auth import Grant
from orchestrator.auth._embedded_routes import embedded_auth_routes
from tests.auth.helpers import RESOURCE, auth_server, pkce

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator
    from pathlib import Path

    from starlette.requests import Request

    from orchestrator.auth._embedded import EmbeddedAuthServer

pytestmark = pytest.mark.anyio

CALLBACK = "http://127.0.0.1:9/callback"


class Site:
    """The running server: its base URL, the authorization server, and an HTTP client."""

    def __init__(self, base: str, server: EmbeddedAuthServer, http: httpx2.AsyncClient) -> None:
        self.base, self.server, self.http = base, server, http

    async def authorize(self, client_id: str, challenge: str, **extra: str) -> httpx2.Response:
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CALLBACK,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "xyz",
            "resource": RESOURCE,
            **extra,
        }
        return await self.http.get(f"{self.base}/authorize", params=query)

    async def code_for(self, client_id: str, grant: list[str]) -> tuple[str, str]:
        """Authorize, approve on the owner's behalf; the code and its verifier."""
        verifier, challenge = pkce()
        response = await self.authorize(client_id, challenge)
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.startswith(f"{self.base}/consent?request=")
        request_id = parse_qs(urlsplit(location).query)["request"][0]
        answer = parse_qs(urlsplit(await self.server.approve(request_id, Grant.of(grant))).query)
        assert (answer["state"], answer["iss"]) == (["xyz"], [self.base])
        return answer["code"][0], verifier

    async def token(self, **form: str) -> httpx2.Response:
        return await self.http.post(f"{self.base}/token", data=form)


def _document(base: str, name: str = "client.json") -> dict[str, Any]:
    return {
        "client_id": f"{base}/{name}",
        "client_name": "Document client",
        "redirect_uris": [CALLBACK],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }


def _document_routes(base: str, slow: anyio.Event) -> list[Route]:
    async def document(_: Request) -> Response:
        return JSONResponse(_document(base))

    async def impostor(_: Request) -> Response:
        # Served at /someone-else.json, claiming to be /client.json.
        return JSONResponse(_document(base))

    async def redirecting(_: Request) -> Response:
        return RedirectResponse(f"{base}/client.json", status_code=302)

    async def oversized(_: Request) -> Response:
        return JSONResponse({**_document(base, "big.json"), "padding": "x" * 70_000})

    async def chunked(_: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(70):
                yield b" " * 1024

        return StreamingResponse(chunks(), media_type="application/json")

    async def hanging(_: Request) -> Response:
        await slow.wait()
        return JSONResponse({})

    return [
        Route("/client.json", document),
        Route("/someone-else.json", impostor),
        Route("/redirect.json", redirecting),
        Route("/big.json", oversized),
        Route("/chunked.json", chunked),
        Route("/slow.json", hanging),
    ]


@asynccontextmanager
async def running(tmp_path: Path, **spec: Any) -> AsyncGenerator[Site, None]:
    # Listening before uvicorn starts: connections wait in the backlog, no need to poll for "started".
    sock = socket.create_server(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    slow = anyio.Event()
    async with auth_server(tmp_path, base, **spec) as (server, _):
        app = Starlette(routes=[*embedded_auth_routes(server), *_document_routes(base, slow)])
        web = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: web.serve(sockets=[sock]))
            try:
                with anyio.fail_after(60):
                    async with httpx2.AsyncClient(follow_redirects=False) as http:
                        yield Site(base, server, http)
            finally:
                slow.set()
                web.should_exit = True


async def _register(site: Site, method: str = "client_secret_post") -> dict[str, Any]:
    response = await site.http.post(
        f"{site.base}/register",
        json={
            "redirect_uris": [CALLBACK],
            "client_name": "Test client",
            "token_endpoint_auth_method": method,
            "grant_types": ["authorization_code", "refresh_token"],
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_metadata_advertises_s256_one_scope_metadata_documents_and_the_issuer_parameter(tmp_path: Path) -> None:
    async with running(tmp_path) as site:
        metadata = (await site.http.get(f"{site.base}/.well-known/oauth-authorization-server")).json()
    assert metadata["issuer"] == site.base
    assert metadata["authorization_endpoint"] == f"{site.base}/authorize"
    assert metadata["token_endpoint"] == f"{site.base}/token"
    assert metadata["registration_endpoint"] == f"{site.base}/register"
    assert metadata["revocation_endpoint"] == f"{site.base}/revoke"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["scopes_supported"] == ["mcp"]
    assert "none" in metadata["token_endpoint_auth_methods_supported"]
    assert metadata["client_id_metadata_document_supported"] is True
    assert metadata["authorization_response_iss_parameter_supported"] is True


async def test_register_authorize_approve_and_exchange_with_pkce_once(tmp_path: Path) -> None:
    async with running(tmp_path) as site:
        client = await _register(site)
        assert client["scope"] == "mcp"
        code, verifier = await site.code_for(client["client_id"], ["server:a"])
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        }
        wrong_secret = await site.token(**{**form, "client_secret": "not-the-secret"}, code_verifier=verifier)
        assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "invalid_client")
        no_secret = {key: value for key, value in form.items() if key != "client_secret"}
        assert (await site.token(**no_secret, code_verifier=verifier)).status_code == 401
        wrong = await site.token(**form, code_verifier=pkce()[0])
        assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")

        issued = await site.token(**form, code_verifier=verifier)
        assert issued.status_code == 200, issued.text
        tokens = issued.json()
        assert (tokens["token_type"], tokens["scope"], tokens["expires_in"]) == ("Bearer", "mcp", 3600)
        token = await site.server.load_access_token(tokens["access_token"])
        assert token is not None
        assert (token.grant, token.resource, token.client_id) == (("server:a",), RESOURCE, client["client_id"])

        again = await site.token(**form, code_verifier=verifier)
        assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


async def test_a_basic_auth_client_authenticates_with_its_header(tmp_path: Path) -> None:
    async with running(tmp_path) as site:
        client = await _register(site, "client_secret_basic")
        code, verifier = await site.code_for(client["client_id"], ["*"])
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": client["client_id"],
            "code_verifier": verifier,
        }
        # Basic clients must not get in with the secret in the form instead.
        posted = await site.http.post(f"{site.base}/token", data={**form, "client_secret": client["client_secret"]})
        assert posted.status_code == 401
        basic = await site.http.post(
            f"{site.base}/token", data=form, auth=httpx2.BasicAuth(client["client_id"], client["client_secret"])
        )
        assert basic.status_code == 200, basic.text


async def test_refresh_tokens_rotate_and_a_replay_revokes_the_family(tmp_path: Path) -> None:
    async with running(tmp_path) as site:
        client = await _register(site, "none")
        assert "client_secret" not in client
        code, verifier = await site.code_for(client["client_id"], ["*"])
        first = (
            await site.token(
                grant_type="authorization_code",
                code=code,
                redirect_uri=CALLBACK,
                client_id=client["client_id"],
                code_verifier=verifier,
            )
        ).json()

        def refresh(token: str) -> dict[str, str]:
            return {"grant_type": "refresh_token", "refresh_token": token, "client_id": client["client_id"]}

        rotated = await site.token(**refresh(first["refresh_token"]))
        assert rotated.status_code == 200, rotated.text
        second = rotated.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert await site.server.load_access_token(second["access_token"]) is not None

        replay = await site.token(**refresh(first["refresh_token"]))
        assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
        assert await site.server.load_access_token(second["access_token"]) is None
        after = await site.token(**refresh(second["refresh_token"]))
        assert (after.status_code, after.json()["error"]) == (400, "invalid_grant")


async def test_revocation_ends_the_access_token_and_its_refresh_token(tmp_path: Path) -> None:
    async with running(tmp_path) as site:
        client = await _register(site)
        code, verifier = await site.code_for(client["client_id"], ["*"])
        credentials = {"client_id": client["client_id"], "client_secret": client["client_secret"]}
        tokens = (
            await site.token(
                grant_type="authorization_code",
                code=code,
                redirect_uri=CALLBACK,
                code_verifier=verifier,
                **credentials,
            )
        ).json()
        assert await site.server.load_access_token(tokens["access_token"]) is not None
        revoked = await site.http.post(f"{site.base}/revoke", data={"token": tokens["access_token"], **credentials})
        assert revoked.status_code == 200
        assert await site.server.load_access_token(tokens["access_token"]) is None
        refreshed = await site.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"], **credentials)
        assert refreshed.status_code == 400


async def test_mismatched_redirects_plain_pkce_and_other_resources_are_refused(tmp_path: Path) -> None:
    async with running(tmp_path) as site:
        client = await _register(site)
        _, challenge = pkce()
        elsewhere = await site.authorize(client["client_id"], challenge, redirect_uri="http://127.0.0.1:9/callback/")
        assert elsewhere.status_code == 400
        assert "location" not in elsewhere.headers
        plain = await site.authorize(client["client_id"], challenge, code_challenge_method="plain")
        assert parse_qs(urlsplit(plain.headers["location"]).query)["error"] == ["invalid_request"]
        other = await site.authorize(client["client_id"], challenge, resource="https://elsewhere.example/mcp")
        assert parse_qs(urlsplit(other.headers["location"]).query)["error"] == ["invalid_target"]

        # A code's redirect URI must be repeated exactly at the token endpoint.
        code, verifier = await site.code_for(client["client_id"], ["*"])
        mismatch = await site.token(
            grant_type="authorization_code",
            code=code,
            redirect_uri="http://127.0.0.1:9/other",
            client_id=client["client_id"],
            client_secret=client["client_secret"],
            code_verifier=verifier,
        )
        assert (mismatch.status_code, mismatch.json()["error"]) == (400, "invalid_request")


async def test_a_client_metadata_document_on_loopback_is_used_when_private_addresses_are_allowed(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, allow_private_client_metadata=True) as site:
        client_id = f"{site.base}/client.json"
        code, verifier = await site.code_for(client_id, ["server:a"])
        issued = await site.token(
            grant_type="authorization_code",
            code=code,
            redirect_uri=CALLBACK,
            client_id=client_id,
            code_verifier=verifier,
        )
        assert issued.status_code == 200, issued.text
        token = await site.server.load_access_token(issued.json()["access_token"])
        assert token is not None
        assert (token.client_id, token.grant) == (client_id, ("server:a",))

        for refused in ("someone-else.json", "redirect.json", "big.json", "chunked.json", "missing.json"):
            assert await site.server.get_client(f"{site.base}/{refused}") is None, refused


async def test_a_client_metadata_document_on_loopback_is_refused_by_default(tmp_path: Path) -> None:
    async with running(tmp_path) as site:
        client_id = f"{site.base}/client.json"
        assert await site.server.get_client(client_id) is None
        response = await site.authorize(client_id, pkce()[1])
        assert response.status_code == 400
        assert "not found" in response.json()["error_description"]


async def test_the_egress_guard_names_why_it_refused(tmp_path: Path) -> None:
    async def private_dns(host: str, port: int) -> list[str]:
        return {"intranet.example": ["10.0.0.7"], "mixed.example": ["93.184.215.14", "169.254.169.254"]}[host]

    async def no_dns(host: str, port: int) -> list[str]:
        raise OSError(f"{host}: Name or service not known")

    strict = EgressPolicy(allow_http=True)
    with pytest.raises(EgressError, match="does not resolve"):
        await fetch_guarded("http://nowhere.example/client.json", strict, resolve=no_dns)
    with pytest.raises(EgressError, match=r"non-public address \(10\.0\.0\.7\)"):
        await fetch_guarded("http://intranet.example/client.json", strict, resolve=private_dns)
    with pytest.raises(EgressError, match=r"non-public address \(169\.254\.169\.254\)"):
        await fetch_guarded("http://mixed.example/client.json", strict, resolve=private_dns)
    with pytest.raises(EgressError, match="non-public"):
        await fetch_guarded("http://169.254.169.254/latest/meta-data", strict)
    with pytest.raises(EgressError, match="only https"):
        await fetch_guarded("http://example.com/client.json", EgressPolicy())
    with pytest.raises(EgressError, match="credentials"):
        await fetch_guarded("https://user:pw@example.com/client.json", EgressPolicy())

    async with running(tmp_path, allow_private_client_metadata=True) as site:
        loopback = EgressPolicy(allow_http=True, allow_private=True)
        assert b"Document client" in await fetch_guarded(f"{site.base}/client.json", loopback)
        with pytest.raises(EgressError, match="redirect"):
            await fetch_guarded(f"{site.base}/redirect.json", loopback)
        with pytest.raises(EgressError, match="larger than 65536 bytes"):
            await fetch_guarded(f"{site.base}/big.json", loopback)
        with pytest.raises(EgressError, match="larger than 65536 bytes"):
            await fetch_guarded(f"{site.base}/chunked.json", loopback)
        impatient = EgressPolicy(allow_http=True, allow_private=True, timeout=0.5)
        with pytest.raises(EgressError, match=r"longer than 0\.5s"):
            await fetch_guarded(f"{site.base}/slow.json", impatient)
        # The same server's name resolving to a private address is refused when that is not allowed.
        with pytest.raises(EgressError, match="non-public address"):
            await fetch_guarded(f"{site.base}/client.json", EgressPolicy(allow_http=True))
