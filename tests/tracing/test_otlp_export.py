"""Real OTLP/HTTP export, configured only by variables, into the test receiver on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
import zlib
from typing import TYPE_CHECKING

import pytest
from opentelemetry.trace import SpanKind

from orchestrator.config import TracingSpec
from orchestrator.telemetry import configure_tracing
from orchestrator.tracing import finish_step, finish_workflow, mark_error, record_retry, step_span, workflow_span
from tests.otlp_receiver import OtlpReceiver, by_id
from tests.tracing.harness import TEST_SERVICE_NAME, export_spans_to

if TYPE_CHECKING:
    from collections.abc import Callable


def test_configure_tracing_exports_parent_links_attributes_events_status_and_service_name(
    otlp_receiver: OtlpReceiver,
) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.url,
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
    }
    spec = TracingSpec(service_name="ignored-by-variable")
    handle = configure_tracing(spec, {**env, "OTEL_SERVICE_NAME": "agg"}, set_global=False)
    assert handle.provider is not None
    tracer = handle.provider.get_tracer("test")
    with (
        tracer.start_as_current_span("parent", attributes={"k": "v"}),
        tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child,
    ):
        record_retry(child, 1, 0.25, "timeout")
        mark_error(child, "tool_error", "the tool said no")
    handle.shutdown()

    spans = otlp_receiver.wait_for(2)
    parent, child_span = otlp_receiver.one("parent"), otlp_receiver.one("child")
    assert child_span.parent_span_id == parent.span_id
    assert child_span.trace_id == parent.trace_id
    assert parent.parent_span_id is None
    assert parent.attributes == {"k": "v"}
    assert child_span.kind == "CLIENT"
    assert child_span.status_code == "ERROR"
    assert child_span.status_message == "the tool said no"
    assert child_span.attributes["error.type"] == "tool_error"
    (retry,) = child_span.events
    assert retry.name == "retry"
    assert retry.attributes == {
        "mcp_orchestrator.retry.attempt": 1,
        "mcp_orchestrator.retry.delay_s": 0.25,
        "error.type": "timeout",
    }
    assert {span.service_name for span in spans} == {"agg"}
    assert parent.resource_attributes["deployment.environment"] == "test"
    assert otlp_receiver.requests[0].content_type == "application/x-protobuf"


def test_the_exporters_own_variables_apply_too_gzip_compression(
    otlp_receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    handle = configure_tracing(None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": otlp_receiver.traces_url}, set_global=False)
    assert handle.provider is not None
    with handle.provider.get_tracer("test").start_as_current_span("compressed"):
        pass
    handle.shutdown()
    otlp_receiver.wait_for(1)
    assert otlp_receiver.requests[0].content_encoding == "gzip"


def test_workflow_helpers_through_the_global_provider_arrive_as_one_tree(otlp_receiver: OtlpReceiver) -> None:
    with export_spans_to(otlp_receiver.url), workflow_span("incident_report", "run-9") as run:
        with step_span("metrics", "analytics.query_metrics") as step:
            record_retry(step, 1, 0.2, "transport_error")
            finish_step(step, "failed", 2, error_type="tool_error")
        finish_workflow(run, "failed", failed_step="metrics", error_type="tool_error")

    otlp_receiver.wait_for(2)
    run_span = otlp_receiver.one("invoke_workflow incident_report")
    step = otlp_receiver.one("step metrics")
    assert step.parent_span_id == run_span.span_id
    assert run_span.status_code == step.status_code == "ERROR"
    assert run_span.attributes["mcp_orchestrator.run.id"] == "run-9"
    assert [event.name for event in step.events] == ["retry"]
    assert run_span.service_name == TEST_SERVICE_NAME
    assert run_span.scope_name == "mcp-orchestrator"
    assert set(by_id(otlp_receiver.spans)) == {run_span.span_id, step.span_id}


# ------------------------------------------------------------ the receiver


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


OTLP_JSON = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "hand-written"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "manual"},
                    "spans": [
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174",
                            "parentSpanId": "eee19b7ec3c1b173",
                            "name": "hand span",
                            "kind": 3,
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": "1544712661000000000",
                            "attributes": [
                                {"key": "n", "value": {"intValue": "7"}},
                                {"key": "list", "value": {"arrayValue": {"values": [{"boolValue": True}]}}},
                            ],
                            "status": {"code": 2, "message": "bad"},
                        }
                    ],
                }
            ],
        }
    ]
}


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("", bytes), ("gzip", gzip.compress), ("deflate", zlib.compress)],
)
def test_the_receiver_decodes_otlp_json_with_hex_ids_plain_or_compressed(
    otlp_receiver: OtlpReceiver, encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    body = compress(json.dumps(OTLP_JSON).encode())
    headers = {"Content-Type": "application/json"} | ({"Content-Encoding": encoding} if encoding else {})
    assert _post(otlp_receiver.traces_url, body, headers) == 200
    (span,) = otlp_receiver.wait_for(1)
    assert span.trace_id == "5b8efff798038103d269b633813fc60c"
    assert span.span_id == "eee19b7ec3c1b174"
    assert span.parent_span_id == "eee19b7ec3c1b173"
    assert span.kind == "CLIENT"
    assert span.attributes == {"n": 7, "list": [True]}
    assert (span.status_code, span.status_message) == ("ERROR", "bad")
    assert span.service_name == "hand-written"
    assert span.scope_name == "manual"


def test_the_receiver_rejects_other_paths_and_garbage(otlp_receiver: OtlpReceiver) -> None:
    assert _post(otlp_receiver.url + "/v1/metrics", b"x", {"Content-Type": "application/x-protobuf"}) == 404
    assert _post(otlp_receiver.traces_url, b"\xff\xff\xff", {"Content-Type": "application/x-protobuf"}) == 400
    assert _post(otlp_receiver.traces_url, b"{", {"Content-Type": "application/json"}) == 400
    assert _post(otlp_receiver.traces_url, b"x", {"Content-Encoding": "br"}) == 400
    assert otlp_receiver.spans == []


def test_wait_for_times_out_with_a_message_listing_what_arrived(otlp_receiver: OtlpReceiver) -> None:
    with pytest.raises(TimeoutError, match="got: nothing"):
        otlp_receiver.wait_for(1, timeout=0.05)
