"""One trace across processes: this test process calls a bundled example server over stdio.

The child is configured only by the ``OTEL_*`` variables it is given; the MCP SDK carries
``traceparent`` in ``params._meta``, so the child's SERVER span must be a child of the
CLIENT span made here, under one trace id.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from mcp import Client, StdioServerParameters

from orchestrator.config import TracingSpec
from orchestrator.telemetry import configure_tracing
from orchestrator.tracing import downstream_call_attributes, tracer
from tests.tracing.harness import TEST_SERVICE_NAME, capture_spans, export_spans_to

if TYPE_CHECKING:
    from tests.otlp_receiver import OtlpReceiver, ReceivedSpan, SpanPredicate

pytestmark = pytest.mark.anyio

REPO_ROOT = Path(__file__).resolve().parents[2]
CALL_TIMEOUT = 30.0
QUERY = {"service": "checkout", "metric": "error_rate", "hours": 2}


def analytics(env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "examples.servers.analytics"], cwd=REPO_ROOT, env=env
    )


def has_server_calls(count: int) -> SpanPredicate:
    def predicate(spans: list[ReceivedSpan]) -> bool:
        return sum(s.kind == "SERVER" and s.name == "tools/call query_metrics" for s in spans) >= count

    return predicate


async def test_an_example_servers_span_is_the_child_of_the_callers_client_span_in_one_trace(
    otlp_receiver: OtlpReceiver,
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.url, "ANALYTICS_FLAKY": "1"}
    with (
        export_spans_to(otlp_receiver.url),
        tracer.start_as_current_span("caller"),
        downstream_call_attributes("analytics", "stdio"),
    ):
        async with Client(analytics(env), read_timeout_seconds=CALL_TIMEOUT) as client:
            flaky = await client.call_tool("query_metrics", QUERY)
            ok = await client.call_tool("query_metrics", QUERY)
    assert flaky.is_error
    assert not ok.is_error

    spans = otlp_receiver.wait_for(has_server_calls(2), timeout=30)
    caller = otlp_receiver.one("caller")
    assert {span.trace_id for span in spans} == {caller.trace_id}
    clients = [s for s in spans if s.kind == "CLIENT" and s.name == "MCP send tools/call query_metrics"]
    servers = [s for s in spans if s.kind == "SERVER" and s.name == "tools/call query_metrics"]
    assert len(clients) == len(servers) == 2
    for client_span in clients:
        assert client_span.service_name == TEST_SERVICE_NAME
        assert client_span.parent_span_id == caller.span_id
        # Filled in by McpAttributesProcessor: the SDK leaves these out.
        assert client_span.attributes["gen_ai.tool.name"] == "query_metrics"
        assert client_span.attributes["network.transport"] == "pipe"
        assert client_span.attributes["mcp_orchestrator.server.key"] == "analytics"
    by_parent = {s.parent_span_id: s for s in servers}
    assert set(by_parent) == {c.span_id for c in clients}
    for server_span in servers:
        assert server_span.service_name == "analytics"
        assert server_span.attributes["gen_ai.tool.name"] == "query_metrics"
    first, second = sorted(clients, key=lambda s: s.start_ns)
    assert by_parent[first.span_id].status_code == "ERROR"
    assert by_parent[first.span_id].attributes["error.type"] == "tool_error"
    assert by_parent[second.span_id].status_code == "UNSET"


async def test_the_offline_file_workflow_merges_the_servers_file_into_one_tree(tmp_path: Path) -> None:
    path = tmp_path / "traces.json"
    handle = configure_tracing(TracingSpec(exporter="file", file=path, service_name="agg"), {}, set_global=False)
    child_env = handle.child_environment("analytics")
    with capture_spans() as captured, tracer.start_as_current_span("caller"):
        async with Client(analytics(child_env), read_timeout_seconds=CALL_TIMEOUT) as client:
            result = await client.call_tool("query_metrics", QUERY)
    assert not result.is_error
    handle.shutdown()

    (client_span,) = [s for s in captured.get_finished_spans() if s.name == "MCP send tools/call query_metrics"]
    assert client_span.context is not None
    (trace,) = (t for t in json.loads(path.read_text(encoding="utf-8"))["data"])
    assert trace["traceID"] == f"{client_span.context.trace_id:032x}"
    (server_span,) = [s for s in trace["spans"] if s["operationName"] == "tools/call query_metrics"]
    assert server_span["references"] == [
        {"refType": "CHILD_OF", "traceID": trace["traceID"], "spanID": f"{client_span.context.span_id:016x}"}
    ]
    assert trace["processes"][server_span["processID"]]["serviceName"] == "analytics"
