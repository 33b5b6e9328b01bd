"""``run --record`` against the example servers, and ``replay`` of the committed golden recording.

The golden recording (``recordings/incident_report.jsonl``) was written by
``orchestrator run incident_report --record`` against the bundled example servers; replays
here use a config whose servers cannot start, so a replay that started one would fail.
To make it again: ``orchestrator run incident_report -c examples/orchestrator.yaml
--input '{"service": "checkout", "hours": 6}' --record tests/examples/recordings/incident_report.jsonl``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fakes import REPO_ROOT

GOLDEN = Path(__file__).parent / "recordings" / "incident_report.jsonl"
EXAMPLES = REPO_ROOT / "examples" / "orchestrator.yaml"
WORKFLOW = REPO_ROOT / "workflows" / "incident_report.yaml"
SECRET = "s3cr3t-value-never-recorded"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def _examples_config(tmp_path: Path) -> Path:
    """The example config, its metrics server given a secret in its environment."""
    text = EXAMPLES.read_text(encoding="utf-8").replace("cwd: ..", f"cwd: {REPO_ROOT}")
    text = text.replace("workflows: [../workflows]", f"workflows: [{REPO_ROOT / 'workflows'}]")
    text = text.replace(
        'ANALYTICS_FLAKY: "${ANALYTICS_FLAKY:-1}"', f'ANALYTICS_FLAKY: "1"\n      API_TOKEN: "{SECRET}"'
    )
    assert SECRET in text
    path = tmp_path / "orchestrator.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _no_server_config(tmp_path: Path) -> Path:
    """A config with the example workflows whose every server would fail to start, loudly."""
    missing = tmp_path / "no-such-server"
    servers = "".join(f"  {key}:\n    command: {missing}\n" for key in ("db", "metrics", "tickets"))
    path = tmp_path / "replay.yaml"
    path.write_text(f"servers:\n{servers}workflows: [{REPO_ROOT / 'workflows'}]\n", encoding="utf-8")
    return path


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_recorded_run_replays_to_the_same_output_with_no_server(tmp_path: Path) -> None:
    recording = tmp_path / "run.jsonl"
    arguments = '{"service": "checkout", "hours": 12}'
    recorded = _cli(
        "run",
        "incident_report",
        "-c",
        str(_examples_config(tmp_path)),
        "--input",
        arguments,
        "--record",
        str(recording),
    )
    assert recorded.returncode == 0, recorded.stderr
    header, *calls, last = _lines(recording)
    assert header["format"] == "mcp-orchestrator-recording"
    assert header["workflow"] == "incident_report"
    assert header["input"] == {"service": "checkout", "hours": 12}
    assert sorted(header["tools"]) == ["db", "metrics", "tickets"]  # type: ignore[arg-type]
    assert {(c["server"], c["tool"]) for c in calls} >= {("db", "query"), ("metrics", "query_metrics")}
    assert {c["step"] for c in calls} >= {"latency", "deploys", "tickets", "ticket_details"}
    assert last == {"kind": "output", "output": json.loads(recorded.stdout)}
    assert SECRET not in recording.read_text(encoding="utf-8")

    replayed = _cli("replay", str(recording), "-c", str(_no_server_config(tmp_path)))
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout) == json.loads(recorded.stdout)
    assert "not made" not in replayed.stderr
    assert "differs" not in replayed.stderr


def test_the_golden_recording_of_incident_report_replays_with_no_server(tmp_path: Path) -> None:
    *_, last = _lines(GOLDEN)
    config = _no_server_config(tmp_path)
    replayed = _cli("replay", str(GOLDEN), "-c", str(config), "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout) == last["output"]
    assert "no-such-server" not in replayed.stderr
    by_file = _cli("replay", str(GOLDEN), str(WORKFLOW), "--json")  # no config needed for a file
    assert by_file.returncode == 0, by_file.stderr
    assert json.loads(by_file.stdout) == last["output"]
    assert "has changed since it was recorded" not in by_file.stderr


def test_a_changed_workflow_fails_its_replay_naming_the_call_and_the_changed_argument(tmp_path: Path) -> None:
    changed = tmp_path / "incident_report.yaml"
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "desc limit 5" in text
    changed.write_text(text.replace("desc limit 5", "desc limit 3"), encoding="utf-8")
    replayed = _cli("replay", str(GOLDEN), str(changed), "-c", str(_no_server_config(tmp_path)))
    assert replayed.returncode == 1
    assert "has changed since it was recorded" in replayed.stderr
    assert "no recorded answer for db.query (step 'deploys')" in replayed.stderr
    assert "limit 3" in replayed.stderr
    assert "the closest recorded call of db.query (step 'deploys') differs in: sql" in replayed.stderr
    assert replayed.stdout == ""


def test_another_input_than_the_recorded_one_fails_its_replay(tmp_path: Path) -> None:
    replayed = _cli(
        "replay",
        str(GOLDEN),
        "incident_report",
        "-c",
        str(_no_server_config(tmp_path)),
        "--input",
        '{"service": "search"}',
    )
    assert replayed.returncode == 1
    assert "no recorded answer for" in replayed.stderr
    assert "differs in: hours, service" in replayed.stderr  # the recorded run asked for 6 hours


def test_a_file_that_is_not_a_recording_is_refused_with_its_path(tmp_path: Path) -> None:
    replayed = _cli("replay", str(WORKFLOW), "-c", str(_no_server_config(tmp_path)))
    assert replayed.returncode == 2
    assert f"error: {WORKFLOW}:1: not JSON" in replayed.stderr


def test_a_record_file_that_cannot_be_written_is_refused_before_any_server_starts(tmp_path: Path) -> None:
    nowhere = tmp_path / "no-such-folder" / "run.jsonl"
    config = _no_server_config(tmp_path)
    completed = _cli(
        "run", "incident_report", "-c", str(config), "--input", '{"service": "x"}', "--record", str(nowhere)
    )
    assert completed.returncode == 2
    assert f"error: --record: cannot write a recording to {nowhere}" in completed.stderr
    assert "no-such-server" not in completed.stderr  # no server was started


def test_a_recorded_workflow_name_without_a_config_says_how_to_replay_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    completed = _cli("replay", str(GOLDEN), "-c", str(missing))
    assert completed.returncode == 2
    assert "'incident_report' is not a file, so it is looked up among the config's composites" in completed.stderr
    assert "give WORKFLOW as a workflow file, or the config with -c" in completed.stderr
