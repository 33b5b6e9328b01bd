"""Search mode end to end: the SDK client finds tools with search_tools and calls them with call_tool.

Real third-party servers (``mcp-server-time``, ``mcp-server-git``) and the fault server behind
``orchestrator serve``, over stdio and over HTTP with a token granted one server only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import mcp_types as types
import pytest
from mcp import Client, MCPError

from tests.e2e.harness import aggregator_params, bearer_client, fault_entry, http_aggregator, write_config
from tests.interop._peers import require_module

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

TIME_TOKEN = "time-token-canary-41a"
ADMIN_TOKEN = "admin-token-canary-0d2"


def _repository(path: Path) -> Path:
    path.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.name", "T"], ["config", "user.email", "t@e.invalid"]):
        subprocess.run(["git", "-C", str(path), *args], check=True, timeout=30)
    return path


def _servers(tmp_path: Path) -> dict[str, Any]:
    require_module("mcp_server_time", "mcp-server-time")
    require_module("mcp_server_git", "mcp-server-git")
    repo = _repository(tmp_path / "repo")
    return {
        "time": {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone=UTC"]},
        "git": {"command": sys.executable, "args": ["-m", "mcp_server_git", "--repository", str(repo)]},
        "files": fault_entry(),
    }


def _found(result: types.CallToolResult) -> list[dict[str, Any]]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    tools: list[dict[str, Any]] = result.structured_content["tools"]
    # The text says the same as the structured content, for clients that show only text.
    assert isinstance(result.content[0], types.TextContent)
    if tools:
        assert json.loads(result.content[0].text) == result.structured_content
    else:
        assert result.content[0].text.startswith("No tool matches")
    return tools


def _text(result: types.CallToolResult) -> str:
    return "\n".join(part.text for part in result.content if isinstance(part, types.TextContent))


async def test_search_then_call_over_stdio(tmp_path: Path) -> None:
    config = write_config(tmp_path, _servers(tmp_path), catalog={"mode": "search", "always": ["files__echo"]})
    async with Client(aggregator_params(config)) as client:
        assert "search_tools" in (client.instructions or "")

        listed = [tool.name for tool in (await client.list_tools()).tools]
        assert listed == ["search_tools", "call_tool", "files__echo"]

        found = _found(await client.call_tool("search_tools", {"query": "what time is it in Tokyo right now"}))
        names = [tool["name"] for tool in found]
        assert "time__get_current_time" in names
        assert len(names) <= 5
        current_time = next(tool for tool in found if tool["name"] == "time__get_current_time")
        assert "timezone" in current_time["inputSchema"]["properties"]  # the whole schema, to call it with

        called = await client.call_tool(
            "call_tool", {"name": "time__get_current_time", "arguments": {"timezone": "Asia/Tokyo"}}
        )
        assert not called.is_error, called.content
        assert "Asia/Tokyo" in _text(called)

        # A found tool may be called by its own name too: search mode changes the list, not the routes.
        direct = await client.call_tool("files__echo", {"text": "hello"})
        assert not direct.is_error

        limited = _found(await client.call_tool("search_tools", {"query": "git", "limit": 2}))
        assert len(limited) == 2
        assert all(tool["name"].startswith("git__") for tool in limited)


async def test_mistakes_come_back_as_tool_errors_the_model_can_read(tmp_path: Path) -> None:
    config = write_config(tmp_path, _servers(tmp_path), catalog={"mode": "search"})
    async with Client(aggregator_params(config)) as client:
        unknown = await client.call_tool("call_tool", {"name": "time__get_curent_time", "arguments": {}})
        assert unknown.is_error
        assert "time__get_current_time" in _text(unknown)  # did you mean

        wrong_arguments = await client.call_tool(
            "call_tool", {"name": "time__convert_time", "arguments": {"source_timezone": 3}}
        )
        assert wrong_arguments.is_error
        assert "time__convert_time" in _text(wrong_arguments)

        for arguments in ({"limit": 3}, {"query": "  \n "}, {"query": "time", "limit": 0}):
            refused = await client.call_tool("search_tools", arguments)
            assert refused.is_error, arguments
            assert "search_tools" in _text(refused)

        nested = await client.call_tool("call_tool", {"name": "search_tools", "arguments": {"query": "x"}})
        assert nested.is_error

        # A plain tools/call of an unknown name is still the protocol error it always was.
        with pytest.raises(MCPError):
            await client.call_tool("time__nothing", {})


async def test_auto_mode_searches_only_over_its_budget(tmp_path: Path) -> None:
    servers = _servers(tmp_path)
    small = write_config(tmp_path, servers, catalog={"mode": "auto", "budget": 100_000})
    async with Client(aggregator_params(small)) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "time__get_current_time" in names
        assert "search_tools" not in names
    tight = write_config(tmp_path, servers, catalog={"mode": "auto", "budget": 200})
    async with Client(aggregator_params(tight)) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == {"search_tools", "call_tool"}


async def test_search_and_calls_keep_to_the_callers_grant(tmp_path: Path) -> None:
    auth = {"tokens": {"time-only": {"env": "TIME_TOKEN", "grant": ["server:time"]}}}
    config = write_config(
        tmp_path,
        _servers(tmp_path),
        catalog={"mode": "search", "always": ["git__git_status", "time__convert_time"]},
        serve={"auth": auth},
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
    )
    env = {"TIME_TOKEN": TIME_TOKEN, "ORCHESTRATOR_TOKENS": ADMIN_TOKEN}
    async with http_aggregator(config, env=env) as url:
        async with bearer_client(url, TIME_TOKEN) as limited:
            listed = [tool.name for tool in (await limited.list_tools()).tools]
            assert listed == ["search_tools", "call_tool", "time__convert_time"]  # git's 'always' tool: not granted

            for query in ("show me the git status of my repository", "commit my changes", "echo hello"):
                found = _found(await limited.call_tool("search_tools", {"query": query, "limit": 50}))
                assert all(tool["name"].startswith("time__") for tool in found), (query, found)

            refused = await limited.call_tool("call_tool", {"name": "git__git_status", "arguments": {}})
            assert refused.is_error
            text = _text(refused)
            assert "unknown tool 'git__git_status'" in text
            assert "git__" not in text.replace("'git__git_status'", "")  # no suggestion of other git tools

        async with bearer_client(url, ADMIN_TOKEN) as admin:
            found = _found(await admin.call_tool("search_tools", {"query": "show me the git status of my repository"}))
            assert "git__git_status" in [tool["name"] for tool in found]
            arguments = {"repo_path": str(tmp_path / "repo")}
            status = await admin.call_tool("call_tool", {"name": "git__git_status", "arguments": arguments})
            assert not status.is_error, status.content
