"""What writing the Jaeger-JSON file costs over a long run, and that it stays complete while it is cheap.

Each span is serialised once (not once per export), exports never write, writes within an
interval are coalesced into one at its end, and ``force_flush``/``shutdown`` write what is
due at once. Time is a fake clock and the interval's end a fake timer run by the test:
nothing waits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanContext

import orchestrator.telemetry._jaeger_file as jaeger_file_module
from orchestrator.telemetry import (
    JaegerJsonFileExporter,
    JaegerTraceStore,
    SpanRecord,
    jaeger_document,
    read_jaeger_traces,
    span_record,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

RESOURCE = Resource.create({"service.name": "agg", "host.name": "h"})
EPOCH_NS = 1_700_000_000_000_000_000


def finished_span(trace_id: int, span_id: int, parent_id: int | None = None, start: int = 0) -> ReadableSpan:
    parent = SpanContext(trace_id, parent_id, is_remote=False) if parent_id is not None else None
    return ReadableSpan(
        name=f"span {span_id}",
        context=SpanContext(trace_id, span_id, is_remote=False),
        parent=parent,
        resource=RESOURCE,
        attributes={"n": span_id},
        start_time=EPOCH_NS + start,
        end_time=EPOCH_NS + start + 1_000,
    )


def trace_batch(trace_id: int, spans: int) -> list[ReadableSpan]:
    """One whole trace: a root and its children, children first (the order they end in)."""
    root = trace_id * 1000
    children = [finished_span(trace_id, root + i, root, start=trace_id * 100 + i) for i in range(1, spans)]
    return [*children, finished_span(trace_id, root, start=trace_id * 100)]


def load(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert set(document) == {"data", "total", "limit", "offset", "errors"}
    assert document["total"] == len(document["data"])
    return read_jaeger_traces(path)


def operations(path: Path) -> list[list[str]]:
    return [[span["operationName"] for span in trace["spans"]] for trace in load(path)]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Scheduled:
    delay_s: float
    due_at: float
    callback: Callable[[], None]
    cancelled: bool = False
    fired: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualTimer:
    """The exporter's timer, run by the test: time passes only when the test says so."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.scheduled: list[Scheduled] = []

    def __call__(self, delay_s: float, callback: Callable[[], None], /) -> Callable[[], None]:
        entry = Scheduled(delay_s, self.clock.now + delay_s, callback)
        self.scheduled.append(entry)
        return entry.cancel

    def pending(self) -> list[Scheduled]:
        return [entry for entry in self.scheduled if not (entry.cancelled or entry.fired)]

    def fire_due(self) -> None:
        """Let time pass to the one pending timer's due time and run it."""
        (entry,) = self.pending()
        self.clock.now = max(self.clock.now, entry.due_at)
        entry.fired = True
        entry.callback()


def exporter_with_manual_time(path: Path, **options: Any) -> tuple[JaegerJsonFileExporter, Clock, ManualTimer]:
    clock = Clock()
    timer = ManualTimer(clock)
    return JaegerJsonFileExporter(path, clock=clock, timer=timer, **options), clock, timer


@pytest.fixture
def serialised_spans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The span id of every span serialised to JSON from now on, in order."""
    calls: list[int] = []
    real = jaeger_file_module._span_json  # pyright: ignore[reportPrivateUsage]

    def counting(record: SpanRecord, process_id: str) -> dict[str, Any]:
        calls.append(record.span_id)
        return real(record, process_id)

    monkeypatch.setattr(jaeger_file_module, "_span_json", counting)
    return calls


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The text of every write of the file from now on."""
    texts: list[str] = []
    real = jaeger_file_module.write_atomically

    def recording(path: Path, pieces: str | Iterable[str]) -> None:
        texts.append("".join(pieces))
        real(path, texts[-1])

    monkeypatch.setattr("orchestrator.telemetry._processors.write_atomically", recording)
    return texts


