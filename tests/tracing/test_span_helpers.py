"""The span helpers of ``orchestrator.tracing``: names, kinds, attributes, events, error marking, context."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import httpx2
import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.trace import SpanKind, StatusCode

from orchestrator.tracing import (
    ATTR_FOREACH_COUNT,
    ATTR_ITEM_INDEX,
    ATTR_RUN_ID,
    ATTR_RUN_STATUS,
    ATTR_STEP_ATTEMPTS,
    ATTR_STEP_ID,
    ATTR_STEP_STATUS,
    ATTR_STEP_TOOL,
    ATTR_WORKFLOW_INPUT_SIZE,
    DownstreamCall,
    copy_trace_context_to_headers,
    current_downstream_call,
    current_trace_id,
    downstream_call_attributes,
    finish_step,
    finish_workflow,
    http_address,
    item_span,
    mark_error,
    record_retry,
    step_span,
    trace_headers_from_jsonrpc,
    trace_meta,
    tracer,
    workflow_span,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_workflow_step_and_item_spans_form_one_tree_with_the_documented_names_and_attributes(
    spans: InMemorySpanExporter,
) -> None:
    with workflow_span("incident_report", "run-1", input_size=42) as run:
        with step_span("metrics", "analytics.query_metrics") as step:
            finish_step(step, "succeeded", 1)
        with step_span("details", "tracker.get_ticket", for_each_count=2) as fan_out:
            for index in range(2):
                with item_span("details", index) as item:
                    finish_step(item, "succeeded", 1)
            finish_step(fan_out, "succeeded", 1)
        finish_workflow(run, "succeeded")

    found = by_name(spans)
    assert set(found) == {
        "invoke_workflow incident_report",
        "step metrics",
        "step details",
        "step details[0]",
        "step details[1]",
    }
    root = found["invoke_workflow incident_report"]
    assert root.kind is SpanKind.INTERNAL
    assert root.attributes is not None
    assert dict(root.attributes) == {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": "incident_report",
        ATTR_RUN_ID: "run-1",
        ATTR_WORKFLOW_INPUT_SIZE: 42,
        ATTR_RUN_STATUS: "succeeded",
    }
    assert root.status.status_code is StatusCode.UNSET
    root_id = root.context.span_id if root.context else None
    for name in ("step metrics", "step details"):
        parent = found[name].parent
        assert parent is not None
        assert parent.span_id == root_id
    details = found["step details"]
    assert details.attributes is not None
    assert details.attributes[ATTR_STEP_ID] == "details"
    assert details.attributes[ATTR_STEP_TOOL] == "tracker.get_ticket"
    assert details.attributes[ATTR_FOREACH_COUNT] == 2
    item = found["step details[1]"]
    assert item.attributes is not None
    assert item.attributes[ATTR_ITEM_INDEX] == 1
    assert item.parent is not None
    assert details.context is not None
    assert item.parent.span_id == details.context.span_id
    trace_ids = {span.context.trace_id for span in found.values() if span.context}
    assert len(trace_ids) == 1


def test_retries_are_events_on_the_step_span_and_a_failed_step_marks_step_and_run_as_errors(
    spans: InMemorySpanExporter,
) -> None:
    with workflow_span("report", "run-2") as run:
        with step_span("metrics", "analytics.query_metrics") as step:
            record_retry(step, 1, 0.2, "transport_error")
            record_retry(step, 2, 0.4, "timeout")
            finish_step(step, "failed", 3, error_type="tool_error", message="upstream said no")
        finish_workflow(run, "failed", failed_step="metrics", error_type="tool_error", message="step metrics failed")

    found = by_name(spans)
    step_span_ = found["step metrics"]
    assert [event.name for event in step_span_.events] == ["retry", "retry"]
    first = step_span_.events[0].attributes
    assert first is not None
    assert dict(first) == {
        "mcp_orchestrator.retry.attempt": 1,
        "mcp_orchestrator.retry.delay_s": 0.2,
        "error.type": "transport_error",
    }
    assert step_span_.status.status_code is StatusCode.ERROR
    assert step_span_.status.description == "upstream said no"
    assert step_span_.attributes is not None
    assert step_span_.attributes["error.type"] == "tool_error"
    assert step_span_.attributes[ATTR_STEP_STATUS] == "failed"
    assert step_span_.attributes[ATTR_STEP_ATTEMPTS] == 3
    run_span = found["invoke_workflow report"]
    assert run_span.status.status_code is StatusCode.ERROR
    assert run_span.attributes is not None
    assert run_span.attributes["error.type"] == "tool_error"
    assert run_span.attributes["mcp_orchestrator.run.failed_step"] == "metrics"


@pytest.mark.parametrize("status", ["succeeded", "skipped", "cancelled"])
def test_steps_that_did_not_fail_keep_an_unset_status(spans: InMemorySpanExporter, status: str) -> None:
    with step_span("s", "a.b") as span:
        finish_step(span, status, 1)  # pyright: ignore[reportArgumentType] - parametrized with valid literals
    (finished,) = spans.get_finished_spans()
    assert finished.status.status_code is StatusCode.UNSET
    assert finished.attributes is not None
    assert "error.type" not in finished.attributes


def test_unknown_outcome_is_an_error_of_its_own_class(spans: InMemorySpanExporter) -> None:
    with step_span("charge", "payments.charge") as span:
        finish_step(span, "unknown_outcome", 1)
    (finished,) = spans.get_finished_spans()
    assert finished.status.status_code is StatusCode.ERROR
    assert finished.attributes is not None
    assert finished.attributes["error.type"] == "unknown_outcome"


def test_an_exception_escaping_a_step_marks_it_with_the_exception_class_and_propagates(
    spans: InMemorySpanExporter,
) -> None:
    with pytest.raises(LookupError), step_span("s", "a.b"):
        raise LookupError("no such row")
    (finished,) = spans.get_finished_spans()
    assert finished.status.status_code is StatusCode.ERROR
    assert finished.attributes is not None
    assert finished.attributes["error.type"] == "LookupError"
    assert [event.name for event in finished.events] == ["exception"]


def test_an_exception_after_the_step_was_marked_keeps_the_more_specific_error_type(
    spans: InMemorySpanExporter,
) -> None:
    def run_step() -> None:
        with step_span("s", "a.b") as span:
            finish_step(span, "failed", 2, error_type="tool_error")
            raise RuntimeError("step failed")

    with pytest.raises(RuntimeError):
        run_step()
    (finished,) = spans.get_finished_spans()
    assert finished.attributes is not None
    assert finished.attributes["error.type"] == "tool_error"


@pytest.mark.anyio
async def test_a_cancelled_step_is_not_marked_as_an_error(spans: InMemorySpanExporter) -> None:
    with anyio.move_on_after(0.01), step_span("slow", "a.b"):
        await anyio.sleep(5)
    (finished,) = spans.get_finished_spans()
    assert finished.status.status_code is StatusCode.UNSET


def test_mark_error_sets_error_type_and_status(spans: InMemorySpanExporter) -> None:
    with tracer.start_as_current_span("call") as span:
        mark_error(span, "-32602", "Invalid params")
    (finished,) = spans.get_finished_spans()
    assert finished.attributes is not None
    assert finished.attributes["error.type"] == "-32602"
    assert finished.status.status_code is StatusCode.ERROR
    assert finished.status.description == "Invalid params"


def test_helpers_accept_non_recording_spans_silently() -> None:
    span = trace.INVALID_SPAN
    mark_error(span, "x")
    record_retry(span, 1, 0.1, "timeout")
    finish_step(span, "failed", 1)
    finish_workflow(span, "failed")
    assert not span.is_recording()


def test_current_trace_id_is_the_hex_id_of_the_recording_span_and_none_outside_one(
    spans: InMemorySpanExporter,
) -> None:
    assert current_trace_id() is None
    with tracer.start_as_current_span("x") as span:
        assert current_trace_id() == f"{span.get_span_context().trace_id:032x}"
    assert current_trace_id() is None
    with trace.use_span(trace.INVALID_SPAN):
        assert current_trace_id() is None


def test_trace_meta_carries_traceparent_and_baggage_of_the_current_context(spans: InMemorySpanExporter) -> None:
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        with tracer.start_as_current_span("x") as span:
            meta = trace_meta()
    finally:
        context.detach(token)
    ids = span.get_span_context()
    assert meta["traceparent"].startswith(f"00-{ids.trace_id:032x}-{ids.span_id:016x}-")
    assert meta["baggage"] == "tenant=acme"


def test_downstream_call_attributes_are_scoped_to_the_block_and_nest() -> None:
    assert current_downstream_call() is None
    with downstream_call_attributes("db", "stdio") as outer:
        assert current_downstream_call() is outer
        with downstream_call_attributes("docs", "http", address="127.0.0.1", port=9000) as inner:
            assert current_downstream_call() is inner
        assert current_downstream_call() is outer
    assert current_downstream_call() is None


def test_downstream_call_span_attributes_follow_the_mcp_semantic_conventions() -> None:
    stdio = DownstreamCall("db", "stdio", protocol_version="2025-11-25")
    assert stdio.span_attributes() == {
        "mcp_orchestrator.server.key": "db",
        "network.transport": "pipe",
        "mcp.protocol.version": "2025-11-25",
    }
    http = DownstreamCall("docs", "http", address="docs.internal", port=443, session_id="abc")
    assert http.span_attributes() == {
        "mcp_orchestrator.server.key": "docs",
        "network.transport": "tcp",
        "network.protocol.name": "http",
        "server.address": "docs.internal",
        "server.port": 443,
        "mcp.session.id": "abc",
    }


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:9000/mcp", ("127.0.0.1", 9000)),
        ("https://docs.example.com/mcp", ("docs.example.com", 443)),
        ("http://localhost/mcp", ("localhost", 80)),
        ("http://[::1]:8080/", ("::1", 8080)),
    ],
)
def test_http_address_gives_host_and_port_with_scheme_defaults(url: str, expected: tuple[str, int]) -> None:
    assert http_address(url) == expected


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"q","_meta":'
            b'{"traceparent":"' + TRACEPARENT.encode() + b'","tracestate":"k=v","progressToken":1}}}',
            {"traceparent": TRACEPARENT, "tracestate": "k=v"},
        ),
        (
            b'[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"ping",'
            b'"params":{"_meta":{"traceparent":"' + TRACEPARENT.encode() + b'","baggage":"a=b"}}}]',
            {"traceparent": TRACEPARENT, "baggage": "a=b"},
        ),
        (b'{"jsonrpc":"2.0","id":1,"method":"ping"}', {}),
        (b'{"jsonrpc":"2.0","id":1,"result":{}}', {}),
        (b"not json", {}),
        (b"\xff\xfe", {}),
    ],
)
def test_trace_headers_come_from_the_jsonrpc_meta(body: bytes, expected: dict[str, str]) -> None:
    assert trace_headers_from_jsonrpc(body) == expected


@pytest.mark.anyio
async def test_the_httpx_hook_copies_the_meta_trace_context_into_headers() -> None:
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {"traceparent": TRACEPARENT}}}
    request = httpx2.Request("POST", "http://127.0.0.1:1/mcp", json=message)
    await copy_trace_context_to_headers(request)
    assert request.headers["traceparent"] == TRACEPARENT

    streamed = httpx2.Request("POST", "http://127.0.0.1:1/mcp", content=_chunks())
    await copy_trace_context_to_headers(streamed)
    assert "traceparent" not in streamed.headers


async def _chunks() -> AsyncIterator[bytes]:  # pragma: no cover - never consumed
    yield b"{}"
