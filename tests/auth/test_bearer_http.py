"""Our verifiers behind the SDK's own bearer middleware, over real HTTP on 127.0.0.1.

Shows what a client sees: 401 with a ``resource_metadata`` challenge for any token that is not
valid for this resource, 403 ``insufficient_scope`` for a valid one lacking a required scope,
and that a token in the query string counts for nothing. Nothing but a valid token reaches the
protected app.
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

import anyio
import httpx2
import pytest
import uvicorn
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, BearerAuthBackend, RequireAuthMiddleware
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.responses import JSONResponse
from starlette.routing import Route

from orchestrator.auth import JwtVerifier, StaticTokenVerifier, VerifierChain, principal_of
from orchestrator.config import JwtSpec
from tests.auth.identity_provider import (
    AUDIENCE,
    ISSUER,
    Provider,
    SigningKey,
    claims,
    hmac_signed,
    serve_jwks,
    unsigned,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from starlette.types import Receive, Scope, Send

pytestmark = pytest.mark.anyio

METADATA_URL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
REQUIRED_SCOPES = ["mcp"]


@pytest.fixture(scope="module")
def signer() -> SigningKey:
    return SigningKey.rsa("rsa-1")


@pytest.fixture
def provider(signer: SigningKey) -> Iterator[Provider]:
    yield from serve_jwks(signer)


class ProtectedApp:
    """Stands for the MCP endpoint: counts the requests that get through and names their principal."""

    def __init__(self) -> None:
        self.reached = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.reached += 1
        user = scope["user"]
        assert isinstance(user, AuthenticatedUser)
        principal = principal_of(user.access_token)
        body = {"kind": principal.kind, "client_id": principal.client_id, "grant": principal.grant.as_list()}
        await JSONResponse(body)(scope, receive, send)


@pytest.fixture
async def served(provider: Provider) -> AsyncIterator[tuple[str, ProtectedApp]]:
    spec = JwtSpec(issuer=ISSUER, jwks_url=provider.jwks_url, scopes={"mcp": ("server:incidents",)})
    verifier = VerifierChain(
        StaticTokenVerifier(["static-secret"], {}, resource=AUDIENCE, scopes=REQUIRED_SCOPES),
        JwtVerifier(spec, audience=AUDIENCE),
    )
    protected = ProtectedApp()
    app = Starlette(
        routes=[
            Route("/mcp", endpoint=RequireAuthMiddleware(protected, REQUIRED_SCOPES, AnyHttpUrl(METADATA_URL))),
        ],
        middleware=[
            Middleware(
                AuthenticationMiddleware,
                backend=BearerAuthBackend(verifier, resource_server_url=AnyHttpUrl(AUDIENCE)),
            )
        ],
    )
    # Listening before uvicorn starts: connections wait in the backlog, no need to poll for "started".
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: server.serve(sockets=[sock]))
        with anyio.fail_after(30):
            yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp", protected
        server.should_exit = True


async def get(url: str, token: str | None = None, **params: str) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with httpx2.AsyncClient() as http:
        return await http.get(url, headers=headers, params=params)


def assert_challenge(response: httpx2.Response, status: int, error: str) -> None:
    assert response.status_code == status
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'error="{error}"' in challenge
    assert f'resource_metadata="{METADATA_URL}"' in challenge
    assert response.json()["error"] == error


async def test_a_valid_jwt_in_the_header_reaches_the_app_as_its_principal(
    served: tuple[str, ProtectedApp], signer: SigningKey
) -> None:
    url, protected = served
    response = await get(url, signer.sign(claims()))
    assert response.status_code == 200
    assert response.json() == {"kind": "jwt", "client_id": "chatgpt", "grant": ["server:incidents"]}
    assert protected.reached == 1


async def test_a_jwt_expired_within_the_leeway_still_passes_the_sdks_expiry_check(
    served: tuple[str, ProtectedApp], signer: SigningKey
) -> None:
    url, _ = served
    response = await get(url, signer.sign(claims(exp=int(time.time()) - 10)))
    assert response.status_code == 200


async def test_a_static_token_passes_with_the_required_scopes(served: tuple[str, ProtectedApp]) -> None:
    url, _ = served
    response = await get(url, "static-secret")
    assert response.status_code == 200
    assert response.json() == {"kind": "token", "client_id": "token", "grant": ["*"]}


@pytest.mark.parametrize(
    "case",
    ["no token", "garbage", "wrong audience", "wrong issuer", "expired", "alg none", "hs256 with public key"],
)
async def test_a_missing_or_invalid_token_gets_401_with_the_resource_metadata_challenge(
    served: tuple[str, ProtectedApp], signer: SigningKey, case: str
) -> None:
    url, protected = served
    tokens = {
        "no token": None,
        "garbage": "not-a-jwt",
        "wrong audience": signer.sign(claims(aud="https://other.example/mcp")),
        "wrong issuer": signer.sign(claims(iss="https://evil.example")),
        "expired": signer.sign(claims(exp=int(time.time()) - 120)),
        "alg none": unsigned(claims(), kid=signer.kid),
        "hs256 with public key": hmac_signed(claims(), signer.public_pem(), kid=signer.kid),
    }
    assert_challenge(await get(url, tokens[case]), 401, "invalid_token")
    assert protected.reached == 0


async def test_a_valid_token_lacking_a_required_scope_gets_403_insufficient_scope(
    served: tuple[str, ProtectedApp], signer: SigningKey
) -> None:
    url, protected = served
    assert_challenge(await get(url, signer.sign(claims(scope="openid profile"))), 403, "insufficient_scope")
    assert protected.reached == 0


async def test_a_valid_token_in_the_query_string_only_gets_401(
    served: tuple[str, ProtectedApp], signer: SigningKey
) -> None:
    url, protected = served
    token = signer.sign(claims())
    assert_challenge(await get(url, access_token=token), 401, "invalid_token")
    assert protected.reached == 0
    # The same token in the header is fine: the query string was the only fault.
    assert (await get(url, token)).status_code == 200
