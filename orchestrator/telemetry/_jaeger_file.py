"""Traces as the Jaeger UI's "JSON File" upload format: build, write, merge.

Owns the format (the Jaeger query API's JSON: ``{"data": [{traceID, spans, processes}]}``),
an in-memory store that groups spans by trace and keeps their JSON text (so a long run does
not serialise every span again for every write), atomic file writes, and merging the files
of several processes into one upload with the whole cross-process tree. Pure data and file
I/O: it knows neither the OpenTelemetry SDK (``_processors`` converts SDK spans to
``SpanRecord``) nor where spans come from. ``orchestrator traces merge`` is the command-line
face of ``merge_jaeger_files``.
"""

from __future__ import annotations

import bisect
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from opentelemetry.util.types import AnyValue

from orchestrator._files import write_atomically

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "AttributeValue",
    "EventRecord",
    "JaegerTraceStore",
    "LinkRecord",
    "SpanRecord",
    "jaeger_document",
    "merge_jaeger_files",
    "read_jaeger_traces",
]

AttributeValue = AnyValue
"""An attribute value as the OpenTelemetry API types it (scalars, bytes, sequences, maps)."""
JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A span event (Jaeger: a log)."""

    name: str
    timestamp_ns: int
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict[str, AttributeValue])


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """A span link (Jaeger: a FOLLOWS_FROM reference)."""

    trace_id: int
    span_id: int


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """One finished span, independent of where it came from (SDK span, OTLP message)."""

    trace_id: int
    span_id: int
    parent_span_id: int | None
    name: str
    kind: str
    """``internal``, ``server``, ``client``, ``producer`` or ``consumer``."""
    start_ns: int
    end_ns: int
    service_name: str
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict[str, AttributeValue])
    events: tuple[EventRecord, ...] = ()
    links: tuple[LinkRecord, ...] = ()
    status_code: str = "UNSET"
    """``UNSET``, ``OK`` or ``ERROR``."""
    status_message: str | None = None
    resource_attributes: Mapping[str, AttributeValue] = field(default_factory=dict[str, AttributeValue])
    scope_name: str | None = None
    scope_version: str | None = None


def _hex_trace(trace_id: int) -> str:
    return f"{trace_id:032x}"


def _hex_span(span_id: int) -> str:
    return f"{span_id:016x}"


def _tag(key: str, value: AttributeValue) -> JsonDict:
    # bool before int: bool is an int subclass.
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    if isinstance(value, str):
        return {"key": key, "type": "string", "value": value}
    # Arrays and maps: the OTLP→Jaeger translator encodes them as JSON strings too.
    return {"key": key, "type": "string", "value": json.dumps(_plain(value), ensure_ascii=False)}


def _plain(value: AttributeValue) -> object:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, str) or not isinstance(value, Sequence):
        return value
    return [_plain(v) for v in value]


def _tags(attributes: Mapping[str, AttributeValue]) -> list[JsonDict]:
    return [_tag(key, value) for key, value in attributes.items()]


def _span_json(record: SpanRecord, process_id: str) -> JsonDict:
    trace_hex = _hex_trace(record.trace_id)
    references: list[JsonDict] = []
    if record.parent_span_id:
        references.append({"refType": "CHILD_OF", "traceID": trace_hex, "spanID": _hex_span(record.parent_span_id)})
    references.extend(
        {"refType": "FOLLOWS_FROM", "traceID": _hex_trace(link.trace_id), "spanID": _hex_span(link.span_id)}
        for link in record.links
    )
    tags = _tags(record.attributes)
    tags.append(_tag("span.kind", record.kind))
    if record.scope_name:
        tags.append(_tag("otel.scope.name", record.scope_name))
    if record.scope_version:
        tags.append(_tag("otel.scope.version", record.scope_version))
    if record.status_code != "UNSET":
        tags.append(_tag("otel.status_code", record.status_code))
    if record.status_message:
        tags.append(_tag("otel.status_description", record.status_message))
    if record.status_code == "ERROR":
        # The Jaeger UI draws a span red on the `error` tag.
        tags.append(_tag("error", True))
    logs = [
        {
            "timestamp": event.timestamp_ns // 1000,
            "fields": [_tag("event", event.name), *_tags(event.attributes)],
        }
        for event in record.events
    ]
    return {
        "traceID": trace_hex,
        "spanID": _hex_span(record.span_id),
        "flags": 1,
        "operationName": record.name,
        "references": references,
        "startTime": record.start_ns // 1000,
        "duration": max(0, record.end_ns - record.start_ns) // 1000,
        "tags": tags,
        "logs": logs,
        "processID": process_id,
        "warnings": None,
    }


def _process_key(record: SpanRecord) -> tuple[str, str]:
    return record.service_name, json.dumps(sorted(record.resource_attributes.items(), key=lambda kv: kv[0]))


def _process_json(record: SpanRecord) -> JsonDict:
    tags = {k: v for k, v in record.resource_attributes.items() if k != "service.name"}
    return {"serviceName": record.service_name, "tags": _tags(tags)}


def _trace_json(trace_id: int, records: Sequence[SpanRecord]) -> JsonDict:
    processes: dict[tuple[str, str], str] = {}
    process_json: dict[str, JsonDict] = {}
    spans: list[JsonDict] = []
    for record in sorted(records, key=lambda r: r.start_ns):
        key = _process_key(record)
        process_id = processes.get(key)
        if process_id is None:
            process_id = processes[key] = f"p{len(processes) + 1}"
            process_json[process_id] = _process_json(record)
        spans.append(_span_json(record, process_id))
    return {"traceID": _hex_trace(trace_id), "spans": spans, "processes": process_json, "warnings": None}


def _document(traces: list[JsonDict]) -> JsonDict:
    # The query API's envelope; the UI reads only "data".
    return {"data": traces, "total": len(traces), "limit": 0, "offset": 0, "errors": None}


def jaeger_document(records: Iterable[SpanRecord]) -> JsonDict:
    """The Jaeger JSON document of ``records``, one trace per trace id, traces in order of first start."""
    by_trace: dict[int, list[SpanRecord]] = {}
    for record in records:
        by_trace.setdefault(record.trace_id, []).append(record)
    ordered = sorted(by_trace.items(), key=lambda item: min(r.start_ns for r in item[1]))
    return _document([_trace_json(trace_id, spans) for trace_id, spans in ordered])


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass(slots=True)
class _HeldSpan:
    """A held span and its JSON text, made once (again only if its trace renumbers its process)."""

    record: SpanRecord
    process_key: tuple[str, str]
    process_id: str = ""
    text: str = ""


def _start_ns(held: _HeldSpan) -> int:
    return held.record.start_ns


def _trace_text(trace_id: int, spans: Sequence[_HeldSpan]) -> str:
    """``json.dumps(_trace_json(...))`` of spans in start order, serialising only spans not serialised yet."""
    process_ids: dict[tuple[str, str], str] = {}
    processes: list[str] = []
    texts: list[str] = []
    for held in spans:
        process_id = process_ids.get(held.process_key)
        if process_id is None:
            process_id = process_ids[held.process_key] = f"p{len(process_ids) + 1}"
            processes.append(f"{_dumps(process_id)}: {_dumps(_process_json(held.record))}")
        # Process ids are numbered in start order: an earlier span of a new process
        # renumbers the later ones (never within one process's own file).
        if held.process_id != process_id:
            held.text = _dumps(_span_json(held.record, process_id))
            held.process_id = process_id
        texts.append(held.text)
    return (
        f'{{"traceID": {_dumps(_hex_trace(trace_id))}, "spans": [{", ".join(texts)}], '
        f'"processes": {{{", ".join(processes)}}}, "warnings": null}}'
    )


class _HeldTrace:
    """One trace's spans in start order, and its JSON text until a span is added."""

    __slots__ = ("spans", "text", "trace_id", "version")

    def __init__(self, trace_id: int) -> None:
        self.trace_id = trace_id
        self.spans: list[_HeldSpan] = []
        self.text: str | None = None
        self.version = 0

    def first_start_ns(self) -> int:
        return self.spans[0].record.start_ns

    def add(self, record: SpanRecord) -> None:
        # bisect_right puts it after spans that started at the same time, the order the
        # stable sort of `jaeger_document` gives spans in order of arrival.
        index = bisect.bisect_right(self.spans, record.start_ns, key=_start_ns)
        self.spans.insert(index, _HeldSpan(record, _process_key(record)))
        self.text = None
        self.version += 1


