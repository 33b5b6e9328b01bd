"""The SDK's own OAuth client completes the flow against the embedded server, over real HTTP.

An MCP server (the SDK's ``MCPServer``) guards ``/mcp`` with our server as its token verifier
and mounts ``embedded_auth_routes``; ``mcp.client.auth.OAuthClientProvider`` discovers it
(RFC 9728, then RFC 8414), registers, sends the browser to /authorize, gets the code back
after the owner approves, exchanges it and calls a tool. Nothing custom beyond answering
the consent page, which is the owner's part.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata
from pydantic import AnyUrl

from orchestrator.auth import Grant
from orchestrator.auth._embedded import EmbeddedAuthServer
from orchestrator.auth._embedded_routes import embedded_auth_routes
from orchestrator.config import OAuthSpec, StateSpec
from orchestrator.store import list_clients, open_store, state_url
from tests.auth.helpers import CATALOGUE, MemoryStorage

if TYPE_CHECKING:
    from pathlib import Path

    from mcp_types import CallToolResult

pytestmark = pytest.mark.anyio

CALLBACK = "http://127.0.0.1:9/callback"


async def test_the_sdk_oauth_client_registers_is_approved_and_calls_a_tool(tmp_path: Path) -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    resource = f"{base}/mcp"
    async with open_store(state_url(StateSpec(url=f"sqlite:///{tmp_path / 'state.db'}"), {})) as store:
        server = EmbeddedAuthServer(store, OAuthSpec(issuer=base), resource, lambda: CATALOGUE)
        mcp = MCPServer(
            "guarded",
            token_verifier=server,
            # From strings, so the issuer keeps its exact form (no trailing slash added): the
            # protected-resource metadata must name the issuer exactly as our metadata does.
            auth=AuthSettings.model_validate(
                {
                    "issuer_url": server.issuer,
                    "resource_server_url": resource,
                    "required_scopes": ["mcp"],
                    "validate_token_resource": True,
                }
            ),
        )

        @mcp.tool()
        def echo(text: str) -> str:
            """Say it back."""
            return text

        app = mcp.streamable_http_app()
        app.router.routes.extend(embedded_auth_routes(server))

        answer: dict[str, str] = {}

        async def consent(authorization_url: str) -> None:
            # The browser's part: open the authorize URL, land on the consent page, the owner approves.
            async with httpx2.AsyncClient(follow_redirects=False) as browser:
                response = await browser.get(authorization_url)
            assert response.status_code == 302, response.text
            request_id = parse_qs(urlsplit(response.headers["location"]).query)["request"][0]
            redirect = await server.approve(request_id, Grant.of(["server:a"]))
            answer.update({key: values[0] for key, values in parse_qs(urlsplit(redirect).query).items()})

        async def callback() -> AuthorizationCodeResult:
            return AuthorizationCodeResult(code=answer["code"], state=answer.get("state"), iss=answer.get("iss"))

        oauth = OAuthClientProvider(
            server_url=resource,
            client_metadata=OAuthClientMetadata(
                client_name="SDK client",
                redirect_uris=[AnyUrl(CALLBACK)],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
            ),
            storage=MemoryStorage(),
            redirect_handler=consent,
            callback_handler=callback,
        )
        results: list[CallToolResult] = []
        web = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: web.serve(sockets=[sock]))
            try:
                with anyio.fail_after(60):
                    async with (
                        httpx2.AsyncClient(auth=oauth) as http,
                        Client(streamable_http_client(resource, http_client=http)) as client,
                    ):
                        results.append(await client.call_tool("echo", {"text": "hello"}))
            finally:
                web.should_exit = True
        [registered] = await list_clients(store.engine)
    [result] = results
    assert not result.is_error
    assert "hello" in str(result.content)
    assert answer["iss"] == base
    assert (registered.registration["client_name"], registered.grant) == ("SDK client", ("server:a",))
    # A confidential client: its secret went through the hashed comparison at /token.
    assert registered.registration["token_endpoint_auth_method"] == "client_secret_post"
    assert registered.secret_hash is not None
