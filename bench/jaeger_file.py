"""What the Jaeger-JSON file exporter costs per export batch over a long run.

Run from the repository root::

    python -m bench.jaeger_file [--batches 2000] [--spans 20] [--max-spans 50000]
                                [--flush-every-batch] [--out bench/results/jaeger_file.json]

Exports ``--batches`` batches of ``--spans`` finished spans (each batch four whole traces of
MCP-like spans: a server span, client calls, attributes and an event) through
``JaegerJsonFileExporter`` into a file in a scratch folder, as the batch span processor of
``orchestrator serve --trace`` would, back to back. Each ``export`` call is timed. The
report gives the total time and CPU (all threads: the file is written on a timer thread), the
mean export time of the first and of the last 100 batches (and their ratio: flat is about 1, a
cost that grows with everything exported before is far above it), the same for the exporting
thread's own CPU time (wall time also counts waiting for the interpreter while the writer
thread serialises), the median, 99th percentile and slowest export, the time of ``shutdown``
(the last write) and the file's size.

``--flush-every-batch`` calls ``force_flush`` after every export, so every batch rewrites the
file (the worst case for the writes; without it, writes are at most one a second).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind

from orchestrator.telemetry import JaegerJsonFileExporter

TRACES_PER_BATCH = 4
WINDOW = 100

_RESOURCE = Resource.create({"service.name": "mcp-orchestrator", "host.name": "bench", "process.pid": 4242})


def _batch(number: int, spans: int) -> list[ReadableSpan]:
    """``spans`` finished spans in ``TRACES_PER_BATCH`` whole traces, children ending first."""
    batch: list[ReadableSpan] = []
    per_trace = max(1, spans // TRACES_PER_BATCH)
    for index in range(TRACES_PER_BATCH):
        trace_id = number * TRACES_PER_BATCH + index + 1
        start = 1_700_000_000_000_000_000 + trace_id * 10_000_000
        root = SpanContext(trace_id, trace_id << 16, is_remote=False)
        for child in range(1, per_trace):
            context = SpanContext(trace_id, (trace_id << 16) + child, is_remote=False)
            batch.append(
                ReadableSpan(
                    name=f"MCP send tools/call tool_{child}",
                    context=context,
                    parent=root,
                    resource=_RESOURCE,
                    attributes={
                        "mcp.method.name": "tools/call",
                        "gen_ai.tool.name": f"tool_{child}",
                        "gen_ai.operation.name": "execute_tool",
                        "server.key": "analytics",
                        "network.transport": "pipe",
                        "mcp.session.id": "6f1c2a9e4b7d",
                    },
                    events=[Event("retry", {"mcp_orchestrator.retry.attempt": 1}, start + child * 1000)]
                    if child == 1
                    else [],
                    kind=SpanKind.CLIENT,
                    start_time=start + child * 1_000,
                    end_time=start + child * 1_000 + 500_000,
                )
            )
        batch.append(
            ReadableSpan(
                name="tools/call analytics__query",
                context=root,
                resource=_RESOURCE,
                attributes={"mcp.method.name": "tools/call", "gen_ai.tool.name": "analytics__query"},
                kind=SpanKind.SERVER,
                start_time=start,
                end_time=start + 2_000_000,
            )
        )
    return batch


def _mean_ms(values: list[float]) -> float:
    return statistics.fmean(values) * 1000


def run(batches: int, spans: int, max_spans: int, *, flush_every_batch: bool) -> dict[str, Any]:
    """Export the batches and time each export; returns the report."""
    made = [_batch(number, spans) for number in range(batches)]
    with tempfile.TemporaryDirectory(prefix="bench-jaeger-") as scratch:
        path = Path(scratch) / "traces.json"
        exporter = JaegerJsonFileExporter(path, max_spans=max_spans)
        export_s: list[float] = []
        began, began_cpu = time.perf_counter(), time.process_time()
        export_cpu_s: list[float] = []
        for batch in made:
            started, started_cpu = time.perf_counter(), time.thread_time()
            exporter.export(batch)
            if flush_every_batch:
                exporter.force_flush()
            export_s.append(time.perf_counter() - started)
            export_cpu_s.append(time.thread_time() - started_cpu)
        started = time.perf_counter()
        exporter.shutdown()
        shutdown_s = time.perf_counter() - started
        total_s = time.perf_counter() - began
        cpu_s = time.process_time() - began_cpu
        size = path.stat().st_size
        held = sum(len(trace["spans"]) for trace in json.loads(path.read_text(encoding="utf-8"))["data"])
    window = min(WINDOW, batches)
    first, last = _mean_ms(export_s[:window]), _mean_ms(export_s[-window:])
    return {
        "batches": batches,
        "spans_per_batch": len(made[0]) if made else 0,
        "max_spans": max_spans,
        "flush_every_batch": flush_every_batch,
        "total_s": round(total_s, 3),
        "cpu_s": round(cpu_s, 3),
        "first_window_mean_ms": round(first, 3),
        "last_window_mean_ms": round(last, 3),
        "last_over_first": round(last / first, 2) if first else None,
        "first_window_cpu_ms": round(_mean_ms(export_cpu_s[:window]), 3),
        "last_window_cpu_ms": round(_mean_ms(export_cpu_s[-window:]), 3),
        "median_export_ms": round(statistics.median(export_s) * 1000, 3),
        "p99_export_ms": round(statistics.quantiles(export_s, n=100)[98] * 1000, 3),
        "slowest_export_ms": round(max(export_s) * 1000, 3),
        "shutdown_ms": round(shutdown_s * 1000, 3),
        "file_bytes": size,
        "spans_in_file": held,
    }


def main() -> None:
    """Run the bench and print (and optionally save) the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--spans", type=int, default=20, help="spans per batch (a multiple of 4)")
    parser.add_argument("--max-spans", type=int, default=50_000)
    parser.add_argument("--flush-every-batch", action="store_true", help="force_flush after each export")
    parser.add_argument("--out", type=Path, help="also write the report as JSON here")
    args = parser.parse_args()
    report = run(args.batches, args.spans, args.max_spans, flush_every_batch=args.flush_every_batch)
    print(
        f"{report['batches']} batches of {report['spans_per_batch']} spans (max_spans {report['max_spans']}"
        f"{', flush after every batch' if report['flush_every_batch'] else ''})\n"
        f"  total                      {report['total_s']:.2f} s ({report['cpu_s']:.2f} s of CPU, all threads)\n"
        f"  mean export, first {WINDOW:<3}     {report['first_window_mean_ms']:.3f} ms\n"
        f"  mean export, last {WINDOW:<3}      {report['last_window_mean_ms']:.3f} ms"
        f"  ({report['last_over_first']}x the first)\n"
        f"  export CPU, first / last   {report['first_window_cpu_ms']:.3f} / {report['last_window_cpu_ms']:.3f} ms"
        " (the exporting thread's own)\n"
        f"  export median / p99 / max  {report['median_export_ms']:.3f} / {report['p99_export_ms']:.1f}"
        f" / {report['slowest_export_ms']:.1f} ms\n"
        f"  shutdown (last write)      {report['shutdown_ms']:.1f} ms\n"
        f"  file                       {report['file_bytes'] / 1e6:.1f} MB, {report['spans_in_file']} spans"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
