"""Helpers of the cross-process tracing tests: configs, a traced HTTP example server, one trace as a tree.

Every process in these tests exports to the test's ``OtlpReceiver`` over real OTLP/HTTP:
the aggregator (``orchestrator serve``/``run``/``call`` as a subprocess, configured by
``OTEL_*`` variables), the stdio example servers it starts (they inherit its ``OTEL_*``
variables, with ``OTEL_SERVICE_NAME`` set to their server key), HTTP example servers the
test starts itself, and this test process (the caller; ``tests.tracing.harness``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mcp_types as types
import yaml

from tests.e2e.harness import REPO_ROOT, served_process
from tests.tracing.harness import TEST_SERVICE_NAME

if TYPE_CHECKING:
    from pathlib import Path

    from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

__all__ = [
    "AGGREGATOR",
    "CALLER",
    "RUN_META_KEY",
    "JaegerSpan",
    "JaegerTrace",
    "Trace",
    "example_server",
    "export_env",
    "http_example_server",
    "leaks",
    "read_jaeger_file",
    "shape",
    "text_of",
    "wait_for_trace",
    "write_brief",
    "write_workflow",
]

AGGREGATOR = "mcp-orchestrator"
"""The aggregator's ``service.name`` (the config's default)."""
CALLER = TEST_SERVICE_NAME
"""The ``service.name`` of this test process's spans."""
RUN_META_KEY = "io.github.mcp-orchestrator/run"
_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def example_server(module: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A config entry that starts ``examples.servers.<module>`` over stdio."""
    entry: dict[str, Any] = {
        "command": sys.executable,
        "args": ["-m", f"examples.servers.{module}"],
        "cwd": str(REPO_ROOT),
    }
    if env:
        entry["env"] = dict(env)
    return entry


def write_workflow(directory: Path, name: str, steps: Mapping[str, Any], **extra: Any) -> Path:
    """Write ``<directory>/workflows/<name>.yaml``; returns the folder (for the config's ``workflows``)."""
    folder = directory / "workflows"
    folder.mkdir(exist_ok=True)
    document = {"version": 1, "name": name, "description": f"test workflow {name}", "steps": dict(steps), **extra}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return folder


def _retry(max_attempts: int) -> dict[str, Any]:
    return {"max_attempts": max_attempts, "initial_interval": "20ms", "jitter": "none", "retry_on": ["tool_error"]}


def write_brief(directory: Path, *, max_attempts: int = 3) -> Path:
    """``brief``: metrics (retried on tool errors) and tickets in parallel, then each ticket in full."""
    return write_workflow(
        directory,
        "brief",
        {
            "latency": {
                "tool": "metrics.query_metrics",
                "with": {"service": "${{ input.service }}", "metric": "latency_p99_ms", "hours": 2},
                "retry": _retry(max_attempts),
            },
            "tickets": {
                "tool": "tickets.search_tickets",
                "with": {"service": "${{ input.service }}", "status": "open"},
            },
            "details": {
                "needs": ["tickets"],
                "for_each": "${{ steps.tickets.result.items }}",
                "as": "ticket",
                "tool": "tickets.get_ticket",
                "with": {"id": "${{ ticket.id }}"},
            },
        },
        input={"type": "object", "required": ["service"], "properties": {"service": {"type": "string"}}},
        output={"value": {"tickets": "${{ steps.details.result[*].id }}"}},
    )


def export_env(receiver: OtlpReceiver, **extra: str) -> dict[str, str]:
    """The variables that make a process (and its stdio children) export to ``receiver`` within ~0.1 s."""
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100", **extra}


def text_of(result: types.CallToolResult) -> str:
    """The text blocks of a tool result, joined."""
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


# ----------------------------------------------------------------- one trace


def shape(span: ReceivedSpan) -> tuple[str, str, str]:
    """``(service, kind, name)``: what a span is, for readable chain assertions."""
    return (span.service_name, span.kind, span.name)


class Trace:
    """The received spans of one trace id, navigable as a tree."""

    def __init__(self, trace_id: str, spans: Sequence[ReceivedSpan]) -> None:
        self.trace_id = trace_id
        self.spans = [span for span in spans if span.trace_id == trace_id]
        self._by_id = {span.span_id: span for span in self.spans}

    def named(
        self, name: str | Callable[[str], bool], *, service: str | None = None, kind: str | None = None
    ) -> list[ReceivedSpan]:
        """The spans called ``name`` (or whose name passes it), optionally of one service and kind."""
        matches: Callable[[str], bool] = name if callable(name) else name.__eq__
        return [
            span
            for span in self.spans
            if matches(span.name)
            and (service is None or span.service_name == service)
            and (kind is None or span.kind == kind)
        ]

    def one(self, name: str, *, service: str | None = None, kind: str | None = None) -> ReceivedSpan:
        """The single span called ``name`` (of ``service``/``kind``)."""
        found = self.named(name, service=service, kind=kind)
        assert len(found) == 1, f"expected one {name!r} in the trace, got {len(found)}:\n{self.render()}"
        return found[0]

    def parent(self, span: ReceivedSpan) -> ReceivedSpan | None:
        """The span's parent, when it is in this trace."""
        return self._by_id.get(span.parent_span_id) if span.parent_span_id else None

    def children(self, span: ReceivedSpan) -> list[ReceivedSpan]:
        """The span's direct children, oldest first."""
        return sorted((s for s in self.spans if s.parent_span_id == span.span_id), key=lambda s: s.start_ns)

    def chain(self, span: ReceivedSpan) -> list[tuple[str, str, str]]:
        """``shape()`` of the span and each ancestor up to the root (ends early at a missing parent)."""
        out = [shape(span)]
        current = self.parent(span)
        while current is not None:
            out.append(shape(current))
            current = self.parent(current)
        return out

    def roots(self) -> list[ReceivedSpan]:
        """Spans without a parent."""
        return [span for span in self.spans if span.parent_span_id is None]

    def orphans(self) -> list[ReceivedSpan]:
        """Spans whose parent id names a span that is not in this trace (a broken link)."""
        return [span for span in self.spans if span.parent_span_id and span.parent_span_id not in self._by_id]

    def render(self) -> str:
        """The tree as indented text, for assertion messages."""
        lines: list[str] = []

        def walk(span: ReceivedSpan, depth: int) -> None:
            error = (
                f" [{span.status_code} {span.attributes.get('error.type', '')}]" if span.status_code != "UNSET" else ""
            )
            lines.append(f"{'  ' * depth}{span.name}  ({span.service_name}, {span.kind}){error}")
            for child in self.children(span):
                walk(child, depth + 1)

        for root in sorted(self.roots() + self.orphans(), key=lambda s: s.start_ns):
            walk(root, 0)
        return "\n".join(lines)


def wait_for_trace(
    receiver: OtlpReceiver, caller_span: str, complete: Callable[[Trace], bool], timeout: float = 15.0
) -> Trace:
    """Wait until the trace of this process's span ``caller_span`` holds what ``complete`` asks; return it.

    Also waits until no span of the trace points at a parent that has not arrived (processes
    export in batches, in any order), so a link that is really broken shows as a timeout
    that prints the tree.
    """

    def ready(spans: list[ReceivedSpan]) -> bool:
        callers = [s for s in spans if s.name == caller_span and s.service_name == CALLER]
        if len(callers) != 1:
            return False
        trace = Trace(callers[0].trace_id, spans)
        return complete(trace) and not trace.orphans()

    try:
        spans = receiver.wait_for(ready, timeout=timeout)
    except TimeoutError:
        callers = [s for s in receiver.spans if s.name == caller_span]
        tree = Trace(callers[0].trace_id, receiver.spans).render() if callers else "(no caller span)"
        raise TimeoutError(f"the trace of {caller_span!r} did not complete in {timeout}s; it has:\n{tree}") from None
    (caller,) = [s for s in spans if s.name == caller_span and s.service_name == CALLER]
    return Trace(caller.trace_id, spans)


# ----------------------------------------------------------------- secrets


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():  # pyright: ignore[reportUnknownVariableType]
            yield str(key)  # pyright: ignore[reportUnknownArgumentType]
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:  # pyright: ignore[reportUnknownVariableType]
            yield from _strings(item)
    elif value is not None:
        yield str(value)


def _span_strings(span: ReceivedSpan) -> Iterator[tuple[str, str]]:
    yield "name", span.name
    yield "status message", span.status_message
    yield "scope", f"{span.scope_name} {span.scope_version}"
    for key, value in span.attributes.items():
        for text in _strings({key: value}):
            yield f"attribute {key}", text
    for event in span.events:
        yield "event name", event.name
        for key, value in event.attributes.items():
            for text in _strings({key: value}):
                yield f"event {event.name} attribute {key}", text
    for key, value in span.resource_attributes.items():
        for text in _strings({key: value}):
            yield f"resource attribute {key}", text


def leaks(spans: Sequence[ReceivedSpan], secrets: Sequence[str]) -> list[str]:
    """Where any of ``secrets`` occurs in any span (name, status, attributes, events, resource)."""
    found: list[str] = []
    for span in spans:
        for where, text in _span_strings(span):
            found.extend(
                f"{secret!r} in {where} of {span.service_name}:{span.name}" for secret in secrets if secret in text
            )
    return found


# -------------------------------------------------------- HTTP example server


@asynccontextmanager
async def http_example_server(module: str, env: Mapping[str, str]) -> AsyncGenerator[str]:
    """Run ``examples.servers.<module> --transport http --port 0`` with ``env`` added; yield its MCP URL.

    Stopped with SIGTERM at the end, which flushes its spans.
    """
    command = [sys.executable, "-m", f"examples.servers.{module}", "--transport", "http", "--port", "0"]
    async with served_process(command, _LISTENING.pattern, env=env) as (match, _process):
        yield f"http://127.0.0.1:{match.group(1)}/mcp"


# ------------------------------------------------------------ Jaeger JSON file


@dataclass(frozen=True, slots=True)
class JaegerSpan:
    """One span of a Jaeger-JSON file (the query-API shape the Jaeger UI uploads)."""

    trace_id: str
    span_id: str
    operation: str
    service: str
    references: tuple[tuple[str, str, str], ...]
    """``(refType, traceID, spanID)`` of each reference."""
    tags: Mapping[str, Any]
    log_events: tuple[str, ...]
    """The ``event`` field of each log (span event)."""
    start_us: int


@dataclass(frozen=True, slots=True)
class JaegerTrace:
    """One entry of a Jaeger-JSON file's ``data``."""

    trace_id: str
    spans: tuple[JaegerSpan, ...]

    def named(self, operation: str) -> list[JaegerSpan]:
        """The spans called ``operation``, oldest first."""
        return sorted((s for s in self.spans if s.operation == operation), key=lambda s: s.start_us)

    def chain(self, span: JaegerSpan) -> list[tuple[str, str]]:
        """``(service, operation)`` of the span and each CHILD_OF ancestor up to the root."""
        by_id = {s.span_id: s for s in self.spans}
        out = [(span.service, span.operation)]
        while span.references:
            span = by_id[span.references[0][2]]
            out.append((span.service, span.operation))
        return out


def _typed(value: object, kind: type[Any], where: str) -> Any:
    assert isinstance(value, kind), f"{where}: expected {kind.__name__}, got {type(value).__name__}"
    return value


def read_jaeger_file(path: Path) -> list[JaegerTrace]:
    """Parse a Jaeger-JSON file ``{"data": [{traceID, spans, processes}]}``, checking its shape on the way."""
    document = _typed(json.loads(path.read_text(encoding="utf-8")), dict, "document")
    traces: list[JaegerTrace] = []
    for raw_trace in _typed(document.get("data"), list, "data"):
        trace = _typed(raw_trace, dict, "trace")
        trace_id = _typed(trace.get("traceID"), str, "traceID")
        processes = _typed(trace.get("processes"), dict, "processes")
        services = {
            key: _typed(_typed(p, dict, key).get("serviceName"), str, "serviceName") for key, p in processes.items()
        }
        spans: list[JaegerSpan] = []
        for raw_span in _typed(trace.get("spans"), list, "spans"):
            span = _typed(raw_span, dict, "span")
            process_id = _typed(span.get("processID"), str, "processID")
            assert process_id in services, f"span {span.get('spanID')} names an unknown process {process_id}"
            _typed(span.get("duration"), int, "duration")
            references = [_typed(r, dict, "reference") for r in _typed(span.get("references"), list, "references")]
            tags = [_typed(t, dict, "tag") for t in _typed(span.get("tags"), list, "tags")]
            logs = [_typed(entry, dict, "log") for entry in _typed(span.get("logs"), list, "logs")]
            events = [
                str(field["value"])
                for entry in logs
                for field in _typed(entry.get("fields"), list, "fields")
                if _typed(field, dict, "field").get("key") == "event"
            ]
            spans.append(
                JaegerSpan(
                    trace_id=_typed(span.get("traceID"), str, "traceID"),
                    span_id=_typed(span.get("spanID"), str, "spanID"),
                    operation=_typed(span.get("operationName"), str, "operationName"),
                    service=services[process_id],
                    references=tuple((str(r["refType"]), str(r["traceID"]), str(r["spanID"])) for r in references),
                    tags={str(t["key"]): t["value"] for t in tags},
                    log_events=tuple(events),
                    start_us=_typed(span.get("startTime"), int, "startTime"),
                )
            )
        traces.append(JaegerTrace(trace_id, tuple(spans)))
    return traces
