"""Span processors and exporters of our own: MCP attribute enrichment and the Jaeger-JSON file.

``McpAttributesProcessor`` fills the MCP semantic-convention attributes the MCP SDK leaves off
its client spans; ``JaegerJsonFileExporter`` writes finished spans as a file the Jaeger UI
opens. Neither installs anything: ``_setup`` wires them into a provider.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Final

from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import (
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind

from orchestrator._files import write_atomically
from orchestrator.telemetry._jaeger_file import (
    EventRecord,
    JaegerTraceStore,
    LinkRecord,
    SpanRecord,
)
from orchestrator.tracing import current_downstream_call

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from opentelemetry.context import Context

__all__ = ["MCP_SDK_SCOPE", "JaegerJsonFileExporter", "McpAttributesProcessor", "span_record"]

logger = logging.getLogger(__name__)

MCP_SDK_SCOPE: Final = "mcp-python-sdk"


# ---------------------------------------------------------- span enrichment


def _target(span_name: str, method: str) -> str | None:
    prefix = f"MCP send {method} "
    if not span_name.startswith(prefix):
        return None
    return span_name[len(prefix) :] or None


class McpAttributesProcessor(SpanProcessor):
    """Fills the MCP semantic-convention attributes the MCP SDK leaves off its CLIENT spans.

    For spans of the ``mcp-python-sdk`` scope of kind CLIENT, at start: ``gen_ai.tool.name``
    and ``gen_ai.operation.name=execute_tool`` for ``tools/call`` (the tool name is only in
    the span name), ``gen_ai.prompt.name`` for ``prompts/get``, and whatever the library set
    with ``orchestrator.tracing.downstream_call_attributes`` (``network.transport``,
    ``server.address``/``port``, ``mcp.protocol.version``, ``mcp.session.id``). Attributes
    cannot change after a span ends, so ``error.type=tool_error`` for ``isError`` results
    is set by the library on a span it owns (the step span).
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Add the missing attributes to an MCP SDK client span."""
        scope = span.instrumentation_scope
        if scope is None or scope.name != MCP_SDK_SCOPE or span.kind is not SpanKind.CLIENT:
            return
        method = (span.attributes or {}).get("mcp.method.name")
        if isinstance(method, str):
            target = _target(span.name, method)
            if method == "tools/call":
                span.set_attribute("gen_ai.operation.name", "execute_tool")
                if target is not None:
                    span.set_attribute("gen_ai.tool.name", target)
            elif method == "prompts/get" and target is not None:
                span.set_attribute("gen_ai.prompt.name", target)
        call = current_downstream_call()
        if call is not None:
            span.set_attributes(call.span_attributes())

    def on_end(self, span: ReadableSpan) -> None:
        """Nothing: ended spans are read-only."""

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing buffered."""
        return True


# ------------------------------------------------------------ file exporter


def span_record(span: ReadableSpan) -> SpanRecord:
    """The exporter-independent record of a finished SDK span."""
    context = span.get_span_context()
    assert context is not None, "an SDK span always has a context"
    scope = span.instrumentation_scope
    resource = dict(span.resource.attributes)
    return SpanRecord(
        trace_id=context.trace_id,
        span_id=context.span_id,
        parent_span_id=span.parent.span_id if span.parent is not None else None,
        name=span.name,
        kind=span.kind.name.lower(),
        start_ns=span.start_time or 0,
        end_ns=span.end_time or span.start_time or 0,
        service_name=str(resource.get("service.name", "unknown_service")),
        attributes=dict(span.attributes or {}),
        events=tuple(EventRecord(e.name, e.timestamp, dict(e.attributes or {})) for e in span.events),
        links=tuple(LinkRecord(link.context.trace_id, link.context.span_id) for link in span.links if link.context),
        status_code=span.status.status_code.name,
        status_message=span.status.description,
        resource_attributes=resource,
        scope_name=scope.name if scope is not None else None,
        scope_version=scope.version if scope is not None else None,
    )


class JaegerJsonFileExporter(SpanExporter):
    """Writes every span it is given to ``path`` in the Jaeger UI's "JSON File" upload format.

    Spans accumulate across ``export`` calls (grouped by trace, at most ``max_spans``, the
    oldest traces dropped first) and the whole file is rewritten atomically on each export
    and at shutdown, so it is always a complete, loadable document.
    """

    def __init__(self, path: Path, max_spans: int = 50_000) -> None:
        self.path = path
        self._store = JaegerTraceStore(max_spans)
        self._lock = threading.Lock()
        self._shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Add ``spans`` and rewrite the file."""
        if self._shut_down:
            return SpanExportResult.FAILURE
        self._store.add(span_record(span) for span in spans)
        return SpanExportResult.SUCCESS if self._write() else SpanExportResult.FAILURE

    def _write(self) -> bool:
        with self._lock:
            try:
                write_atomically(self.path, self._store.text())
            except OSError as exc:
                logger.warning("cannot write traces to %s: %s", self.path, exc)
                return False
        return True

    def shutdown(self) -> None:
        """Write the file a last time (also when empty, so the user finds one)."""
        if not self._shut_down:
            self._shut_down = True
            self._write()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing buffered: every export already wrote the file."""
        return True