# ---------------------------------------------------------------- cost


def test_a_long_run_serialises_each_span_once_not_every_held_trace_per_export(
    tmp_path: Path, serialised_spans: list[int]
) -> None:
    path = tmp_path / "traces.json"
    exporter = JaegerJsonFileExporter(path)
    sent: list[ReadableSpan] = []
    for trace_id in range(1, 101):
        batch = trace_batch(trace_id, 5)
        sent.extend(batch)
        assert exporter.export(batch) is SpanExportResult.SUCCESS
        assert exporter.force_flush()  # a write per export: the worst case
        if trace_id % 10 == 0:
            assert len(load(path)) == trace_id

    # Before: every export re-serialised every held span (5 + 10 + ... + 500 = 25,250 calls).
    assert len(serialised_spans) == len(sent) == 500
    assert path.read_text(encoding="utf-8") == json.dumps(
        jaeger_document(span_record(span) for span in sent), ensure_ascii=False
    )
    exporter.shutdown()


def test_a_trace_that_grows_over_many_exports_serialises_only_its_new_spans(
    tmp_path: Path, serialised_spans: list[int]
) -> None:
    path = tmp_path / "traces.json"
    exporter = JaegerJsonFileExporter(path)
    for batch in range(100):
        # One long trace (a client that keeps one trace for a whole session), spans ending late first.
        spans = [finished_span(7, 10 * batch + i + 1, 10**6, start=10 * batch + (2 - i)) for i in range(3)]
        exporter.export(spans)
        assert exporter.force_flush()
    exporter.shutdown()

    assert sorted(serialised_spans) == [10 * batch + i + 1 for batch in range(100) for i in range(3)]
    (trace,) = load(path)
    starts = [span["startTime"] for span in trace["spans"]]
    assert len(starts) == 300
    assert starts == sorted(starts)


# --------------------------------------------------------- coalescing


def test_exports_never_write_and_those_within_an_interval_make_one_write_at_its_end(
    tmp_path: Path, writes: list[str]
) -> None:
    path = tmp_path / "traces.json"
    exporter, clock, timer = exporter_with_manual_time(path, write_interval_s=1.0)

    assert exporter.export(trace_batch(1, 1)) is SpanExportResult.SUCCESS
    assert writes == []  # not on the exporting thread
    (first,) = timer.pending()
    assert first.delay_s == 0  # after a quiet interval: due at once
    timer.fire_due()
    assert operations(path) == [["span 1000"]]

    for trace_id in (2, 3, 4):
        clock.now += 0.1
        exporter.export(trace_batch(trace_id, 1))
    assert len(writes) == 1
    assert operations(path) == [["span 1000"]]  # still the last complete file
    (due,) = timer.pending()
    assert due.due_at == pytest.approx(101.0)  # an interval after the first write

    timer.fire_due()
    assert len(writes) == 2
    assert operations(path) == [["span 1000"], ["span 2000"], ["span 3000"], ["span 4000"]]
    due.callback()  # a timer that runs twice (or late) writes nothing more
    assert len(writes) == 2

    clock.now = 102.5  # an interval after the last write: due at once again
    exporter.export(trace_batch(5, 1))
    assert timer.pending()[0].delay_s == 0
    timer.fire_due()
    assert len(writes) == 3
    assert len(timer.scheduled) == 3
    exporter.shutdown()
    assert len(writes) == 3  # nothing was left to write
    assert len(load(path)) == 5


def test_a_timer_that_runs_before_the_interval_is_over_waits_for_its_end(tmp_path: Path, writes: list[str]) -> None:
    path = tmp_path / "traces.json"
    exporter, clock, timer = exporter_with_manual_time(path)
    exporter.export(trace_batch(1, 1))
    timer.fire_due()
    clock.now += 0.25
    exporter.export(trace_batch(2, 1))
    (early,) = timer.pending()
    early.fired = True
    early.callback()  # the clock says 0.25 s since the write: too early
    assert len(writes) == 1
    (due,) = timer.pending()
    assert due.due_at == pytest.approx(101.0)
    timer.fire_due()
    assert len(writes) == 2
    exporter.shutdown()


