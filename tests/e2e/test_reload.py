"""Live reload: editing the config while serving adds, removes and restarts servers, nothing else.

A connected client sees each good edit as ``list_changed``. A server whose entry did not
change keeps its process and its calls in flight; a bad edit is logged with its located
mistakes and the previous configuration keeps serving. Workflow files are reloaded too, and
SIGHUP reloads as an edit does, over stdio as over HTTP.
"""

from __future__ import annotations

import json
import re
import signal
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
import psutil
import pytest
from mcp import Client

from tests.e2e.harness import (
    Notifications,
    aggregator_command,
    aggregator_params,
    fault_entry,
    logged_process,
    write_config,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

LISTENING = r"listening on (\S+)"


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def _names(client: Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


async def _until(client: Client, changes: Notifications, wanted: set[str], unwanted: set[str]) -> set[str]:
    """Wait, one ``list_changed`` at a time (bounded), until the list has ``wanted`` and lacks ``unwanted``."""
    with anyio.fail_after(40):
        while True:
            seen = changes.count
            names = await _names(client)
            if wanted <= names and not unwanted & names:
                return names
            await changes.reach(seen + 1)


async def _pid(client: Client, server: str) -> int:
    result = await client.call_tool(f"{server}__pid", {})
    assert result.structured_content is not None, _text(result)
    return int(result.structured_content["pid"])


def _config(tmp_path: Path, servers: dict[str, Any], **sections: Any) -> Path:
    return write_config(tmp_path, servers, workflows=["workflows"], **sections)


def _workflow(tmp_path: Path, name: str, server: str) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(
        f"version: 1\nname: {name}\ndescription: Echo through {server}.\n"
        "input: {type: object, properties: {text: {type: string}}, required: [text]}\n"
        f"steps:\n  say:\n    tool: {server}.echo\n    with: {{text: '${{{{ input.text }}}}'}}\n"
        "output: {value: '${{ steps.say.result.text }}'}\n",
        encoding="utf-8",
    )


async def test_edits_add_remove_and_restart_servers_reload_workflows_and_a_bad_edit_changes_nothing(
    tmp_path: Path,
) -> None:
    _workflow(tmp_path, "say_keep", "keep")
    # `edit` is trust: auto, so the tool its edited arguments add is pinned on sight rather than
    # withheld until approved (tests/e2e/test_pinning.py covers that).
    servers = {"keep": fault_entry(), "drop": fault_entry(), "edit": fault_entry("--tools", "old_tool", trust="auto")}
    config = _config(tmp_path, servers)
    changes = Notifications(types.ToolListChangedNotification)
    async with (
        logged_process(aggregator_command(config), LISTENING) as (match, log),
        Client(match.group(1), mode="legacy", message_handler=changes) as client,
    ):
        names = await _names(client)
        assert {"keep__echo", "drop__echo", "edit__old_tool", "say_keep"} <= names
        keep_pid, edit_pid = await _pid(client, "keep"), await _pid(client, "edit")

        slow: list[types.CallToolResult] = []
        async with anyio.create_task_group() as tg:

            async def in_flight() -> None:
                slow.append(await client.call_tool("keep__slow", {"seconds": 4, "steps": 4}))

            tg.start_soon(in_flight)
            # One edit: `added` appears, `drop` goes, `edit` gets other arguments, a workflow is added.
            _workflow(tmp_path, "say_added", "added")
            edited = {
                "keep": fault_entry(),
                "edit": fault_entry("--tools", "new_tool", trust="auto"),
                "added": fault_entry(),
            }
            _config(tmp_path, edited)
            names = await _until(
                client,
                changes,
                wanted={"added__echo", "edit__new_tool", "keep__echo", "say_keep", "say_added"},
                unwanted={"drop__echo", "edit__old_tool"},
            )
            await log.wait_for(r"reload \(.*changed\) applied: added: added; removed: drop; restarted: edit")
        assert len(slow) == 1
        assert not slow[0].is_error, _text(slow[0])
        assert _text(slow[0]) == "done", "the unchanged server's call in flight was disturbed"
        assert await _pid(client, "keep") == keep_pid, "an unchanged server was restarted"
        assert await _pid(client, "edit") != edit_pid, "an edited server was not restarted"
        assert not psutil.pid_exists(edit_pid) or psutil.Process(edit_pid).status() == psutil.STATUS_ZOMBIE
        said = await client.call_tool("say_added", {"text": "via added"})
        assert json.loads(_text(said)) == "via added"

        # A bad edit: located mistakes in the log, and everything keeps serving as it was.
        before = changes.count
        mark = len(log.text)
        config.write_text("servers:\n  keep:\n    comand: nothing\n", encoding="utf-8")
        rejected = await log.wait_for(r"reload \(.*\) rejected; the previous configuration keeps serving", after=mark)
        located = rf"{re.escape(str(config))}:3: servers\.keep\.comand: unknown key \(did you mean 'command'\?\)"
        await log.wait_for(located, after=mark)
        assert rejected
        assert await _names(client) == names
        echoed = await client.call_tool("added__echo", {"text": "still served"})
        assert _text(echoed) == "still served"
        assert changes.count == before


async def test_a_config_edit_reaches_a_stdio_client_as_list_changed(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"a": fault_entry()})
    changes = Notifications(types.ToolListChangedNotification)
    async with Client(aggregator_params(config), mode="legacy", message_handler=changes) as client:
        assert "a__echo" in await _names(client)
        write_config(tmp_path, {"a": fault_entry(), "b": fault_entry()})
        await _until(client, changes, wanted={"a__echo", "b__echo"}, unwanted=set())
        echoed = await client.call_tool("b__echo", {"text": "b is here"})
        assert _text(echoed) == "b is here"


async def test_sighup_reloads_a_stdio_server_that_does_not_watch_its_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"a": fault_entry()}, serve={"watch": False})
    changes = Notifications(types.ToolListChangedNotification)
    async with Client(aggregator_params(config), mode="legacy", message_handler=changes) as client:
        assert "a__echo" in await _names(client)
        # The aggregator is the parent of its stdio servers.
        aggregator = psutil.Process(await _pid(client, "a")).ppid()
        write_config(tmp_path, {"a": fault_entry(), "c": fault_entry()}, serve={"watch": False})
        psutil.Process(aggregator).send_signal(signal.SIGHUP)
        await _until(client, changes, wanted={"a__echo", "c__echo"}, unwanted=set())
        assert psutil.Process(aggregator).is_running()
