"""``orchestrator run --dry-run`` on the bundled example: the plan is printed and no tool is called.

Every downstream call leaves a ``tools/call <tool>`` span (the aggregator's client span and
the example server's own) in the Jaeger-JSON file ``run`` writes, so the file shows whether
a call happened; the same command without ``--dry-run`` shows that it would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tracing_e2e._support import read_jaeger_file

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / "examples" / "orchestrator.yaml"


def _run(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``orchestrator run incident_report`` with the example config; also the operations of every span written."""
    traces = cwd / "traces.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "OTEL_"))}
    # The example config starts its servers with `python`: this interpreter's.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"OTEL_TRACES_EXPORTER": "jaeger_file", "ORCHESTRATOR_TRACES_FILE": str(traces), "ANALYTICS_FLAKY": "0"})
    completed = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", "incident_report", "-c", str(CONFIG), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    operations = [span.operation for trace in read_jaeger_file(traces) for span in trace.spans]
    return completed, operations


def _calls(operations: list[str]) -> list[str]:
    return [operation for operation in operations if "tools/call" in operation]


def test_dry_run_prints_waves_conditions_and_known_arguments_and_calls_nothing(tmp_path: Path) -> None:
    completed, operations = _run(tmp_path, "--dry-run", "--input", '{"service": "checkout", "post_summary": true}')

    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert out.startswith(
        'dry run of incident_report with input {"service": "checkout", "post_summary": true, "hours": 24}'
    )
    assert "\nwave 1:\n  latency: metrics.query_metrics\n" in out
    assert '    with: {"service": "checkout", "metric": "latency_p99_ms", "hours": 24}\n' in out
    assert "\nwave 2:\n  ticket_details: tickets.get_ticket (after tickets)\n" in out
    assert "    for_each: unknown until tickets\n" in out
    assert "\nwave 3:\n  comment: tickets.add_comment" in out
    assert "    if: undecided until tickets\n" in out
    assert '"id": <${{ steps.tickets.result.items[0].id }} (waits on tickets)>' in out
    assert "tools/list" in " ".join(operations)  # the servers were up and listed: the file is not just empty
    assert _calls(operations) == []


def test_dry_run_json_shows_the_skipped_step_and_calls_nothing(tmp_path: Path) -> None:
    completed, operations = _run(tmp_path, "--dry-run", "--json", "--input", '{"service": "payments", "hours": 6}')

    assert completed.returncode == 0, completed.stderr
    plan = json.loads(completed.stdout)
    assert plan["waves"] == [
        ["latency", "errors", "signatures", "deploys", "incidents", "tickets"],
        ["ticket_details"],
        ["comment"],
    ]
    steps = {step["id"]: step for step in plan["steps"]}
    assert steps["signatures"]["arguments"] == {"service": "payments", "hours": 6}
    assert steps["comment"]["condition"] == "false"
    assert steps["comment"]["skipped"] is True
    assert steps["ticket_details"]["for_each"] == {"item_count": None, "waits_on": ["tickets"]}
    assert _calls(operations) == []


def test_without_dry_run_the_same_command_calls_the_tools(tmp_path: Path) -> None:
    # The check above can fail: a real run leaves its calls in the same file.
    completed, operations = _run(tmp_path, "--json", "--input", '{"service": "checkout"}')

    assert completed.returncode == 0, completed.stderr
    assert "tools/call query_metrics" in _calls(operations)
    assert "tools/call search_tickets" in _calls(operations)


def test_dry_run_with_invalid_input_says_what_is_wrong_before_starting_servers(tmp_path: Path) -> None:
    completed, operations = _run(tmp_path, "--dry-run", "--input", '{"hours": 0}')

    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.startswith("error: invalid --input for 'incident_report':\n  - ")
    assert "'service' is a required property" in completed.stderr
    assert operations == []  # no server was started (each start leaves a `connect <key>` span)
