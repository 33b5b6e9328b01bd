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
from typing import TYPE_CHECKING

import anyio
import pytest
from mcp import Client

from tests.e2e.durable_harness import durable_config, marks, read_the_run, step_journalled, three_marks
from tests.e2e.harness import REPO_ROOT, aggregator_command, events_seen, logged_process, served_process

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


def _config(tmp_path: Path, *, idempotent: bool, lease: str = "1s") -> tuple[Path, Path, str]:
    return durable_config(tmp_path, [three_marks(idempotent=idempotent)], lease=lease)


_marks = marks
_the_run = read_the_run


async def _kill_while_b_runs(config: Path, events: Path, state: str) -> None:
    """Start the run with a call over HTTP, and SIGKILL ``serve`` while step b is in flight (its start journalled)."""
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
        await step_journalled(state, "b")
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        tg.cancel_scope.cancel()


async def test_a_killed_run_resumes_without_calling_finished_steps_again(tmp_path: Path) -> None:
    # A lease far longer than the test's wait: the restarted serve, on the same host, sees the
    # killed one's pid is gone and takes its run over at once.
    config, events, state = _config(tmp_path, idempotent=True, lease="10m")
    await _kill_while_b_runs(config, events, state)
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
    await _kill_while_b_runs(config, events, state)

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