class JaegerTraceStore:
    """Spans grouped by trace, accumulated across exports, bounded by ``max_spans``.

    When full, whole traces are dropped oldest first, so the file never holds half a tree
    of an old trace next to complete new ones. Each span is serialised to JSON once and
    each trace's text is kept until the trace gains a span, so ``text()`` costs the new
    spans plus joining the texts, not re-serialising everything held. Thread-safe: exports
    arrive on the batch processor's worker thread while writes and shutdown come from
    others; serialising does not hold up ``add``.
    """

    def __init__(self, max_spans: int = 50_000) -> None:
        self._max_spans = max_spans
        self._traces: OrderedDict[int, _HeldTrace] = OrderedDict()
        self._count = 0
        self._dropped = 0
        self._lock = threading.Lock()
        # One serialiser at a time: it alone writes the held spans' texts, outside `_lock`.
        self._serialising = threading.Lock()

    @property
    def span_count(self) -> int:
        """Spans held now."""
        return self._count

    @property
    def dropped_spans(self) -> int:
        """Spans dropped so far to stay under ``max_spans``."""
        return self._dropped

    def add(self, records: Iterable[SpanRecord]) -> None:
        """Add finished spans."""
        with self._lock:
            for record in records:
                held = self._traces.get(record.trace_id)
                if held is None:
                    held = self._traces[record.trace_id] = _HeldTrace(record.trace_id)
                held.add(record)
                self._count += 1
            while self._count > self._max_spans and len(self._traces) > 1:
                _, dropped = self._traces.popitem(last=False)
                self._count -= len(dropped.spans)
                self._dropped += len(dropped.spans)

    def document(self) -> JsonDict:
        """The Jaeger JSON document of everything held."""
        with self._lock:
            snapshot = [held.record for trace in self._traces.values() for held in trace.spans]
        return jaeger_document(snapshot)

    def text(self) -> str:
        """The Jaeger JSON document of everything held as JSON text: ``json.dumps(self.document())``."""
        return "".join(self.text_pieces())

    def text_pieces(self) -> list[str]:
        """``text()`` in pieces, to write one after another without joining them first.

        Serialises only the spans added since the last call; the traces that gained none
        are reused as they were. The pieces are what was held when the call began.
        """
        with self._serialising:
            with self._lock:
                # Stable sort over arrival order: the trace order `jaeger_document` gives.
                traces = sorted(self._traces.values(), key=_HeldTrace.first_start_ns)
                held: list[tuple[_HeldTrace, int, str | None, tuple[_HeldSpan, ...]]] = []
                for trace in traces:
                    # A copy of a stale trace's spans: `add` may insert into the list meanwhile.
                    held.append((trace, trace.version, trace.text, tuple(trace.spans) if trace.text is None else ()))
            texts: list[str] = []
            made: list[tuple[_HeldTrace, int, str]] = []
            for trace, version, kept, spans in held:
                text = kept if kept is not None else _trace_text(trace.trace_id, spans)
                if kept is None:
                    made.append((trace, version, text))
                texts.append(text)
            with self._lock:
                for trace, version, text in made:
                    # Kept unless the trace gained a span meanwhile (the next call makes it then).
                    if trace.version == version:
                        trace.text = text
        pieces = ['{"data": [']
        for index, text in enumerate(texts):
            pieces.extend((", ", text) if index else (text,))
        pieces.append(f'], "total": {len(texts)}, "limit": 0, "offset": 0, "errors": null}}')
        return pieces


