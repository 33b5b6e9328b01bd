"""Durable runs end to end: ``serve`` is killed mid-run, started again, and the run goes on.

The downstream counts its calls (``mark <label>`` lines in its events file): a step finished
before the kill is not called again; the step in flight is called again only when it is
idempotent, else the run stops as ``interrupted`` until someone decides.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import yaml
from mcp import Client
from sqlalchemy.engine import make_url

from orchestrator.store import RunRecord, list_runs, open_store, read_run
from tests.e2e.harness import (
    REPO_ROOT,
    aggregator_command,
    events_seen,
    fault_entry,
    logged_process,
    served_process,
    write_config,
)
from tests.fakes import EVENTS_FILE_ENV, read_events

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


def _workflow(directory: Path, *, idempotent: bool) -> Path:
    """a -> b (slow) -> c, each a `mark` call the downstream counts."""
    folder = directory / "workflows"
    folder.mkdir()
    steps: dict[str, Any] = {
        "a": {"tool": "f.mark", "with": {"label": "a"}},
        "b": {
            "tool": "f.mark",
            "needs": ["a"],
            "with": {"label": "b", "seconds": "${{ input.pause }}"},
            "idempotent": idempotent,
        },
        "c": {"tool": "f.mark", "needs": ["b"], "with": {"label": "c"}},
    }
    document = {
        "version": 1,
        "name": "three_marks",
        "description": "three calls in a row",
        "input": {"type": "object", "properties": {"pause": {"type": "number"}}, "required": ["pause"]},
        "steps": steps,
        "output": {"value": "${{ steps.c.result.label }}"},
    }
    path = folder / "three_marks.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return folder


def _config(tmp_path: Path, *, idempotent: bool, lease: str = "1s") -> tuple[Path, Path, str]:
    events = tmp_path / "events.log"
    state = f"sqlite:///{tmp_path / 'state.db'}"
    config = write_config(
        tmp_path,
        {"f": fault_entry("--mark-tool", env={EVENTS_FILE_ENV: str(events)})},
        workflows=[str(_workflow(tmp_path, idempotent=idempotent))],
        state={"url": state},
        runs={"lease": lease},
    )
    return config, events, state


def _marks(events: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in read_events(events):
        if line.startswith("mark "):
            counts[line[5:]] = counts.get(line[5:], 0) + 1
    return counts


async def _the_run(state: str) -> RunRecord:
    async with open_store(make_url(state.replace("sqlite:", "sqlite+aiosqlite:", 1))) as store:
        (summary,) = await list_runs(store.engine)
        found = await read_run(store.engine, summary.id)
    assert found is not None
    return found


async def _kill_while_b_runs(config: Path, events: Path) -> None:
    """Start the run with a call over HTTP, and SIGKILL ``serve`` while step b is in flight."""
    async with (
        served_process(aggregator_command(config), r"listening on (\S+)") as (match, process),
        anyio.create_task_group() as tg,
    ):

        async def call() -> None:
            try:
                async with Client(match.group(1)) as client:
                    await client.call_tool("three_marks", {"pause": 3})
            except Exception:  # the server is killed under the call on purpose
                return

        tg.start_soon(call)
        await events_seen(events, "mark b")
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        tg.cancel_scope.cancel()


async def test_a_killed_run_resumes_without_calling_finished_steps_again(tmp_path: Path) -> None:
    # A lease far longer than the test's wait: the restarted serve, on the same host, sees the
    # killed one's pid is gone and takes its run over at once.
    config, events, state = _config(tmp_path, idempotent=True, lease="10m")
    await _kill_while_b_runs(config, events)
    assert _marks(events) == {"a": 1, "b": 1}
    assert (await _the_run(state)).status == "running"
    # The file changes while no one serves it: the run resumes as it began, new runs run the new one.
    workflow = tmp_path / "workflows" / "three_marks.yaml"
    workflow.write_text(workflow.read_text(encoding="utf-8").replace("label: c", "label: z"), encoding="utf-8")

    async with logged_process(aggregator_command(config), r"listening on (\S+)") as (_, log):
        await log.wait_for(r"run \w+ ended: succeeded", timeout=20)
    run = await _the_run(state)

    assert _marks(events) == {"a": 1, "b": 2, "c": 1}
    assert run.status == "succeeded"
    assert run.outcome["content"] == [{"type": "text", "text": '"c"'}]
    assert {step.key: step.status for step in run.steps} == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}
    step_b = run.step("b")
    assert step_b is not None
    assert step_b.attempts == 2


async def test_a_killed_run_whose_step_in_flight_is_not_idempotent_stops_until_someone_decides(
    tmp_path: Path,
) -> None:
    config, events, state = _config(tmp_path, idempotent=False)
    await _kill_while_b_runs(config, events)

    async with logged_process(aggregator_command(config), r"listening on (\S+)") as (_, log):
        await log.wait_for(r"run \w+ ended: interrupted", timeout=30)
        run = await _the_run(state)
        assert run.status == "interrupted"
        assert run.error is not None
        assert "step 'b'" in run.error
        assert f"orchestrator runs resume {run.id} --retry-step b" in run.error
        assert _marks(events) == {"a": 1, "b": 1}

        refused = await _cli("runs", "resume", run.id[:8], "-c", str(config))
        assert refused.returncode == 1
        assert "--retry-step b" in refused.stderr
        after = len(log.text)
        resumed = await _cli("runs", "resume", run.id[:8], "--retry-step", "b", "-c", str(config))
        assert resumed.returncode == 0, resumed.stderr
        # The serving process claims the reopened run and finishes it.
        await log.wait_for(rf"run {run.id} ended: succeeded", after=after, timeout=30)

    assert _marks(events) == {"a": 1, "b": 2, "c": 1}
    shown = await _cli("runs", "show", run.id, "--json", "-c", str(config))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "succeeded"


async def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, in a thread: the test's event loop keeps reading serve's log."""
    command = [sys.executable, "-m", "orchestrator", *args]
    run = partial(subprocess.run, command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    return await anyio.to_thread.run_sync(run)