def test_spans_exported_while_a_write_runs_are_written_an_interval_after_it_not_right_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "traces.json"
    exporter, _, timer = exporter_with_manual_time(path)
    real = jaeger_file_module.write_atomically
    texts: list[str] = []

    def write_during_which_a_batch_arrives(target: Path, pieces: str | Iterable[str]) -> None:
        texts.append("".join(pieces))
        if len(texts) == 1:
            exporter.export(trace_batch(2, 1))
        real(target, texts[-1])

    monkeypatch.setattr("orchestrator.telemetry._processors.write_atomically", write_during_which_a_batch_arrives)
    exporter.export(trace_batch(1, 1))
    timer.fire_due()
    assert operations(path) == [["span 1000"]]
    (due,) = timer.pending()  # made due by the export during the write
    assert due.due_at == pytest.approx(101.0)
    timer.fire_due()
    assert operations(path) == [["span 1000"], ["span 2000"]]
    exporter.shutdown()
    assert len(texts) == 2


def test_a_slow_write_spaces_the_next_one_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "traces.json"
    exporter, clock, timer = exporter_with_manual_time(path, write_interval_s=1.0)
    real = jaeger_file_module.write_atomically

    def slow(target: Path, pieces: str | Iterable[str]) -> None:
        real(target, pieces)
        clock.now += 0.5

    monkeypatch.setattr("orchestrator.telemetry._processors.write_atomically", slow)
    exporter.export(trace_batch(1, 1))
    timer.fire_due()
    exporter.export(trace_batch(2, 1))
    (due,) = timer.pending()
    assert due.delay_s == pytest.approx(0.5 * JaegerJsonFileExporter.WRITE_SPACING)
    exporter.shutdown()
    assert len(load(path)) == 2


def test_force_flush_writes_what_is_due_at_once_and_the_timer_then_writes_nothing(
    tmp_path: Path, writes: list[str]
) -> None:
    path = tmp_path / "traces.json"
    exporter, clock, timer = exporter_with_manual_time(path)
    assert exporter.force_flush()  # nothing exported: nothing to write
    assert writes == []

    exporter.export(trace_batch(1, 2))
    clock.now += 0.2
    exporter.export(trace_batch(2, 2))
    (due,) = timer.pending()
    assert exporter.force_flush()
    assert due.cancelled
    assert [len(spans) for spans in operations(path)] == [2, 2]
    due.callback()  # cancelled too late to stop it: it must find nothing to do
    assert len(writes) == 1
    assert exporter.force_flush()  # nothing new since
    assert len(writes) == 1
    exporter.shutdown()
    assert len(writes) == 1


def test_shutdown_writes_the_spans_of_a_write_still_due(tmp_path: Path) -> None:
    path = tmp_path / "traces.json"
    exporter, clock, timer = exporter_with_manual_time(path)
    exporter.export(trace_batch(1, 3))
    timer.fire_due()
    clock.now += 0.5
    exporter.export(trace_batch(2, 3))
    (due,) = timer.pending()

    exporter.shutdown()
    assert due.cancelled
    assert [len(spans) for spans in operations(path)] == [3, 3]
    assert exporter.export(trace_batch(3, 3)) is SpanExportResult.FAILURE
    due.callback()
    exporter.shutdown()
    assert len(load(path)) == 2


