"""A real OTLP/HTTP trace receiver on 127.0.0.1, for tests that check what processes export.

It stands in for Jaeger's port 4318 (no Jaeger binary can be installed on CI machines):
``POST /v1/traces`` with a protobuf ``ExportTraceServiceRequest`` or its OTLP/JSON form
(hex ids, integer enums), optionally gzip- or deflate-compressed, answered 200 with an
empty ``ExportTraceServiceResponse`` in the request's encoding. Spans are stored flattened
(hex ids, plain-Python attributes, ``service.name`` from the resource) and tests wait for
them with ``wait_for`` instead of sleeping.

Point a process at it with ``OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url``. Usable from any
test folder (``from tests.otlp_receiver import OtlpReceiver``); ``tests/tracing/conftest.py``
wraps it as the ``otlp_receiver`` fixture.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self, cast

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from orchestrator._files import write_atomically
from orchestrator.telemetry import EventRecord, LinkRecord, SpanRecord, jaeger_document

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ["OtlpReceiver", "ReceivedEvent", "ReceivedRequest", "ReceivedSpan", "SpanPredicate", "by_id"]

TRACES_PATH = "/v1/traces"
_MAX_BODY = 64 * 1024 * 1024
_KINDS = {
    Span.SPAN_KIND_UNSPECIFIED: "UNSPECIFIED",
    Span.SPAN_KIND_INTERNAL: "INTERNAL",
    Span.SPAN_KIND_SERVER: "SERVER",
    Span.SPAN_KIND_CLIENT: "CLIENT",
    Span.SPAN_KIND_PRODUCER: "PRODUCER",
    Span.SPAN_KIND_CONSUMER: "CONSUMER",
}
_STATUS = {Status.STATUS_CODE_UNSET: "UNSET", Status.STATUS_CODE_OK: "OK", Status.STATUS_CODE_ERROR: "ERROR"}


def write_json(path: Path, document: object) -> None:
    write_atomically(path, json.dumps(document))


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """A span event as received."""

    name: str
    time_ns: int
    attributes: dict[str, Any] = field(default_factory=dict[str, Any])


@dataclass(frozen=True, slots=True)
class ReceivedSpan:
    """A span as received, flattened: ids in lowercase hex, attributes as plain Python values."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    """``INTERNAL``, ``SERVER``, ``CLIENT``, ``PRODUCER``, ``CONSUMER`` or ``UNSPECIFIED``."""
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: tuple[ReceivedEvent, ...]
    links: tuple[tuple[str, str], ...]
    status_code: str
    """``UNSET``, ``OK`` or ``ERROR``."""
    status_message: str
    service_name: str
    resource_attributes: dict[str, Any]
    scope_name: str
    scope_version: str

    def to_record(self) -> SpanRecord:
        """This span as an ``orchestrator._jaeger_file.SpanRecord`` (to write Jaeger JSON)."""
        return SpanRecord(
            trace_id=int(self.trace_id, 16),
            span_id=int(self.span_id, 16),
            parent_span_id=int(self.parent_span_id, 16) if self.parent_span_id else None,
            name=self.name,
            kind=self.kind.lower() if self.kind != "UNSPECIFIED" else "internal",
            start_ns=self.start_ns,
            end_ns=self.end_ns,
            service_name=self.service_name,
            attributes=self.attributes,
            events=tuple(EventRecord(e.name, e.time_ns, e.attributes) for e in self.events),
            links=tuple(LinkRecord(int(t, 16), int(s, 16)) for t, s in self.links),
            status_code=self.status_code,
            status_message=self.status_message or None,
            resource_attributes=self.resource_attributes,
            scope_name=self.scope_name or None,
            scope_version=self.scope_version or None,
        )


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One accepted export request, for tests of the wire format (encoding, compression)."""

    content_type: str
    content_encoding: str
    span_count: int


SpanPredicate = Callable[[list[ReceivedSpan]], bool]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if kind is None:
        return None
    return getattr(value, kind)


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _flatten(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        kind=_KINDS.get(span.kind, "UNSPECIFIED"),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes=_attributes(span.attributes),
                        events=tuple(
                            ReceivedEvent(e.name, e.time_unix_nano, _attributes(e.attributes)) for e in span.events
                        ),
                        links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links),
                        status_code=_STATUS.get(span.status.code, "UNSET"),
                        status_message=span.status.message,
                        service_name=service,
                        resource_attributes=resource,
                        scope_name=scope_spans.scope.name,
                        scope_version=scope_spans.scope.version,
                    )
                )
    return spans


