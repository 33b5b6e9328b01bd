"""Five real third-party servers aggregated at once, and a composite tool chaining three.

``@modelcontextprotocol/server-everything``, ``server-memory`` and ``server-filesystem``
(npm, handshake era) and ``mcp-server-time`` and ``mcp-server-git`` (PyPI, 2026-07-28) behind
one ``orchestrator serve``: every tool is listed under a name every LLM provider accepts,
one call to each server succeeds, and ``tests/interop/data/five/stamp_commit.yaml`` chains
time -> filesystem -> git in one call.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mcp_types as types
import pytest
from mcp import Client

from tests.e2e.harness import http_aggregator, write_config
from tests.interop._peers import DATA, EVERYTHING, FILESYSTEM, MEMORY, VALID_NAME, require, require_module

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

pytestmark = [pytest.mark.anyio, pytest.mark.npm, pytest.mark.slow]

SERVERS = ("everything", "memory", "filesystem", "time", "git")
SOME_TOOLS = {
    "everything": {"echo", "get-sum"},
    "memory": {"create_entities", "read_graph", "search_nodes"},
    "filesystem": {"write_file", "read_text_file", "list_directory"},
    "time": {"get_current_time", "convert_time"},
    "git": {"git_status", "git_add", "git_commit", "git_log"},
}


@dataclass(frozen=True)
class Setup:
    url: str
    repo: Path
    memory_file: Path


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30, check=True)
    return done.stdout


def _init_repo(repo: Path) -> None:
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.name", "Interop Test")
    _git(repo, "config", "user.email", "interop@example.invalid")
    (repo / "README.md").write_text("interop test repository\n", encoding="utf-8")
    _git(repo, "add", "README.md")
    _git(repo, "commit", "-q", "-m", "Initial commit")


@pytest.fixture(scope="module")
async def setup(tmp_path_factory: pytest.TempPathFactory) -> AsyncGenerator[Setup, None]:
    require(EVERYTHING, MEMORY, FILESYSTEM)
    require_module("mcp_server_time", "mcp-server-time")
    require_module("mcp_server_git", "mcp-server-git")
    work = tmp_path_factory.mktemp("five")
    repo = work / "repo"
    _init_repo(repo)
    memory_file = work / "memory.jsonl"
    servers: dict[str, Any] = {
        "everything": {"command": str(EVERYTHING), "args": ["stdio"]},
        "memory": {"command": str(MEMORY), "env": {"MEMORY_FILE_PATH": str(memory_file)}},
        # The filesystem server's allowed directory is the repository, so it can write there.
        "filesystem": {"command": str(FILESYSTEM), "args": [str(repo)]},
        "time": {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone=UTC"]},
        "git": {"command": sys.executable, "args": ["-m", "mcp_server_git", "--repository", str(repo)]},
    }
    config = write_config(work, servers, workflows=[str(DATA / "five")])
    async with http_aggregator(config) as url:
        yield Setup(url, repo, memory_file)


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


def _structured(result: types.CallToolResult) -> dict[str, Any]:
    structured = result.structured_content
    assert structured is not None, _text(result)
    return structured


async def _call(client: Client, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, f"{name}: {_text(result)}"
    return result


async def test_every_tool_of_five_servers_is_listed_under_a_valid_name(setup: Setup) -> None:
    async with Client(setup.url) as client:
        tools = (await client.list_tools()).tools
    names = [tool.name for tool in tools]
    assert len(names) == len(set(names))
    invalid = [name for name in names if not VALID_NAME.match(name)]
    assert not invalid
    for server, some in SOME_TOOLS.items():
        listed = {name.removeprefix(f"{server}__") for name in names if name.startswith(f"{server}__")}
        assert some <= listed, (server, sorted(listed))
    assert "stamp_commit" in names
    per_server = {server: sum(name.startswith(f"{server}__") for name in names) for server in SERVERS}
    # Every listed tool belongs to one of the five servers, or is the composite.
    assert sum(per_server.values()) + 1 == len(names), per_server


async def test_one_call_to_each_of_the_five_servers_succeeds(setup: Setup) -> None:
    async with Client(setup.url) as client:
        echo = await _call(client, "everything__echo", {"message": "five at once"})
        assert _text(echo) == "Echo: five at once"

        entity = {"name": "interop", "entityType": "test", "observations": ["five servers"]}
        created = await _call(client, "memory__create_entities", {"entities": [entity]})
        assert created.structured_content == {"entities": [entity]}

        note = setup.repo / "notes.txt"
        await _call(client, "filesystem__write_file", {"path": str(note), "content": "written through the aggregator"})
        assert note.read_text(encoding="utf-8") == "written through the aggregator"

        now = await _call(client, "time__get_current_time", {"timezone": "UTC"})
        assert _structured(now)["timezone"] == "UTC"

        status = await _call(client, "git__git_status", {"repo_path": str(setup.repo)})
        assert "notes.txt" in _text(status)  # untracked, written by the filesystem server
    assert "interop" in setup.memory_file.read_text(encoding="utf-8")


async def test_a_composite_chains_time_filesystem_and_git(setup: Setup) -> None:
    async with Client(setup.url) as client:
        result = await _call(client, "stamp_commit", {"repo": str(setup.repo)})
    output = _structured(result)
    stamped_at = output["stamped_at"]
    assert isinstance(stamped_at, str)
    assert stamped_at.endswith("+00:00")
    assert (setup.repo / "STAMP.txt").read_text(encoding="utf-8") == f"stamped at {stamped_at}"
    head = _git(setup.repo, "log", "-1", "--format=%s", "--name-only")
    assert head.split() == ["Stamp", stamped_at, "STAMP.txt"]
    assert "committed" in str(output["commit"]).lower()
