"""Registering the orchestrator as a connector, end to end, as ChatGPT or claude.ai would.

The SDK's own OAuth client (``mcp.client.auth``) discovers the embedded authorization server,
registers itself, and sends the browser to ``/authorize``; a real headless Chromium answers
the consent page as the owner does (signs in, unticks one server, allows); the SDK client
exchanges the code and talks MCP with the token. Then the grant shows in what the client
sees and may call, and revoking the client makes its next request a 401.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata
from pydantic import AnyUrl

from tests.auth.helpers import MemoryStorage
from tests.browser import answer_consent, browser_page
from tests.e2e.harness import REPO_ROOT, aggregator_command, fault_entry, served_process, write_config

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.async_api import Route

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery staple"
CALLBACK = "http://127.0.0.1:9/callback"
"""The client's redirect URI: nothing listens there; the browser's request is caught by the test."""
_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}},
}
_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


def _orchestrator(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args, "-c", str(config)],
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


async def test_a_connector_is_approved_on_the_consent_page_sees_its_grant_and_is_revoked(tmp_path: Path) -> None:
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    config = write_config(
        tmp_path,
        {"files": fault_entry(), "mail": fault_entry()},
        serve={"auth": {"oauth": {"issuer": issuer}}},
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
    )
    _orchestrator(config, "auth", "set-password", "--password-stdin", stdin=PASSWORD + "\n")
    storage = MemoryStorage()
    redirects: anyio.abc.ObjectSendStream[str]
    redirects, answers = anyio.create_memory_object_stream[str](1)

    async with (
        served_process([*aggregator_command(config), "--port", str(port)], r"listening on (\S+)") as (match, _),
        browser_page() as page,
    ):
        url = match.group(1)
        assert url == f"{issuer}/mcp"

        async def catch_callback(route: Route) -> None:
            await redirects.send(route.request.url)
            await route.fulfill(status=200, body="you may close this window")

        await page.route(f"{CALLBACK}*", catch_callback)

        async def consent(authorization_url: str) -> None:
            await answer_consent(page, authorization_url, password=PASSWORD, untick=["All of mail"])

        async def callback() -> AuthorizationCodeResult:
            with anyio.fail_after(30):
                query = parse_qs(urlsplit(await answers.receive()).query)
            return AuthorizationCodeResult(code=query["code"][0], state=query["state"][0], iss=query["iss"][0])

        oauth = OAuthClientProvider(
            server_url=url,
            client_metadata=OAuthClientMetadata(
                client_name="Test connector",
                redirect_uris=[AnyUrl(CALLBACK)],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
            ),
            storage=storage,
            redirect_handler=consent,
            callback_handler=callback,
        )
        with anyio.fail_after(90):
            async with (
                httpx2.AsyncClient(auth=oauth) as http,
                Client(streamable_http_client(url, http_client=http)) as client,
            ):
                names = {tool.name for tool in (await client.list_tools()).tools}
                assert "files__echo" in names
                assert not any(name.startswith("mail__") for name in names)
                with pytest.raises(MCPError, match="unknown tool 'mail__echo'"):
                    await client.call_tool("mail__echo", {"text": "hi"})
                granted = await client.call_tool("files__echo", {"text": "hi"})
                assert not granted.is_error

        assert storage.client is not None
        assert storage.tokens is not None
        client_id = storage.client.client_id
        assert client_id is not None
        listed = json.loads(_orchestrator(config, "auth", "clients", "--json").stdout)
        [entry] = [c for c in listed if c["client_id"] == client_id]
        assert entry["grant"] == ["server:files"]

        bearer = {**_HEADERS, "Authorization": f"Bearer {storage.tokens.access_token}"}
        async with httpx2.AsyncClient() as raw:
            assert (await raw.post(url, json=_INIT, headers=bearer)).status_code == 200
            _orchestrator(config, "auth", "revoke", client_id)
            refused = await raw.post(url, json=_INIT, headers=bearer)
            assert refused.status_code == 401
            challenge = refused.headers["www-authenticate"]
            assert f'resource_metadata="{issuer}/.well-known/oauth-protected-resource/mcp"' in challenge
            assert 'scope="mcp"' in challenge
            metadata = (await raw.get(f"{issuer}/.well-known/oauth-protected-resource/mcp")).json()
            assert metadata["authorization_servers"] == [issuer]
            assert metadata["resource"] == url

    records: list[dict[str, Any]] = [
        json.loads(line) for line in _orchestrator(config, "audit", "--json").stdout.splitlines() if line
    ]
    calls = [(r["client_id"], r["tool"], r["outcome"]) for r in records]
    assert (client_id, "files__echo", "ok") in calls
    assert not any(r["tool"] == "mail__echo" for r in records)  # refused as unknown: no call happened
