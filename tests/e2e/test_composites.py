"""Composite tools (workflow files) served by the aggregator, end to end over stdio."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
import yaml
from mcp import Client

from tests.e2e.harness import REPO_ROOT, aggregator_params, fault_entry, write_config
from tests.fakes import EVENTS_FILE_ENV, wait_for_events

pytestmark = pytest.mark.anyio

RUN_META_KEY = "io.github.mcp-orchestrator/run"
EXAMPLES = REPO_ROOT / "examples" / "orchestrator.yaml"


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


def _workflow(directory: Path, name: str, steps: dict[str, Any], **extra: Any) -> Path:
    """Write a workflow file into ``directory``/workflows (kept apart from the config file)."""
    folder = directory if directory.name == "workflows" else directory / "workflows"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    document = {"version": 1, "name": name, "description": f"test workflow {name}", "steps": steps, **extra}
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _examples_config(tmp_path: Path) -> Path:
    """The bundled example config, with the flaky metrics server made flaky for sure."""
    text = EXAMPLES.read_text(encoding="utf-8").replace("cwd: ..", f"cwd: {REPO_ROOT}")
    text = text.replace("workflows: [../workflows]", f"workflows: [{REPO_ROOT / 'workflows'}]")
    path = tmp_path / "orchestrator.yaml"
    path.write_text(text, encoding="utf-8")
    return path


async def test_incident_report_is_listed_and_runs_with_progress_retry_and_run_id(tmp_path: Path) -> None:
    config = _examples_config(tmp_path)
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    env = {"ANALYTICS_FLAKY": "1", "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    async with Client(aggregator_params(config, env=env)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        report = tools["incident_report"]
        assert report.input_schema["required"] == ["service"]
        assert report.output_schema is not None
        assert report.annotations is not None
        assert report.annotations.read_only_hint is False  # it may comment on a ticket
        assert report.annotations.destructive_hint is False
        result = await client.call_tool(
            "incident_report", {"service": "checkout", "hours": 6}, progress_callback=on_progress
        )
    assert not result.is_error, _text(result)
    output = result.structured_content
    assert output is not None
    assert output["service"] == "checkout"
    assert output["recent_deploys"][0]["version"] == "2.15.0"
    assert [t["id"] for t in output["open_tickets"]] == ["TCK-116", "TCK-118"]
    assert output["summary_posted"] is False
    assert [p[0] for p in seen] == list(range(1, 9))
    assert {p[1] for p in seen} == {8}
    assert result.meta is not None
    assert len(result.meta[RUN_META_KEY]["run_id"]) >= 8


async def test_invalid_composite_arguments_are_a_tool_error_and_nothing_runs(tmp_path: Path) -> None:
    events = tmp_path / "events.log"
    _workflow(
        tmp_path,
        "guarded",
        {"wait": {"tool": "f.hang", "with": {}}},
        input={"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}},
    )
    config = write_config(
        tmp_path, {"f": fault_entry(env={EVENTS_FILE_ENV: str(events)})}, workflows=[str(tmp_path / "workflows")]
    )
    async with Client(aggregator_params(config)) as client:
        result = await client.call_tool("guarded", {"n": "seven"})
        assert result.is_error
        assert "n: 'seven' is not of type 'integer'" in _text(result)
    assert not events.exists() or "started hang" not in events.read_text()


async def test_a_failing_step_fails_the_run_naming_the_step_and_run(tmp_path: Path) -> None:
    _workflow(
        tmp_path,
        "doomed",
        {
            "first": {"tool": "f.echo", "with": {"text": "a"}},
            "broken": {"needs": ["first"], "tool": "f.fail", "with": {"message": "disk on fire"}},
        },
    )
    config = write_config(tmp_path, {"f": fault_entry()}, workflows=[str(tmp_path / "workflows")])
    async with Client(aggregator_params(config)) as client:
        result = await client.call_tool("doomed", {})
    assert result.is_error
    text = _text(result)
    assert "'broken'" in text
    assert "disk on fire" in text
    assert result.meta is not None
    assert result.meta[RUN_META_KEY]["failed_step"] == "broken"
    assert result.meta[RUN_META_KEY]["run_id"] in text


async def test_cancelling_a_composite_cancels_its_downstream_calls(tmp_path: Path) -> None:
    events = tmp_path / "events.log"
    _workflow(
        tmp_path,
        "stuck",
        {"a": {"tool": "f.hang", "with": {}}, "b": {"tool": "g.hang", "with": {}}},
    )
    config = write_config(
        tmp_path,
        {"f": fault_entry(env={EVENTS_FILE_ENV: str(events)}), "g": fault_entry(env={EVENTS_FILE_ENV: str(events)})},
        workflows=[str(tmp_path / "workflows")],
    )
    async with Client(aggregator_params(config), mode="legacy") as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(client.call_tool, "stuck", {}))
            # Cancel only once both downstream calls are in flight, however slowly the servers start.
            await anyio.to_thread.run_sync(partial(wait_for_events, events, "started hang", 2, timeout=30))
            tg.cancel_scope.cancel()
        await anyio.to_thread.run_sync(partial(wait_for_events, events, "cancelled hang", 2, timeout=20))
        assert _text(await client.call_tool("f__echo", {"text": "still fine"})) == "still fine"


async def test_a_composite_is_withdrawn_while_its_server_is_down_and_returns_with_it(tmp_path: Path) -> None:
    flag = tmp_path / "down"
    flag.write_text("x")
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    _workflow(workflows, "needs_late", {"hello": {"tool": "late.echo", "with": {"text": "hi"}}})
    config = write_config(
        tmp_path,
        {"good": fault_entry(), "late": fault_entry("--fail-start-file", str(flag))},
        workflows=[str(workflows)],
    )
    send_change, changes = anyio.create_memory_object_stream[None](100)

    async def on_message(message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            await send_change.send(None)

    async with Client(aggregator_params(config), mode="legacy", message_handler=on_message) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "needs_late" not in names
        withdrawn = await client.call_tool("needs_late", {})
        assert withdrawn.is_error
        assert "unavailable" in _text(withdrawn)
        flag.unlink()
        with anyio.fail_after(20):
            while "needs_late" not in names:
                await changes.receive()
                names = {tool.name for tool in (await client.list_tools()).tools}
        result = await client.call_tool("needs_late", {})
        assert not result.is_error, _text(result)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_validate_reports_every_problem_with_file_line_step_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nname: bad\ndescription: d\nsteps:\n"
        "  a:\n    tool: f.echo\n    needs: [b]\n"
        "  b:\n    tool: f.echo\n    needs: [a]\n"
        "  c:\n    tool: f.echo\n    timeout: soon\n",
        encoding="utf-8",
    )
    completed = _cli("validate", str(bad))
    assert completed.returncode == 1
    assert f"{bad}:13: steps.c.timeout:" in completed.stderr
    good = REPO_ROOT / "workflows" / "incident_report.yaml"
    assert _cli("validate", str(good)).returncode == 0


def test_validate_live_checks_tools_against_the_running_servers(tmp_path: Path) -> None:
    wf = _workflow(tmp_path, "typo", {"a": {"tool": "f.ecko", "with": {"text": "x"}}})
    config = write_config(tmp_path, {"f": fault_entry()})
    completed = _cli("validate", "--live", "-c", str(config), str(wf))
    assert completed.returncode == 1
    assert "steps.a.tool" in completed.stderr
    assert "ecko" in completed.stderr


def test_run_json_prints_only_the_output_and_graph_draws_the_dag(tmp_path: Path) -> None:
    wf = _workflow(
        tmp_path,
        "adder",
        {
            "one": {"tool": "f.add", "with": {"a": 1, "b": 2}},
            "two": {"needs": ["one"], "tool": "f.add", "with": {"a": "${{ steps.one.result.sum }}", "b": 10}},
        },
        output={"value": {"total": "${{ steps.two.result.sum }}"}},
    )
    config = write_config(tmp_path, {"f": fault_entry()})
    completed = _cli("run", str(wf), "-c", str(config), "--json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == {"total": 13}
    graph = _cli("graph", str(wf))
    assert graph.returncode == 0
    assert "one --> two" in graph.stdout
    assert graph.stdout.startswith("flowchart")


def test_running_a_file_is_not_stopped_by_a_broken_workflow_elsewhere_in_the_config(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    wf = _workflow(
        own, "adder", {"one": {"tool": "f.add", "with": {"a": 1, "b": 2}}}, output={"value": "${{ steps.one.result }}"}
    )
    broken = _workflow(tmp_path, "broken", {"x": {"tool": "f.add", "wiht": {}}})
    config = write_config(tmp_path, {"f": fault_entry()}, workflows=[str(broken.parent)])
    completed = _cli("run", str(wf), "-c", str(config), "--json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == {"sum": 3}
    # The config's own composites are still checked when they are what runs.
    by_name = _cli("run", "broken", "-c", str(config))
    assert by_name.returncode == 2
    assert "wiht" in by_name.stderr


def test_tools_says_why_a_composite_is_unavailable_when_its_server_did_not_start(tmp_path: Path) -> None:
    wf = _workflow(tmp_path, "uses_b", {"one": {"tool": "b.echo", "with": {"text": "hi"}}})
    config = write_config(tmp_path, {"a": fault_entry(), "b": fault_entry("--fail-start")}, workflows=[str(wf.parent)])
    completed = _cli("tools", "-c", str(config))
    assert completed.returncode == 1
    assert re.search(r"^uses_b +workflow  \(unavailable: see the log above\)$", completed.stdout, re.M)
    assert "composite 'uses_b' withdrawn" in completed.stderr
    assert "steps.one.tool: unknown server 'b'" in completed.stderr
