"""The one-shot commands as subprocesses: the offline Jaeger-JSON file of ``orchestrator run``, and tracing off.

``orchestrator run`` is its own caller: its ``orchestrator run <name>`` span is the root,
the stdio servers it starts write their own files (``traces.<key>.json``), and it merges
them into its file (and removes them) when it stops, so the file alone holds the
cross-process tree.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.e2e.harness import fault_entry, write_config
from tests.tracing_e2e._support import AGGREGATOR, example_server, export_env, read_jaeger_file, write_brief

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from tests.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.slow

UI_URL = "http://jaeger.test:16686"
_TRACE_LINE = re.compile(r"^trace: ([0-9a-f]{32})(?:  (\S+))?$", re.MULTILINE)


def _orchestrator(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI in ``cwd`` with this environment (no ``ORCHESTRATOR_*``) plus ``env``."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    child_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_orchestrator_run_writes_a_jaeger_json_file_whose_trace_spans_the_aggregator_and_its_servers(
    tmp_path: Path,
) -> None:
    workflows = write_brief(tmp_path, max_attempts=3)
    servers = {
        "metrics": example_server("analytics", {"ANALYTICS_FLAKY": "1"}),
        "tickets": example_server("tracker"),
    }
    config = write_config(tmp_path, servers, workflows=[str(workflows)])
    traces = tmp_path / "traces.json"
    env = {"OTEL_TRACES_EXPORTER": "jaeger_file", "ORCHESTRATOR_TRACES_FILE": str(traces), "JAEGER_UI_URL": UI_URL}

    completed = _orchestrator(
        tmp_path, "run", "brief", "-c", str(config), "--input", '{"service": "checkout"}', env=env
    )
    assert completed.returncode == 0, completed.stderr
    (match,) = _TRACE_LINE.finditer(completed.stderr)
    trace_id = match.group(1)
    assert match.group(2) == f"{UI_URL}/trace/{trace_id}"
    # The servers' own files were merged into ours and removed: one file to upload, no leftovers.
    assert sorted(path.name for path in tmp_path.glob("traces*.json")) == ["traces.json"]

    parsed = read_jaeger_file(traces)
    # Every trace in the file is whole: its spans carry its id, and every CHILD_OF reference
    # names a span of the same trace (no parent link lost when the servers' files were merged).
    for trace in parsed:
        span_ids = {span.span_id for span in trace.spans}
        assert len(span_ids) == len(trace.spans), f"duplicate spans in trace {trace.trace_id}"
        for span in trace.spans:
            assert span.trace_id == trace.trace_id
            for ref_type, ref_trace, ref_span in span.references:
                assert (ref_type, ref_trace) == ("CHILD_OF", trace.trace_id)
                assert ref_span in span_ids, f"{span.service}:{span.operation} points at a missing parent"

    (run,) = [trace for trace in parsed if trace.trace_id == trace_id]
    assert {span.service for span in run.spans} == {AGGREGATOR, "metrics", "tickets"}
    assert [span.operation for span in run.spans if not span.references] == ["orchestrator run brief"]

    metrics_calls = run.named("tools/call query_metrics")
    assert [span.tags.get("error.type") for span in metrics_calls] == ["tool_error", None]  # ANALYTICS_FLAKY=1
    assert metrics_calls[0].tags.get("error") is True  # the Jaeger UI draws it red
    assert run.chain(metrics_calls[-1]) == [
        ("metrics", "tools/call query_metrics"),
        (AGGREGATOR, "MCP send tools/call query_metrics"),
        (AGGREGATOR, "step latency"),
        (AGGREGATOR, "invoke_workflow brief"),
        (AGGREGATOR, "orchestrator run brief"),
    ]
    (step,) = run.named("step latency")
    assert step.log_events == ("retry",)
    ticket_calls = run.named("tools/call get_ticket")
    assert ticket_calls
    for call in ticket_calls:
        chain = run.chain(call)
        assert chain[:2] == [("tickets", "tools/call get_ticket"), (AGGREGATOR, "MCP send tools/call get_ticket")]
        assert re.fullmatch(r"step details\[\d+\]", chain[2][1])
        assert chain[3:] == [
            (AGGREGATOR, "step details"),
            (AGGREGATOR, "invoke_workflow brief"),
            (AGGREGATOR, "orchestrator run brief"),
        ]


def test_with_tracing_off_a_call_works_installs_nothing_and_exports_nothing(
    tmp_path: Path, otlp_receiver: OtlpReceiver
) -> None:
    # An endpoint in the config is not enough: without an exporter (default none) or an
    # OTEL_* variable, tracing stays off.
    config = write_config(tmp_path, {"f": fault_entry()}, tracing={"endpoint": otlp_receiver.url})

    completed = _orchestrator(tmp_path, "call", "f__env", "-c", str(config), "--args", '{"name": "OTEL_SERVICE_NAME"}')

    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == {"name": "OTEL_SERVICE_NAME", "set": False}  # nothing handed to children
    assert "trace:" not in completed.stderr
    assert otlp_receiver.requests == []  # the process has exited: anything it exported would be here
    assert not (tmp_path / "traces.json").exists()


def test_with_an_endpoint_variable_the_same_call_exports_its_trace_and_hands_the_variables_to_the_server(
    tmp_path: Path, otlp_receiver: OtlpReceiver
) -> None:
    config = write_config(tmp_path, {"f": fault_entry()})

    completed = _orchestrator(
        tmp_path,
        "call",
        "f__env",
        "-c",
        str(config),
        "--args",
        '{"name": "OTEL_SERVICE_NAME"}',
        env=export_env(otlp_receiver),
    )

    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == {"name": "OTEL_SERVICE_NAME", "set": True}
    (match,) = _TRACE_LINE.finditer(completed.stderr)
    trace = [span for span in otlp_receiver.spans if span.trace_id == match.group(1)]
    by_id = {span.span_id: span for span in trace}
    (client_span,) = [span for span in trace if span.name == "MCP send tools/call env"]
    root = by_id[client_span.parent_span_id or ""]
    assert (root.name, root.service_name, root.parent_span_id) == ("orchestrator call f__env", AGGREGATOR, None)
    assert client_span.attributes["mcp_orchestrator.server.key"] == "f"