def read_jaeger_traces(path: Path) -> list[JsonDict]:
    """The traces in a Jaeger JSON file: the ``data`` envelope, a bare list, or a single trace.

    Raises:
        OSError: The file cannot be read.
        ValueError: The file is not JSON, or not in any of the shapes the Jaeger UI loads.
    """
    try:
        loaded: object = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from exc
    if isinstance(loaded, dict) and "data" in loaded:
        loaded = cast("object", loaded["data"])
    if isinstance(loaded, dict):
        loaded = [cast("object", loaded)]
    traces = cast("list[object]", loaded) if isinstance(loaded, list) else None
    if traces is None or not all(
        isinstance(t, dict) and isinstance(cast("JsonDict", t).get("spans"), list) for t in traces
    ):
        raise ValueError(f"{path}: not a Jaeger JSON trace file (expected {{'data': [{{'traceID', 'spans', ...}}]}})")
    return [cast("JsonDict", t) for t in traces]


def merge_jaeger_files(paths: Iterable[Path], out: Path) -> int:
    """Merge the Jaeger JSON files of several processes into ``out``; returns the number of traces.

    Spans of the same trace id from different files become one trace, so a trace that
    crossed processes shows as one tree. Processes are renumbered per trace and a span
    present in two files (same span id) is kept once. Missing input files are skipped.

    Raises:
        OSError: An input cannot be read or ``out`` cannot be written.
        ValueError: An input is not a Jaeger JSON file.
    """
    merged: dict[str, tuple[list[JsonDict], dict[str, JsonDict], set[str]]] = {}
    for path in paths:
        if not path.exists():
            continue
        for trace_json in read_jaeger_traces(path):
            spans, processes, seen = merged.setdefault(str(trace_json.get("traceID", "")), ([], {}, set()))
            source_processes: dict[str, JsonDict] = trace_json.get("processes") or {}
            renamed: dict[str, str] = {}
            for old_id, process in source_processes.items():
                new_id = next((pid for pid, known in processes.items() if known == process), None)
                if new_id is None:
                    new_id = f"p{len(processes) + 1}"
                    processes[new_id] = process
                renamed[old_id] = new_id
            for span in trace_json["spans"]:
                span_id = str(span.get("spanID"))
                if span_id in seen:
                    continue
                seen.add(span_id)
                spans.append({**span, "processID": renamed.get(span.get("processID", ""), span.get("processID"))})
    traces: list[JsonDict] = [
        {
            "traceID": trace_id,
            "spans": sorted(spans, key=lambda s: s.get("startTime", 0)),
            "processes": processes,
            "warnings": None,
        }
        for trace_id, (spans, processes, _) in merged.items()
    ]
    traces.sort(key=lambda t: min((s.get("startTime", 0) for s in t["spans"]), default=0))
    write_atomically(out, json.dumps(_document(traces), ensure_ascii=False))
    return len(traces)
