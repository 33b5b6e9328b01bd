"""Serving over streamable HTTP: loopback by default, Origin/Host checks, bearer tokens."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any, cast

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.e2e.harness import REPO_ROOT, fault_entry, http_aggregator, http_fault_server, write_config

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "0"},
    },
}
_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def test_http_clients_see_the_merged_catalogue_and_can_call_tools(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"one": fault_entry(), "two": fault_entry()})
    async with http_aggregator(config) as url, Client(url) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"one__echo", "two__echo"} <= names
        result = await client.call_tool("two__add", {"a": 1, "b": 2})
        assert result.structured_content == {"sum": 3}


async def test_http_legacy_era_clients_are_served_too(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"one": fault_entry()})
    async with http_aggregator(config) as url, Client(url, mode="legacy") as client:
        assert client.protocol_version == "2025-11-25"
        result = await client.call_tool("one__echo", {"text": "hi"})
        assert not result.is_error


async def test_foreign_origin_is_rejected_with_403_and_loopback_origin_accepted(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"one": fault_entry()})
    async with http_aggregator(config) as url, httpx2.AsyncClient() as http:
        evil = await http.post(url, json=_INIT, headers={**_HEADERS, "Origin": "http://evil.example.com"})
        assert evil.status_code == 403
        rebound = await http.post(url, json=_INIT, headers={**_HEADERS, "Host": "evil.example.com"})
        assert rebound.status_code == 403
        local = await http.post(url, json=_INIT, headers={**_HEADERS, "Origin": "http://localhost:3000"})
        assert local.status_code == 200
        no_origin = await http.post(url, json=_INIT, headers=_HEADERS)
        assert no_origin.status_code == 200


def test_non_loopback_bind_without_tokens_is_refused_before_anything_starts(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"one": fault_entry()})
    completed = subprocess.run(
        [sys.executable, "-m", "orchestrator", "serve", "-c", str(config), "--transport", "http", "--host", "0.0.0.0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 2
    assert "refusing to listen on non-loopback address" in completed.stderr
    assert "ORCHESTRATOR_TOKENS" in completed.stderr


async def test_bearer_token_is_required_when_configured_and_never_reaches_a_stdio_child(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"one": fault_entry()})
    token = "CANARY-token-4f1d"
    async with http_aggregator(config, env={"ORCHESTRATOR_TOKENS": f"other,{token}"}) as url:
        async with httpx2.AsyncClient() as http:
            missing = await http.post(url, json=_INIT, headers=_HEADERS)
            assert missing.status_code == 401
            assert missing.headers["www-authenticate"].startswith("Bearer")
            wrong = await http.post(url, json=_INIT, headers={**_HEADERS, "Authorization": "Bearer nope"})
            assert wrong.status_code == 401
        async with (
            create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http_client,
            Client(streamable_http_client(url, http_client=http_client)) as client,
        ):
            result = await client.call_tool("one__env", {"name": "AUTHORIZATION"})
            assert not result.is_error
            assert result.structured_content is not None
            assert result.structured_content.get("set") is False


async def test_http_downstreams_get_their_own_headers_and_never_the_inbound_authorization(tmp_path: Path) -> None:
    inbound_token = "INBOUND-canary-77e2"
    own = "Bearer downstream-canary-3b9c"
    seen: dict[str, dict[str, dict[str, Any]]] = {}
    async with (
        http_fault_server("--headers-tool") as (keyed_url, _keyed),
        http_fault_server("--headers-tool") as (bare_url, _bare),
        http_fault_server("--headers-tool", "--transport", "sse") as (sse_base_url, _sse),
    ):
        keyed_headers = {"Authorization": "${DOWNSTREAM_CANARY}", "X-Api-Key": "key-${DOWNSTREAM_CANARY}"}
        servers = {
            "keyed": {"url": keyed_url, "headers": keyed_headers},
            "bare": {"url": bare_url},
            "oldsse": {"type": "sse", "url": sse_base_url.removesuffix("/mcp") + "/sse", "headers": keyed_headers},
        }
        config = write_config(tmp_path, servers)
        env = {"ORCHESTRATOR_TOKENS": inbound_token, "DOWNSTREAM_CANARY": own}
        async with http_aggregator(config, env=env) as url:
            for mode in ("auto", "legacy"):  # both upstream eras
                async with (
                    create_mcp_http_client(headers={"Authorization": f"Bearer {inbound_token}"}) as http_client,
                    Client(streamable_http_client(url, http_client=http_client), mode=mode) as client,
                ):
                    seen[mode] = {name: await _headers_seen_by(client, name) for name in servers}
    for mode, received in seen.items():
        for name, headers in received.items():
            assert inbound_token not in json.dumps(headers), (mode, name, headers)
        for name in ("keyed", "oldsse"):
            assert received[name]["authorization"] == own, (mode, name)
            assert received[name]["x-api-key"] == f"key-{own}", (mode, name)
        assert "authorization" not in received["bare"], (mode, received["bare"])
        assert "x-api-key" not in received["bare"], (mode, received["bare"])
    assert set(seen) == {"auto", "legacy"}


async def _headers_seen_by(client: Client, server: str) -> dict[str, Any]:
    """The HTTP request headers downstream ``server`` received for a call through the aggregator."""
    result = await client.call_tool(f"{server}__headers", {})
    assert not result.is_error, result.content
    content: object = result.structured_content
    assert isinstance(content, dict)
    return cast("dict[str, Any]", content)
