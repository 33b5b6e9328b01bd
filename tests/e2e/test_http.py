"""Serving over streamable HTTP: loopback by default, Origin/Host checks, bearer tokens."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.e2e.harness import REPO_ROOT, fault_entry, http_aggregator, write_config

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


async def test_bearer_token_is_required_when_configured_and_never_forwarded(tmp_path: Path) -> None:
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
