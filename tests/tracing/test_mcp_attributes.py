"""``McpAttributesProcessor`` fills in the MCP semconv attributes the MCP SDK leaves off its client spans."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Tracer

from orchestrator.telemetry import MCP_SDK_SCOPE, McpAttributesProcessor
from orchestrator.tracing import downstream_call_attributes

if TYPE_CHECKING:
    from collections.abc import Generator


@pytest.fixture
def exporter() -> Generator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Generator[TracerProvider]:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(McpAttributesProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
def sdk_tracer(provider: TracerProvider) -> Tracer:
    """A tracer with the MCP SDK's instrumentation scope, as the SDK's spans have."""
    return provider.get_tracer(MCP_SDK_SCOPE)


def only(exporter: InMemorySpanExporter) -> dict[str, object]:
    (span,) = exporter.get_finished_spans()
    return _attributes(span)


def _attributes(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


def test_a_tool_call_client_span_gets_the_tool_name_and_operation(
    sdk_tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with sdk_tracer.start_as_current_span(
        "MCP send tools/call query_metrics", kind=SpanKind.CLIENT, attributes={"mcp.method.name": "tools/call"}
    ):
        pass
    assert only(exporter) == {
        "mcp.method.name": "tools/call",
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "query_metrics",
    }


def test_a_prompt_get_client_span_gets_the_prompt_name(sdk_tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    with sdk_tracer.start_as_current_span(
        "MCP send prompts/get summarize", kind=SpanKind.CLIENT, attributes={"mcp.method.name": "prompts/get"}
    ):
        pass
    assert only(exporter)["gen_ai.prompt.name"] == "summarize"


def test_client_spans_inside_a_downstream_call_get_the_server_description(
    sdk_tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with (
        downstream_call_attributes(
            "docs", "http", address="127.0.0.1", port=9000, protocol_version="2025-11-25", session_id="sess-1"
        ),
        sdk_tracer.start_as_current_span(
            "MCP send tools/list", kind=SpanKind.CLIENT, attributes={"mcp.method.name": "tools/list"}
        ),
    ):
        pass
    assert only(exporter) == {
        "mcp.method.name": "tools/list",
        "mcp_orchestrator.server.key": "docs",
        "network.transport": "tcp",
        "network.protocol.name": "http",
        "server.address": "127.0.0.1",
        "server.port": 9000,
        "mcp.protocol.version": "2025-11-25",
        "mcp.session.id": "sess-1",
    }


def test_server_spans_and_other_scopes_are_left_alone(
    provider: TracerProvider, sdk_tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with downstream_call_attributes("db", "stdio"):
        with sdk_tracer.start_as_current_span(
            "tools/call query", kind=SpanKind.SERVER, attributes={"mcp.method.name": "tools/call"}
        ):
            pass
        with provider.get_tracer("somebody-else").start_as_current_span(
            "MCP send tools/call query", kind=SpanKind.CLIENT, attributes={"mcp.method.name": "tools/call"}
        ):
            pass
    for span in exporter.get_finished_spans():
        assert _attributes(span) == {"mcp.method.name": "tools/call"}


def test_client_spans_outside_a_downstream_call_get_only_what_their_name_says(
    sdk_tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with downstream_call_attributes("db", "stdio"):
        pass
    with sdk_tracer.start_as_current_span(
        "MCP send ping", kind=SpanKind.CLIENT, attributes={"mcp.method.name": "ping"}
    ):
        pass
    assert only(exporter) == {"mcp.method.name": "ping"}