def test_past_max_spans_every_written_file_holds_whole_newest_traces(tmp_path: Path) -> None:
    path = tmp_path / "traces.json"
    exporter, clock, timer = exporter_with_manual_time(path, max_spans=10)
    for trace_id in range(1, 16):
        clock.now += 0.3
        exporter.export(trace_batch(trace_id, 3))
        # Half the writes by the timer, the others by a flush.
        if trace_id % 2:
            timer.fire_due()
        else:
            assert exporter.force_flush()
        traces = load(path)
        held = list(range(max(1, trace_id - 2), trace_id + 1))  # 3 whole traces of 3 spans
        assert [int(trace["traceID"], 16) for trace in traces] == held
        assert all(len(trace["spans"]) == 3 for trace in traces)
        for trace in traces:
            assert {span["traceID"] for span in trace["spans"]} == {trace["traceID"]}
    exporter.shutdown()
    assert len(load(path)) == 3


def test_a_write_that_fails_is_reported_and_tried_again_at_the_next_flush(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "traces.json"
    path.mkdir()  # a folder where the file should be: every write fails
    exporter, _, timer = exporter_with_manual_time(path)
    assert exporter.export(trace_batch(1, 1)) is SpanExportResult.SUCCESS
    timer.fire_due()
    assert f"cannot write traces to {path}" in caplog.text
    assert timer.pending() == []  # not retried in a loop of its own
    assert not exporter.force_flush()
    path.rmdir()
    assert exporter.force_flush()
    assert operations(path) == [["span 1000"]]
    exporter.shutdown()


# -------------------------------------------------------------- store


records_strategy = st.builds(
    SpanRecord,
    trace_id=st.integers(1, 6),
    span_id=st.integers(1, 2**64 - 1),
    parent_span_id=st.none() | st.integers(1, 2**64 - 1),
    name=st.text(max_size=5),
    kind=st.sampled_from(["internal", "server", "client"]),
    start_ns=st.integers(0, 5).map(lambda n: n * 1000),  # few values: ties in start order
    end_ns=st.integers(0, 10_000),
    service_name=st.sampled_from(["agg", "db"]),
    attributes=st.dictionaries(st.text(max_size=3), st.integers() | st.text(max_size=3) | st.booleans(), max_size=2),
    status_code=st.sampled_from(["UNSET", "OK", "ERROR"]),
    resource_attributes=st.sampled_from([{}, {"host.name": "h"}, {"host.name": "é"}]),
)


@given(batches=st.lists(st.lists(records_strategy, max_size=6), max_size=8), max_spans=st.integers(1, 20))
@settings(max_examples=150, deadline=None)
def test_the_store_text_is_always_its_document_serialised(batches: list[list[SpanRecord]], max_spans: int) -> None:
    # Several processes in one trace and equal start times: the cases where cached span
    # texts could go stale (process ids are numbered in start order).
    store = JaegerTraceStore(max_spans)
    for batch in batches:
        store.add(batch)
        assert store.text() == json.dumps(store.document(), ensure_ascii=False)


def test_spans_added_while_the_store_serialises_neither_wait_for_it_nor_get_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def record(trace_id: int, span_id: int, start: int) -> SpanRecord:
        return SpanRecord(trace_id, span_id, None, f"span {span_id}", "internal", start, start + 1, "agg")

    store = JaegerTraceStore()
    store.add([record(1, 1, 10)])
    real = jaeger_file_module._span_json  # pyright: ignore[reportPrivateUsage]

    added: list[bool] = []

    def adding_meanwhile(held: SpanRecord, process_id: str) -> dict[str, Any]:
        if not added:
            added.append(True)
            # Same thread: if adding waited for the serialiser, this would never return.
            store.add([record(1, 2, 5), record(2, 3, 20)])
        return real(held, process_id)

    monkeypatch.setattr(jaeger_file_module, "_span_json", adding_meanwhile)
    first = json.loads(store.text())
    assert [[span["operationName"] for span in trace["spans"]] for trace in first["data"]] == [["span 1"]]
    assert store.text() == json.dumps(store.document(), ensure_ascii=False)
    assert [[span["operationName"] for span in trace["spans"]] for trace in store.document()["data"]] == [
        ["span 2", "span 1"],
        ["span 3"],
    ]
