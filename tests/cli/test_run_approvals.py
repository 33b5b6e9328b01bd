"""``orchestrator run`` of a workflow with approval steps: asked on a terminal, ``--yes``, or refused.

Each test runs the real command line against the fault server started with ``--call-events``,
whose events file counts the calls that reached it. The terminal is a pseudo-terminal (stdin
only: stderr stays a pipe the test reads the question from).
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import yaml

from orchestrator.cli._dryrun import render_dry_run
from orchestrator.workflow import dry_run
from tests.e2e.durable_harness import GUARDED
from tests.e2e.harness import REPO_ROOT, fault_entry, write_config
from tests.fakes import EVENTS_FILE_ENV, read_events
from tests.workflow.helpers import plan_of

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow


DESTRUCTIVE: dict[str, Any] = {
    "version": 1,
    "name": "cleanup",
    "description": "Remove a tool: the fault server marks remove_tool destructive.",
    "approve_destructive": True,
    "steps": {
        "look": {"tool": "f.echo", "with": {"text": "before"}},
        "remove": {"tool": "f.remove_tool", "needs": ["look"], "with": {"name": "nothing"}},
    },
}


def _setup(tmp_path: Path, workflow: dict[str, Any]) -> tuple[Path, Path]:
    """A config with the fault server, and the workflow file; returns (config, workflow)."""
    path = tmp_path / f"{workflow['name']}.yaml"
    path.write_text(yaml.safe_dump(workflow, sort_keys=False), encoding="utf-8")
    server = fault_entry("--call-events", "--tools", "send", env={EVENTS_FILE_ENV: str(tmp_path / "f.events")})
    return write_config(tmp_path, {"f": server}), path


def _calls(tmp_path: Path) -> list[str]:
    return [line.removeprefix("called ") for line in read_events(tmp_path / "f.events") if line.startswith("called ")]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "OTEL_"))}
    env["HOME"] = str(tmp_path)
    env["OTEL_SDK_DISABLED"] = "true"
    return env


def _command(config: Path, workflow: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", "run", str(workflow), "-c", str(config), *args]


def _run(tmp_path: Path, workflow: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    """``orchestrator run`` with stdin not a terminal."""
    config, path = _setup(tmp_path, workflow)
    return subprocess.run(
        _command(config, path, *args),
        cwd=REPO_ROOT,
        env=_env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_a_terminal_or_yes_a_run_that_asks_is_refused_before_anything_is_called(tmp_path: Path) -> None:
    completed = _run(tmp_path, GUARDED, "--input", '{"text": "hello"}')

    assert completed.returncode == 1, completed.stderr
    assert (
        "error: step 'send' of 'guarded' asks for approval, and stdin is not a terminal to ask on: "
        "run it on a terminal, or pass --yes to approve every step; nothing was called"
    ) in completed.stderr
    assert completed.stdout == ""
    assert _calls(tmp_path) == []


def test_approve_destructive_is_refused_the_same_once_the_tools_show_which_steps_ask(tmp_path: Path) -> None:
    completed = _run(tmp_path, DESTRUCTIVE)

    assert completed.returncode == 1, completed.stderr
    assert "error: step 'remove' of 'cleanup' asks for approval, and stdin is not a terminal" in completed.stderr
    assert _calls(tmp_path) == []


def test_yes_approves_every_step_and_the_run_calls_each_tool_once(tmp_path: Path) -> None:
    recording = tmp_path / "run.jsonl"
    completed = _run(tmp_path, GUARDED, "--input", '{"text": "hello"}', "--yes", "--json", "--record", str(recording))

    assert completed.returncode == 0, completed.stderr
    assert "approved by --yes: step 'send' (f.send)" in completed.stderr
    assert completed.stdout.strip() == '{"text": "hello"}'
    assert _calls(tmp_path) == ["echo", "send"]

    # A replay calls nothing, so it asks nothing: the recording is of the approved run.
    replayed = subprocess.run(
        [sys.executable, "-m", "orchestrator", "replay", str(recording), str(tmp_path / "guarded.yaml"), "--json"],
        cwd=REPO_ROOT,
        env=_env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert "approved by the replay: step 'send' (f.send)" in replayed.stderr
    assert replayed.stdout.strip() == '{"text": "hello"}'
    assert _calls(tmp_path) == ["echo", "send"]


@pytest.mark.anyio
@pytest.mark.parametrize(("answer", "status"), [("y", 0), ("n", 1)])
async def test_on_a_terminal_the_user_is_asked_and_the_answer_decides(tmp_path: Path, answer: str, status: int) -> None:
    config, path = _setup(tmp_path, GUARDED)
    controller, terminal = pty.openpty()
    try:
        process = await anyio.open_process(
            _command(config, path, "--input", '{"text": "hello"}'),
            cwd=REPO_ROOT,
            env=_env(tmp_path),
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stderr is not None
        assert process.stdout is not None
        stderr = b""
        with anyio.fail_after(60):
            async for chunk in process.stderr:
                stderr += chunk
                if b"[y/N] " in stderr:
                    break
            question = stderr.decode()
            assert _calls(tmp_path) == ["echo"]  # asked before the call
            os.write(controller, f"{answer}\n".encode())
            async for chunk in process.stderr:
                stderr += chunk
            stdout = b"".join([chunk async for chunk in process.stdout])
            await process.wait()
    finally:
        os.close(controller)
        os.close(terminal)

    assert (
        "Send the draft?\n\nStep 'send' calls f.send.\n\n{\n  \"text\": \"hello\"\n}\n\nApprove step 'send'? [y/N] "
        in (question)
    )
    assert process.returncode == status, stderr.decode()
    if answer == "y":
        assert _calls(tmp_path) == ["echo", "send"]
        assert b'"text": "hello"' in stdout
    else:
        assert _calls(tmp_path) == ["echo"]
        assert "the user declined step 'send'; nothing was called" in stderr.decode()


def test_dry_run_text_says_which_steps_ask_and_what_they_show() -> None:
    steps: dict[str, Any] = {
        "note": {"tool": "mail.note", "approve": {"message": "Note it?", "show": "${{ input.to }}"}},
        "send": {
            "tool": "mail.send",
            "needs": ["note"],
            "approve": {"message": "Send?", "show": "${{ steps.note.result }}"},
        },
        "wipe": {"tool": "mail.wipe"},
    }

    asked = render_dry_run(dry_run(plan_of(steps), {"to": "ops"}))
    destructive = render_dry_run(dry_run(plan_of(steps, approve_destructive=True), {"to": "ops"}))

    assert '  note: mail.note\n    asks for approval: "Note it?"\n    shows: "ops"\n' in asked
    assert '    asks for approval: "Send?"\n    shows: <${{ steps.note.result }} (waits on note)>\n' in asked
    assert "  wipe: mail.wipe\n    with: {}\n" in asked
    assert (
        '  wipe: mail.wipe\n    asks for approval: "Allow the call to mail.wipe? It may be destructive."'
        " (the tool may be destructive: approve_destructive)\n"
    ) in destructive
