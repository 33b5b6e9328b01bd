"""Real third-party servers from PyPI and npm, aggregated together with ours."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
import pytest
from mcp import Client

from tests.e2e.harness import REPO_ROOT, aggregator_params, fault_entry, write_config

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.anyio, pytest.mark.npm, pytest.mark.slow]

EVERYTHING = REPO_ROOT / "tests" / "node" / "node_modules" / ".bin" / "mcp-server-everything"
VALID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
LONG = "retrieve_the_complete_quarterly_financial_statements_for_every_subsidiary"


def _third_party_servers() -> dict[str, Any]:
    assert EVERYTHING.exists(), "npm test peers are missing: run `make setup` (CI does)"
    return {
        "time": {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone=UTC"]},
        "everything": {"command": str(EVERYTHING), "args": ["stdio"]},
    }


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def test_mcp_server_time_and_server_everything_aggregated_at_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, _third_party_servers())
    async with Client(aggregator_params(config)) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"time__get_current_time", "time__convert_time", "everything__echo", "everything__get-sum"} <= names
        assert all(VALID.match(name) for name in names)
        now = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert not now.is_error, _text(now)
        assert "UTC" in _text(now)
        total = await client.call_tool("everything__get-sum", {"a": 2, "b": 40})
        assert not total.is_error, _text(total)
        assert "42" in _text(total)
        echo = await client.call_tool("everything__echo", {"message": "through the aggregator"})
        assert "through the aggregator" in _text(echo)


def test_tools_json_over_five_servers_gives_valid_unique_names_one_per_downstream_tool(tmp_path: Path) -> None:
    servers = {
        **_third_party_servers(),
        "alpha": fault_entry("--tools", f"search,{LONG}"),
        "beta": fault_entry("--tools", f"search,{LONG}"),
        "unprefixed": fault_entry("--tools", "search", prefix=False),
        "a_server_key_that_is_long_enough_to_push_names_over": fault_entry("--tools", "x.y/z"),
    }
    config = write_config(tmp_path, servers)
    completed = subprocess.run(
        [sys.executable, "-m", "orchestrator", "tools", "--json", "-c", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    rows = json.loads(completed.stdout)["mappings"]
    assert all(set(row) == {"name", "server", "tool", "description"} for row in rows)
    names = [row["name"] for row in rows]
    assert all(VALID.match(name) for name in names), [n for n in names if not VALID.match(n)]
    assert len(names) == len(set(names))
    per_server = {key: {row["tool"] for row in rows if row["server"] == key} for key in servers}
    assert per_server["time"] == {"get_current_time", "convert_time"}
    assert len(per_server["everything"]) >= 10
    for key in ("alpha", "beta"):
        assert {"search", LONG, "echo"} <= per_server[key]
    # One row per downstream tool: 15 built-in fault tools plus each server's extras.
    assert len(per_server["alpha"]) == 17
    assert len(per_server["unprefixed"]) == 16
    assert len(rows) == sum(len(tools) for tools in per_server.values())


async def test_resource_updates_from_a_subscribed_downstream_reach_the_subscriber(tmp_path: Path) -> None:
    servers = _third_party_servers()
    config = write_config(tmp_path, {"everything": servers["everything"]})
    send_update, updates = anyio.create_memory_object_stream[str](10)

    async def on_message(message: object) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            await send_update.send(str(message.params.uri))

    async with Client(aggregator_params(config), mode="legacy", message_handler=on_message) as client:
        uri = str((await client.list_resources()).resources[0].uri)
        await client.subscribe_resource(uri)  # pyright: ignore[reportDeprecated]
        started = await client.call_tool("everything__toggle-subscriber-updates", {})
        assert not started.is_error
        with anyio.fail_after(15):  # the server sends updates every 5 s
            assert await updates.receive() == uri
