"""Span processors and exporters of our own: MCP attribute enrichment and the Jaeger-JSON file.

``McpAttributesProcessor`` fills the MCP semantic-convention attributes the MCP SDK leaves off
its client spans; ``JaegerJsonFileExporter`` writes finished spans as a file the Jaeger UI
opens; ``FlushingBatchSpanProcessor`` batches for an exporter and flushes it too. None
installs anything: ``_setup`` wires them into a provider.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Final, Protocol

from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
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
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from opentelemetry.context import Context

__all__ = [
    "MCP_SDK_SCOPE",
    "FlushingBatchSpanProcessor",
    "JaegerJsonFileExporter",
    "McpAttributesProcessor",
    "TimerFn",
    "span_record",
]

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


class TimerFn(Protocol):
    """Runs a function once, later, on another thread (``threading.Timer``; tests pass a fake)."""

    def __call__(self, delay_s: float, callback: Callable[[], None], /) -> Callable[[], None]:
        """Run ``callback`` after ``delay_s`` seconds; returns a function that cancels it if not started."""
        ...


def _thread_timer(delay_s: float, callback: Callable[[], None], /) -> Callable[[], None]:
    timer = threading.Timer(delay_s, callback)
    # A pending write must not keep the process alive: shutdown writes the file anyway.
    timer.daemon = True
    timer.start()
    return timer.cancel


class JaegerJsonFileExporter(SpanExporter):
    """Writes every span it is given to ``path`` in the Jaeger UI's "JSON File" upload format.

    Spans accumulate across ``export`` calls (grouped by trace, at most ``max_spans``, the
    oldest traces dropped first). The whole file is rewritten atomically, so it is always
    a complete, loadable document, but never on the exporting thread and at most once per
    ``write_interval_s``: an export leaves one write due at the interval's end (at once
    after a quiet interval), run by a timer thread, so a burst of exports costs one write.
    A write that took long spaces the next one out (at least ``WRITE_SPACING`` times its
    own duration), so writing a large file takes a bounded share of the time.
    ``force_flush`` and ``shutdown`` write what is due at once. A write serialises only
    the spans added since the last one (``JaegerTraceStore.text_pieces``), so an export
    costs its own spans, not everything exported before.
    """

    WRITE_SPACING: Final = 4.0
    """The least time between two timed writes, in durations of the last write."""

    def __init__(
        self,
        path: Path,
        max_spans: int = 50_000,
        *,
        write_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        timer: TimerFn = _thread_timer,
    ) -> None:
        """Set the exporter up; nothing is written before the first export or shutdown.

        Args:
            path: The file to write.
            max_spans: The most spans the file holds; past it the oldest whole traces go.
            write_interval_s: The least time between two timed writes (``force_flush``
                and ``shutdown`` write at once).
            clock: Seconds, monotonic (tests pass a fake to step through intervals).
            timer: Runs the write due at the end of an interval.
        """
        self.path = path
        self._store = JaegerTraceStore(max_spans)
        self._write_interval_s = write_interval_s
        self._clock = clock
        self._timer = timer
        # Held for whole writes (serialising and the file), so writes never overlap and an
        # older snapshot never replaces a newer one; `_lock` guards the state below briefly.
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self._unwritten = False
        self._written = False
        self._next_write_at = float("-inf")
        self._pending: tuple[object, Callable[[], None]] | None = None
        self._shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Add ``spans`` and make sure a write is due (nothing is written on this thread)."""
        with self._lock:
            if self._shut_down:
                return SpanExportResult.FAILURE
            self._store.add(span_record(span) for span in spans)
            self._unwritten = True
            if self._pending is None:
                self._schedule()
        return SpanExportResult.SUCCESS

    def _schedule(self) -> None:
        """Make a write due at the interval's end; the caller holds ``_lock``."""
        token = object()
        delay = max(0.0, self._next_write_at - self._clock())
        self._pending = (token, self._timer(delay, lambda: self._write_due(token)))

    def _write_due(self, token: object) -> None:
        with self._lock:
            # A timer cancelled too late to stop (force_flush wrote meanwhile) finds another token.
            if self._pending is None or self._pending[0] is not token or self._shut_down:
                return
            self._pending = None
        self._write(timed=True)

    def _cancel_pending(self) -> None:
        if self._pending is not None:
            _, cancel = self._pending
            self._pending = None
            cancel()

    def _write(self, *, timed: bool = False, even_if_unchanged: bool = False) -> bool:
        """Rewrite the file if spans were exported since the last write; False if it cannot be written."""
        with self._write_lock:
            with self._lock:
                if timed and self._clock() < self._next_write_at:
                    # Another write ran since this one was made due: the next is due an interval after it.
                    if self._unwritten and self._pending is None and not self._shut_down:
                        self._schedule()
                    return True
                if not (self._unwritten or even_if_unchanged):
                    return True
                self._unwritten = False
                started = self._clock()
                # Spans exported while this write runs are due no sooner than this; its end
                # may put the next write later still.
                self._next_write_at = started + self._write_interval_s
            try:
                write_atomically(self.path, self._store.text_pieces())
                written = True
            except OSError as exc:
                logger.warning("cannot write traces to %s: %s", self.path, exc)
                written = False
            ended = self._clock()
            with self._lock:
                self._written = self._written or written
                self._next_write_at = ended + max(self._write_interval_s, self.WRITE_SPACING * (ended - started))
                if not written:
                    # Tried again at the next export, flush or shutdown, not in a loop of its own.
                    self._unwritten = True
            return written

    def shutdown(self) -> None:
        """Write what is due; write the file also when empty, so the user finds one."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            self._cancel_pending()
            never_written = not self._written
        self._write(even_if_unchanged=never_written)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Write the file now if spans were exported since the last write; False if it cannot be written."""
        with self._lock:
            if self._shut_down:
                return True
            self._cancel_pending()
        return self._write()


class FlushingBatchSpanProcessor(BatchSpanProcessor):
    """A ``BatchSpanProcessor`` whose ``force_flush`` also flushes its exporter.

    The SDK's processor only hands the queued spans to the exporter; an exporter that holds
    work back itself (the Jaeger file coalesces its writes) would not finish it on a flush.
    """

    def __init__(self, span_exporter: SpanExporter) -> None:
        """Batch for ``span_exporter`` with the SDK's defaults (and its ``OTEL_BSP_*`` variables)."""
        super().__init__(span_exporter)
        self._flushed_exporter = span_exporter

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Export every queued span, then flush the exporter."""
        if not super().force_flush(timeout_millis):
            return False
        return self._flushed_exporter.force_flush(30000 if timeout_millis is None else timeout_millis)