def _hex_ids_to_base64(document: Any) -> Any:
    # OTLP/JSON writes ids as hex; the protobuf JSON mapping expects base64 for bytes.
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for item in (span, *span.get("links", [])):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if item.get(key):
                            item[key] = base64.b64encode(bytes.fromhex(item[key])).decode()
    return document


def _decode(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    if content_type.startswith("application/json"):
        json_format.ParseDict(_hex_ids_to_base64(json.loads(body)), request)
    else:
        request.ParseFromString(body)
    return request


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding in ("", "identity"):
        return body
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


class OtlpReceiver:
    """An OTLP/HTTP receiver on 127.0.0.1 (a free port); use as a context manager.

    Attributes:
        url: The base URL, for ``OTEL_EXPORTER_OTLP_ENDPOINT``.
        traces_url: ``url`` + ``/v1/traces``, for ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._spans: list[ReceivedSpan] = []
        self._requests: list[ReceivedRequest] = []
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        address = cast("tuple[str, int]", self._server.server_address)
        self.url = f"http://{address[0]}:{address[1]}"
        self.traces_url = self.url + TRACES_PATH

    # ------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how long stop() may wait for the loop to notice
            name="otlp-receiver",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- reading

    @property
    def spans(self) -> list[ReceivedSpan]:
        """A snapshot of every span received so far, in arrival order."""
        with self._changed:
            return list(self._spans)

    @property
    def requests(self) -> list[ReceivedRequest]:
        """A snapshot of the accepted export requests."""
        with self._changed:
            return list(self._requests)

    def clear(self) -> None:
        """Forget everything received so far."""
        with self._changed:
            self._spans.clear()
            self._requests.clear()

    def wait_for(self, condition: SpanPredicate | int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """Block until ``condition`` holds for the received spans; return them.

        Args:
            condition: A predicate over all spans received so far, or a span count to reach.
            timeout: Seconds to wait at most.

        Raises:
            TimeoutError: The condition did not hold in time; the message lists what arrived.
        """
        predicate: SpanPredicate = (lambda spans: len(spans) >= condition) if isinstance(condition, int) else condition
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self._spans):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = ", ".join(f"{s.service_name}:{s.name}" for s in self._spans) or "nothing"
                    raise TimeoutError(f"spans not received within {timeout}s; got: {seen}")
                self._changed.wait(remaining)
            return list(self._spans)

    def named(self, name: str) -> list[ReceivedSpan]:
        """The received spans called ``name``."""
        return [span for span in self.spans if span.name == name]

    def one(self, name: str) -> ReceivedSpan:
        """The single received span called ``name``.

        Raises:
            AssertionError: There is none, or more than one.
        """
        found = self.named(name)
        assert len(found) == 1, f"expected one span {name!r}, got {len(found)}: {[s.name for s in self.spans]}"
        return found[0]

    def write_jaeger_json(self, path: Path) -> None:
        """Write what was received as a Jaeger-UI JSON file, for a manual look."""
        write_json(path, jaeger_document(span.to_record() for span in self.spans))

    # -------------------------------------------------------------- receiving

    def _store(self, spans: list[ReceivedSpan], request: ReceivedRequest) -> None:
        with self._changed:
            self._spans.extend(spans)
            self._requests.append(request)
            self._changed.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                if self.path.split("?", 1)[0] != TRACES_PATH:
                    self._reply(404, b"not found", "text/plain")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= _MAX_BODY:
                    self._reply(400, b"missing or oversized body", "text/plain")
                    return
                content_type = (self.headers.get("Content-Type") or "application/x-protobuf").lower()
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                try:
                    request = _decode(_decompress(self.rfile.read(length), encoding), content_type)
                except (ValueError, DecodeError, json_format.ParseError, OSError, zlib.error) as exc:
                    self._reply(400, f"cannot decode: {exc}".encode(), "text/plain")
                    return
                spans = _flatten(request)
                receiver._store(spans, ReceivedRequest(content_type, encoding, len(spans)))  # pyright: ignore[reportPrivateUsage] - its own handler
                if content_type.startswith("application/json"):
                    self._reply(200, b"{}", "application/json")
                else:
                    self._reply(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler


def by_id(spans: Iterable[ReceivedSpan]) -> Mapping[str, ReceivedSpan]:
    """Spans keyed by span id."""
    return {span.span_id: span for span in spans}
