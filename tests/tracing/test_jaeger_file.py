"""The Jaeger-JSON file: what the Jaeger UI's "JSON File" upload reads, written by the exporter and merged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from orchestrator._files import write_atomically
from orchestrator.cli import main
from orchestrator.config import TracingSpec
from orchestrator.telemetry import (
    FILE_ENV,
    EventRecord,
    JaegerTraceStore,
    SpanRecord,
    configure_tracing,
    jaeger_document,
    merge_jaeger_files,
    read_jaeger_traces,
)
from orchestrator.tracing import mark_error, record_retry


def write_json(path: Path, document: object) -> None:
    write_atomically(path, json.dumps(document))


def load(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert set(document) >= {"data"}
    return document["data"]


def spans_by_name(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {span["operationName"]: span for span in trace["spans"]}


def tags(span_or_process: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span_or_process["tags"]}


def record(trace_id: int, span_id: int, parent: int | None, name: str, service: str, start: int = 0) -> SpanRecord:
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind="server" if parent else "client",
        start_ns=1_700_000_000_000_000_000 + start,
        end_ns=1_700_000_000_000_000_000 + start + 2_500_000,
        service_name=service,
        resource_attributes={"service.name": service, "host.name": "h"},
    )


def test_the_file_exporter_writes_one_trace_per_trace_id_with_child_of_references(tmp_path: Path) -> None:
    path = tmp_path / "traces.json"
    handle = configure_tracing(TracingSpec(exporter="file", file=path, service_name="agg"), {}, set_global=False)
    assert handle.provider is not None
    tracer = handle.provider.get_tracer("test", "1.2")
    for run in range(2):
        with tracer.start_as_current_span(f"invoke_workflow w{run}") as root:
            root.set_attributes({"n": 3, "ratio": 0.5, "ok": True, "names": ["a", "b"]})
            with tracer.start_as_current_span("step s", kind=SpanKind.CLIENT) as step:
                record_retry(step, 1, 0.2, "timeout")
                mark_error(step, "tool_error", "no")
    handle.shutdown()

    traces = load(path)
    assert len(traces) == 2
    for trace in traces:
        found = spans_by_name(trace)
        assert len(found) == 2
        root = next(span for name, span in found.items() if name.startswith("invoke_workflow"))
        step = found["step s"]
        assert {span["traceID"] for span in trace["spans"]} == {trace["traceID"]}
        assert len(trace["traceID"]) == 32
        assert len(step["spanID"]) == 16
        assert root["references"] == []
        assert step["references"] == [{"refType": "CHILD_OF", "traceID": trace["traceID"], "spanID": root["spanID"]}]
        assert step["startTime"] >= root["startTime"] > 1_600_000_000_000_000  # microseconds since the epoch
        assert isinstance(step["duration"], int)
        assert tags(root) | {"span.kind": "internal"} == {
            "n": 3,
            "ratio": 0.5,
            "ok": True,
            "names": '["a", "b"]',
            "span.kind": "internal",
            "otel.scope.name": "test",
            "otel.scope.version": "1.2",
        }
        step_tags = tags(step)
        assert step_tags["span.kind"] == "client"
        assert step_tags["error"] is True
        assert step_tags["otel.status_code"] == "ERROR"
        assert step_tags["otel.status_description"] == "no"
        assert step_tags["error.type"] == "tool_error"
        (log,) = step["logs"]
        assert {f["key"]: f["value"] for f in log["fields"]} == {
            "event": "retry",
            "mcp_orchestrator.retry.attempt": 1,
            "mcp_orchestrator.retry.delay_s": 0.2,
            "error.type": "timeout",
        }
        assert log["timestamp"] >= step["startTime"]
        (process_id,) = {span["processID"] for span in trace["spans"]}
        process = trace["processes"][process_id]
        assert process["serviceName"] == "agg"
        assert "service.name" not in tags(process)
        assert tags(process)["telemetry.sdk.language"] == "python"


def test_the_file_is_complete_after_every_export_and_accumulates(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    handle = configure_tracing(None, {"OTEL_TRACES_EXPORTER": "jaeger_file", FILE_ENV: str(path)}, set_global=False)
    assert handle.provider is not None
    tracer = handle.provider.get_tracer("test")
    with tracer.start_as_current_span("first"):
        pass
    assert handle.force_flush()
    assert [t["spans"][0]["operationName"] for t in load(path)] == ["first"]
    with tracer.start_as_current_span("second"):
        pass
    assert handle.force_flush()
    assert [t["spans"][0]["operationName"] for t in load(path)] == ["first", "second"]
    handle.shutdown()
    assert len(load(path)) == 2


def test_a_run_without_spans_still_leaves_a_loadable_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    configure_tracing(TracingSpec(exporter="file", file=path), {}, set_global=False).shutdown()
    assert load(path) == []


def test_the_store_drops_whole_old_traces_past_its_limit() -> None:
    store = JaegerTraceStore(max_spans=3)
    store.add([record(1, 11, None, "a", "s"), record(1, 12, 11, "b", "s")])
    store.add([record(2, 21, None, "c", "s"), record(2, 22, 21, "d", "s")])
    assert store.span_count == 2
    assert store.dropped_spans == 2
    (trace,) = store.document()["data"]
    assert trace["traceID"] == f"{2:032x}"


def test_events_and_odd_attribute_values_are_encoded_as_jaeger_tags() -> None:
    span = SpanRecord(
        trace_id=1,
        span_id=2,
        parent_span_id=None,
        name="x",
        kind="internal",
        start_ns=5_000,
        end_ns=4_000,
        service_name="s",
        attributes={"raw": b"\x01\x02", "map": {"k": [1, 2]}},
        events=(EventRecord("note", 6_000, {"text": "hi"}),),
    )
    (trace,) = jaeger_document([span])["data"]
    (encoded,) = trace["spans"]
    assert tags(encoded)["raw"] == '"0102"'
    assert tags(encoded)["map"] == '{"k": [1, 2]}'
    assert encoded["duration"] == 0
    assert encoded["logs"] == [
        {
            "timestamp": 6,
            "fields": [
                {"key": "event", "type": "string", "value": "note"},
                {"key": "text", "type": "string", "value": "hi"},
            ],
        }
    ]


# ------------------------------------------------------------------- merge


def test_merging_two_processes_files_gives_one_tree_per_trace_with_both_services(tmp_path: Path) -> None:
    aggregator, server = tmp_path / "traces.json", tmp_path / "traces.analytics.json"
    write_json(
        aggregator,
        jaeger_document([record(7, 1, None, "MCP send tools/call q", "agg"), record(8, 5, None, "other", "agg")]),
    )
    write_json(
        server,
        jaeger_document([record(7, 2, 1, "tools/call q", "analytics", start=1000), record(7, 1, None, "dup", "agg")]),
    )
    out = tmp_path / "merged.json"
    assert merge_jaeger_files([aggregator, server, tmp_path / "missing.json"], out) == 2

    merged = {trace["traceID"]: trace for trace in load(out)}
    shared = merged[f"{7:032x}"]
    found = spans_by_name(shared)
    assert set(found) == {"MCP send tools/call q", "tools/call q"}  # span 1 kept once
    server_span = found["tools/call q"]
    assert server_span["references"][0]["spanID"] == found["MCP send tools/call q"]["spanID"]
    services = {shared["processes"][span["processID"]]["serviceName"] for span in shared["spans"]}
    assert services == {"agg", "analytics"}
    assert len(shared["processes"]) == 2


def test_a_file_that_is_not_jaeger_json_is_refused_with_its_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceSpans": []}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.json"):
        read_jaeger_traces(bad)
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="not JSON"):
        read_jaeger_traces(bad)


def test_a_bare_list_or_single_trace_loads_like_the_ui_accepts(tmp_path: Path) -> None:
    (trace,) = jaeger_document([record(1, 1, None, "a", "s")])["data"]
    single, bare = tmp_path / "single.json", tmp_path / "bare.json"
    single.write_text(json.dumps(trace), encoding="utf-8")
    bare.write_text(json.dumps([trace]), encoding="utf-8")
    assert read_jaeger_traces(single) == read_jaeger_traces(bare) == [trace]


def test_the_merge_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "a.json"
    write_json(source, jaeger_document([record(1, 1, None, "a", "s")]))
    assert main(["traces", "merge", str(tmp_path / "out.json"), str(source)]) == 0
    assert "wrote 1 trace(s)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["traces", "merge", str(tmp_path / "out.json")])
    assert usage.value.code == 2
    (tmp_path / "bad.json").write_text("[1]", encoding="utf-8")
    assert main(["traces", "merge", str(tmp_path / "out.json"), str(tmp_path / "bad.json")]) == 1


def test_shutdown_merges_the_files_of_the_children_it_configured_and_removes_them(tmp_path: Path) -> None:
    path = tmp_path / "traces.json"
    handle = configure_tracing(TracingSpec(exporter="file", file=path, service_name="agg"), {}, set_global=False)
    assert handle.provider is not None
    with handle.provider.get_tracer("test").start_as_current_span("MCP send tools/call q") as client:
        ids = client.get_span_context()
    child_file = Path(handle.child_environment("analytics")[FILE_ENV])
    write_json(child_file, jaeger_document([record(ids.trace_id, 99, ids.span_id, "tools/call q", "analytics")]))
    stale = handle.child_trace_file("not-started")
    assert stale is not None
    write_json(stale, jaeger_document([record(12345, 1, None, "stale", "old")]))
    handle.shutdown()

    (trace,) = load(path)
    found = spans_by_name(trace)
    assert set(found) == {"MCP send tools/call q", "tools/call q"}
    assert found["tools/call q"]["references"][0]["spanID"] == f"{ids.span_id:016x}"
    assert not child_file.exists()  # merged, so removed
    assert stale.exists()  # not merged (not from this run), so not ours to remove
