"""Test-side OpenTelemetry wiring: one global tracer provider per test session, routed per test.

The global provider can be set only once per process, and the MCP SDK's and the
orchestrator's module-level tracers bind to the first one for good. So the session gets one
SDK provider (with the orchestrator's ``McpAttributesProcessor``), and each test attaches
its own processor to a router for the test's duration: ``capture_spans()`` for an
in-memory exporter, ``export_spans_to(url)`` for real OTLP/HTTP export to a receiver.
If something else installed an SDK provider first, the router is added to that one.
Importable from any test folder.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from orchestrator.telemetry import McpAttributesProcessor

if TYPE_CHECKING:
    from collections.abc import Generator

    from opentelemetry.context import Context

__all__ = ["TEST_SERVICE_NAME", "capture_spans", "export_spans_to", "global_router"]

TEST_SERVICE_NAME = "pytest"


class _Router(SpanProcessor):
    """Forwards span starts and ends to the processors attached right now."""

    def __init__(self) -> None:
        self._processors: tuple[SpanProcessor, ...] = ()
        self._lock = threading.Lock()

    def attach(self, processor: SpanProcessor) -> None:
        with self._lock:
            self._processors = (*self._processors, processor)

    def detach(self, processor: SpanProcessor) -> None:
        with self._lock:
            self._processors = tuple(p for p in self._processors if p is not processor)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for processor in self._processors:
            processor.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self._processors:
            processor.on_end(span)

    def shutdown(self) -> None:
        for processor in self._processors:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(processor.force_flush(timeout_millis) for processor in self._processors)


_router: _Router | None = None
_install_lock = threading.Lock()


def global_router() -> _Router:
    """The session's router, installing the global provider on first use."""
    global _router
    with _install_lock:
        if _router is None:
            router = _Router()
            current = trace.get_tracer_provider()
            if isinstance(current, TracerProvider):
                current.add_span_processor(McpAttributesProcessor())
                current.add_span_processor(router)
            else:
                provider = TracerProvider(
                    resource=Resource.create({"service.name": TEST_SERVICE_NAME}), shutdown_on_exit=False
                )
                provider.add_span_processor(McpAttributesProcessor())
                provider.add_span_processor(router)
                trace.set_tracer_provider(provider)
            _router = router
        return _router


@contextmanager
def capture_spans() -> Generator[InMemorySpanExporter]:
    """Collect the spans that end inside the block (any tracer of this process) in memory."""
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    router = global_router()
    router.attach(processor)
    try:
        yield exporter
    finally:
        router.detach(processor)


@contextmanager
def export_spans_to(base_url: str) -> Generator[None]:
    """Export the spans that end inside the block over real OTLP/HTTP to ``base_url``; flushed on exit."""
    processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base_url}/v1/traces"), schedule_delay_millis=50)
    router = global_router()
    router.attach(processor)
    try:
        yield
    finally:
        router.detach(processor)
        processor.force_flush(10_000)
        processor.shutdown()
