"""``orchestrator runs`` through the CLI's ``main`` against a state database filled through the store.

In-process (as ``orchestrator`` runs it, output captured): one process per command would cost
seconds each. ``--follow`` runs as the real command, as a process, while the test writes the
journal under it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from orchestrator import store as state_db
from orchestrator.cli import main
from orchestrator.cli._runs import RUN_STATUS_CHOICES
from orchestrator.config import StateSpec
from orchestrator.store import (
    RunPrincipal,
    RunRecord,
    create_run,
    finish_run,
    open_store,
    read_run,
    record_step_finished,
    record_step_started,
    state_url,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.usefixtures("home")

SNAPSHOT = """\
version: 1
name: deploy_service
description: Build, test and deploy a service.
steps:
  build:
    tool: ci.build
  tests:
    needs: [build]
    for_each: ${{ steps.build.result.suites }}
    as: suite
    tool: ci.test
    with: {suite: "${{ suite }}"}
  deploy:
    needs: [tests]
    tool: cd.deploy
  notify:
    needs: [deploy]
    tool: chat.post
"""
NOW = datetime.now(UTC).replace(microsecond=0)
DONE_ID = "aaaaaa01" + "0" * 24
STOPPED_ID = "aaaaaa02" + "0" * 24
RUNNING_ID = "bbbbbb03" + "0" * 24
ALICE = RunPrincipal(client_id="client-1", subject="alice")


def _local(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


async def _run(engine: AsyncEngine, run_id: str, at: datetime, principal: RunPrincipal) -> RunRecord:
    run, _ = await create_run(
        engine,
        run_id,
        workflow="deploy_service",
        plan_hash="c" * 64,
        workflow_snapshot=SNAPSHOT,
        input={"service": "api"},
        principal=principal,
        catalogue_version="cat-7",
        at=at,
        owner="proc-a",
        lease_seconds=30,
        deadline=at + timedelta(hours=1),
    )
    return run


async def _step(
    engine: AsyncEngine, run_id: str, step: str, item: int | None, status: str, at: datetime, **outcome: Any
) -> None:
    await record_step_started(engine, run_id, step, item, at=at)
    if status != "running":
        await record_step_finished(engine, run_id, step, item, status=status, at=at + timedelta(seconds=0.5), **outcome)


async def _fill(engine: AsyncEngine) -> None:
    """A run that succeeded, one interrupted while ``deploy`` was in flight, one running."""
    done_at = NOW - timedelta(hours=2)
    await _run(engine, DONE_ID, done_at, RunPrincipal(client_id=None))
    await _step(engine, DONE_ID, "build", None, "succeeded", done_at, result={"suites": ["unit", "e2e"]})
    await _step(engine, DONE_ID, "tests", 0, "succeeded", done_at)
    await _step(engine, DONE_ID, "tests", 1, "succeeded", done_at)
    await _step(engine, DONE_ID, "deploy", None, "succeeded", done_at)
    await record_step_finished(engine, DONE_ID, "notify", status="skipped", at=done_at)
    await finish_run(engine, DONE_ID, "succeeded", at=done_at + timedelta(seconds=12.5), outcome={"content": []})

    stopped_at = NOW - timedelta(hours=1)
    await _run(engine, STOPPED_ID, stopped_at, ALICE)
    await _step(engine, STOPPED_ID, "build", None, "succeeded", stopped_at, result={"suites": ["unit", "e2e"]})
    await _step(engine, STOPPED_ID, "tests", 0, "succeeded", stopped_at)
    await record_step_started(engine, STOPPED_ID, "tests", 1, at=stopped_at)
    await record_step_finished(engine, STOPPED_ID, "tests", 1, status="failed", error="boom", at=stopped_at)
    await _step(engine, STOPPED_ID, "tests", 1, "succeeded", stopped_at)  # its second attempt
    await _step(engine, STOPPED_ID, "deploy", None, "running", stopped_at)
    await finish_run(
        engine, STOPPED_ID, "interrupted", error="deploy was in flight", at=stopped_at + timedelta(minutes=4)
    )

    # From the time now, not NOW (when the module was imported): its "running for" is read at once.
    running_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    await _run(engine, RUNNING_ID, running_at, ALICE)
    await _step(engine, RUNNING_ID, "build", None, "running", running_at)


@dataclass(frozen=True, slots=True)
class _Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'state.db'}"


@pytest.fixture
def config(tmp_path: Path, database: str) -> Path:
    path = tmp_path / "orchestrator.yaml"
    path.write_text(f"servers: {{}}\nstate: {{url: '{database}'}}\nruns: {{lease: 20s}}\n", encoding="utf-8")

    async def fill() -> None:
        async with open_store(state_url(StateSpec(url=database), {})) as store:
            await _fill(store.engine)

    anyio.run(fill)
    return path


def _runs(config: Path, *arguments: str) -> _Result:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["runs", *arguments, "--config", str(config)])
    return _Result(status, out.getvalue(), err.getvalue())


def _stored(database: str, run_id: str) -> RunRecord:
    async def read() -> RunRecord | None:
        async with open_store(state_url(StateSpec(url=database), {})) as store:
            return await read_run(store.engine, run_id)

    run = anyio.run(read)
    assert run is not None
    return run


def test_the_listing_shows_the_newest_runs_first_with_timing_who_and_steps_done(config: Path) -> None:
    result = _runs(config)

    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["RUN", "WORKFLOW", "STATUS", "STARTED", "DURATION", "BY", "STEPS"]
    assert [row.split()[0] for row in rows] == [RUNNING_ID[:12], STOPPED_ID[:12], DONE_ID[:12]]
    running, stopped, done = rows
    assert re.search(r"deploy_service +running +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +running for 5m0\ds", running)
    assert running.endswith("client-1 (alice)  0/4")
    assert "interrupted" in stopped
    assert "4m00s" in stopped
    assert stopped.endswith("2/4")  # build, and tests: every item is done and deploy, which needs it, started
    assert re.search(rf"succeeded +{_local(NOW - timedelta(hours=2))} +12\.5s +local +4/4$", done)


def test_the_listing_filters_by_status_limits_and_prints_json(config: Path) -> None:
    stopped = _runs(config, "--status", "interrupted")
    assert [row.split()[0] for row in stopped.stdout.splitlines()[1:]] == [STOPPED_ID[:12]]
    assert len(_runs(config, "--limit", "2").stdout.splitlines()) == 3

    result = _runs(config, "--json", "--limit", "2")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)["runs"]
    assert [item["id"] for item in listed] == [RUNNING_ID, STOPPED_ID]
    assert listed[1] == {
        "id": STOPPED_ID,
        "workflow": "deploy_service",
        "status": "interrupted",
        "error": "deploy was in flight",
        "principal": {"client_id": "client-1", "subject": "alice"},
        "created_at": (NOW - timedelta(hours=1)).isoformat(),
        "finished_at": (NOW - timedelta(hours=1) + timedelta(minutes=4)).isoformat(),
        "duration_seconds": 240.0,
        "steps_done": 2,
        "steps_total": 4,
    }

    none = _runs(config, "--status", "declined")
    assert (none.returncode, none.stdout, none.stderr) == (0, "", "no declined runs in the journal\n")
    bad = _runs(config, "--limit", "0")
    assert (bad.returncode, bad.stderr) == (2, "error: --limit: must be at least 1, got 0\n")


def test_show_draws_the_header_and_every_step_in_the_workflows_order(config: Path) -> None:
    result = _runs(config, "show", STOPPED_ID[:8])

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    created, finished = NOW - timedelta(hours=1), NOW - timedelta(hours=1) + timedelta(minutes=4)
    assert lines[:10] == [
        f"run        {STOPPED_ID}",
        "workflow   deploy_service (plan cccccccccccc)",
        "status     interrupted",
        "error      deploy was in flight",
        "by         client-1 (alice)",
        f"created    {_local(created)}",
        f"finished   {_local(finished)} (after 4m00s)",
        f"deadline   {_local(created + timedelta(hours=1))}",
        "catalogue  cat-7",
        "",
    ]
    steps = [re.sub(r" +", " ", line) for line in lines[10:14]]
    assert steps == [
        "✓ build ci.build succeeded 0.50s",
        "✓ tests ci.test succeeded 0.50s, 2/2 items done",
        "… deploy cd.deploy running in flight when the run stopped (interrupted)",
        "· notify chat.post pending",
    ]
    assert lines[14:] == [
        "",
        "in flight when it stopped: deploy (each may or may not have acted)",
        f"resume with: orchestrator runs resume {STOPPED_ID[:12]} --retry-step deploy"
        "  (or --skip-step STEP for any of them)",
    ]


def test_show_json_holds_the_run_and_its_steps_with_items_and_results(config: Path) -> None:
    result = _runs(config, "show", DONE_ID, "--json")

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["id"], shown["status"], shown["principal"]) == (
        DONE_ID,
        "succeeded",
        {"client_id": None, "subject": None},
    )
    assert (shown["input"], shown["outcome"], shown["snapshot_problem"]) == ({"service": "api"}, {"content": []}, None)
    assert [(step["id"], step["tool"], step["status"]) for step in shown["steps"]] == [
        ("build", "ci.build", "succeeded"),
        ("tests", "ci.test", "succeeded"),
        ("deploy", "cd.deploy", "succeeded"),
        ("notify", "chat.post", "skipped"),
    ]
    build, tests = shown["steps"][:2]
    assert (build["result"], build["items"], build["attempts"]) == ({"suites": ["unit", "e2e"]}, None, 1)
    assert [(item["index"], item["status"]) for item in tests["items"]] == [(0, "succeeded"), (1, "succeeded")]


def test_a_run_is_named_by_its_id_or_a_prefix_of_six_characters_that_only_it_has(config: Path) -> None:
    assert _runs(config, "show", RUNNING_ID[:6]).returncode == 0

    short = _runs(config, "show", "bbbbb")
    assert (short.returncode, short.stdout) == (1, "")
    assert "needs 6 characters or more" in short.stderr
    ambiguous = _runs(config, "show", "aaaaaa0")
    assert ambiguous.returncode == 1
    assert f"'aaaaaa0' is the start of several runs: {DONE_ID}, {STOPPED_ID}; give more of the id" in ambiguous.stderr
    missing = _runs(config, "cancel", "cafe0123")
    assert (missing.returncode, missing.stderr) == (1, "error: no run 'cafe0123' (see 'orchestrator runs')\n")


def test_cancel_stops_a_running_run_and_refuses_one_that_is_over(config: Path, database: str) -> None:
    result = _runs(config, "cancel", RUNNING_ID[:8])

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"cancelled run {RUNNING_ID} (deploy_service)",
        "the process running it (proc-a) stops it at its next step boundary",
    ]
    stored = _stored(database, RUNNING_ID)
    assert (stored.status, stored.owner) == ("cancelled", None)
    assert stored.error is not None
    assert stored.error.startswith("cancelled by ")

    again = _runs(config, "cancel", RUNNING_ID)
    assert again.returncode == 1
    assert again.stderr == f"error: run {RUNNING_ID} is cancelled already: only a running run can be cancelled\n"


def test_resume_refuses_a_step_in_flight_without_a_decision_and_unknown_steps(config: Path, database: str) -> None:
    undecided = _runs(config, "resume", STOPPED_ID)
    assert undecided.returncode == 1
    assert f"run {STOPPED_ID} stopped while deploy was in flight" in undecided.stderr
    assert "--retry-step STEP to call it again or --skip-step STEP to treat it as skipped" in undecided.stderr
    assert "(e.g. --retry-step deploy); nothing resumed" in undecided.stderr

    unknown = _runs(config, "resume", STOPPED_ID, "--retry-step", "deplyo", "--skip-step", "notfy")
    assert unknown.returncode == 1
    assert unknown.stderr == (
        "error: 'deploy_service' has no step 'deplyo'; did you mean 'deploy'?; "
        "'deploy_service' has no step 'notfy'; did you mean 'notify'?; nothing resumed\n"
    )
    both = _runs(config, "resume", STOPPED_ID, "--retry-step", "deploy", "--skip-step", "deploy")
    assert (both.returncode, both.stderr) == (
        2,
        "error: --retry-step: deploy: a step is either retried or skipped, not both\n",
    )
    assert _stored(database, STOPPED_ID).status == "interrupted"


def test_resume_reopens_the_run_for_a_serving_process_with_the_decisions_taken(config: Path, database: str) -> None:
    result = _runs(config, "resume", STOPPED_ID[:10], "--skip-step", "deploy")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"resumed run {STOPPED_ID} (deploy_service): it is running again, held by no process yet",
        "  deploy: skipped",
        "A serving process (orchestrator serve on the same state database) picks it up within its lease check "
        "(runs.lease: 20s).",
        f"Follow it with: orchestrator runs show {STOPPED_ID[:12]} --follow",
    ]
    stored = _stored(database, STOPPED_ID)
    assert (stored.status, stored.owner, stored.error, stored.finished_at) == ("running", None, None, None)
    assert [(step.key, step.status) for step in stored.steps] == [
        ("build", "succeeded"),
        ("deploy", "skipped"),
        ("tests[0]", "succeeded"),
        ("tests[1]", "succeeded"),
    ]


def test_resume_refuses_runs_that_are_running_or_succeeded(config: Path) -> None:
    running = _runs(config, "resume", RUNNING_ID)
    assert running.returncode == 1
    assert running.stderr == (
        f"error: run {RUNNING_ID} cannot be resumed: it is running "
        f"(to stop it: orchestrator runs cancel {RUNNING_ID[:12]})\n"
    )
    done = _runs(config, "resume", DONE_ID)
    assert done.returncode == 1
    assert done.stderr == f"error: run {DONE_ID} cannot be resumed: it succeeded: there is nothing left to run\n"


def test_a_run_whose_snapshot_no_longer_reads_is_shown_as_journalled(config: Path, database: str) -> None:
    run_id = "dddddd04" + "0" * 24

    async def add() -> None:
        async with open_store(state_url(StateSpec(url=database), {})) as store:
            await create_run(
                store.engine,
                run_id,
                workflow="old_flow",
                plan_hash="d" * 64,
                workflow_snapshot="steps: [unclosed\n",
                input={},
                principal=ALICE,
                catalogue_version=None,
                at=NOW,
                owner="proc-a",
                lease_seconds=30,
            )
            await _step(store.engine, run_id, "fetch", None, "failed", NOW, error="gone")
            await finish_run(store.engine, run_id, "failed", error="step fetch failed", at=NOW)

    anyio.run(add)
    result = _runs(config, "show", run_id)

    assert result.returncode == 0, result.stderr
    assert "✗ fetch  ? " in result.stdout
    assert "failed  0.50s: gone" in result.stdout
    assert result.stderr.startswith("note: its workflow snapshot cannot be read, steps are as journalled: run dddddd")
    listed = json.loads(_runs(config, "--json", "--status", "failed").stdout)["runs"]
    assert [(item["id"], item["steps_done"], item["steps_total"]) for item in listed] == [(run_id, None, None)]
    assert re.search(r"old_flow +failed .* \?$", _runs(config, "--status", "failed").stdout.splitlines()[1])
    unknown = _runs(config, "resume", run_id, "--retry-step", "fetc")
    assert unknown.stderr == "error: 'old_flow' has no step 'fetc'; did you mean 'fetch'?; nothing resumed\n"


def test_follow_and_json_do_not_go_together(config: Path) -> None:
    result = _runs(config, "show", RUNNING_ID, "--follow", "--json")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "error: --follow: --follow draws the run for a person; --json prints it once\n"
    slow = _runs(config, "show", RUNNING_ID, "--follow", "--interval", "600")
    assert (slow.returncode, slow.stderr) == (2, "error: --interval: must be between 0.1 and 60 seconds, got 600\n")


def test_a_missing_config_is_a_config_error(tmp_path: Path) -> None:
    result = _runs(tmp_path / "nowhere.yaml")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")


def test_the_status_choices_are_the_journals_statuses() -> None:
    assert set(RUN_STATUS_CHOICES) == state_db.RUN_STATUSES


async def _read_until(stream: Any, text: str, seen: list[str]) -> None:
    """Read ``stream`` into ``seen`` until ``text`` is in it."""
    while text not in "".join(seen):
        seen.append((await stream.receive()).decode())


@pytest.fixture
async def engine(config: Path, database: str) -> AsyncIterator[AsyncEngine]:
    async with open_store(state_url(StateSpec(url=database), {})) as store:
        yield store.engine


@pytest.mark.anyio
async def test_follow_prints_each_change_until_the_run_is_over(config: Path, engine: AsyncEngine) -> None:
    command = [sys.executable, "-m", "orchestrator", "runs", "show", RUNNING_ID[:8], "--follow", "--interval", "0.1"]
    command += ["--config", str(config)]
    seen: list[str] = []
    with anyio.fail_after(60):
        async with await anyio.open_process(command, env=os.environ.copy(), stderr=subprocess.PIPE) as process:
            assert process.stdout is not None
            await _read_until(process.stdout, "· notify", seen)
            at = datetime.now(UTC)
            await record_step_finished(engine, RUNNING_ID, "build", status="succeeded", result={"suites": []}, at=at)
            await _read_until(process.stdout, "✓ build", seen)
            await record_step_finished(engine, RUNNING_ID, "tests", status="skipped", at=at)
            await finish_run(engine, RUNNING_ID, "failed", error="deploy refused", at=at)
            await process.wait()
            async for chunk in process.stdout:
                seen.append(chunk.decode())
    output = "".join(seen)
    assert process.returncode == 0, output
    first, rest = output.split("· notify", 1)
    assert first.startswith(f"run        {RUNNING_ID}\n")
    assert "… build" in first
    later = [re.sub(r" +", " ", line) for line in rest.splitlines()[1:]]
    assert later[0].startswith("✓ build ci.build succeeded")
    assert "- tests ci.test skipped" in later
    assert "status failed" in later
    assert "error deploy refused" in later
    assert later[-1] == f"resume with: orchestrator runs resume {RUNNING_ID[:12]}"
