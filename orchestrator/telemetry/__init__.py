"""The OpenTelemetry SDK side: settings, our processors and exporters, the Jaeger-JSON file, setup.

The only package that imports ``opentelemetry.sdk`` (ruff's TID251 enforces it). Library
code records spans through ``orchestrator.tracing`` (OpenTelemetry API only) and never
imports this package; the command line, an embedding application (which hands the result
to ``Aggregator(tracing=...)``) and the bundled example servers call ``configure_tracing``.

Owns: turning the config's ``tracing:`` section and the ``OTEL_*`` variables into settings
(``resolve_settings``), building and installing a ``TracerProvider`` (``configure_tracing``),
the MCP attribute enrichment of the SDK's client spans, and the Jaeger UI's JSON file format
(write, read, merge). Does not: create spans of its own.

Names load on first use (PEP 562), and the SDK only when tracing is on (``configure_tracing``
builds the provider in ``_provider`` then) or a name from ``_processors`` is used: a process
with tracing off does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator._lazy import lazy_names

if TYPE_CHECKING:
    from orchestrator.telemetry._jaeger_file import (
        AttributeValue,
        EventRecord,
        JaegerTraceStore,
        LinkRecord,
        SpanRecord,
        jaeger_document,
        merge_jaeger_files,
        read_jaeger_traces,
    )
    from orchestrator.telemetry._processors import (
        MCP_SDK_SCOPE,
        FlushingBatchSpanProcessor,
        JaegerJsonFileExporter,
        McpAttributesProcessor,
        TimerFn,
        span_record,
    )
    from orchestrator.telemetry._settings import (
        FILE_ENV,
        UI_URL_ENV,
        ExporterName,
        OtlpProtocol,
        TracingSettings,
        resolve_settings,
    )
    from orchestrator.telemetry._setup import TracingHandle, configure_tracing

__all__ = [
    "FILE_ENV",
    "MCP_SDK_SCOPE",
    "UI_URL_ENV",
    "AttributeValue",
    "EventRecord",
    "ExporterName",
    "FlushingBatchSpanProcessor",
    "JaegerJsonFileExporter",
    "JaegerTraceStore",
    "LinkRecord",
    "McpAttributesProcessor",
    "OtlpProtocol",
    "SpanRecord",
    "TimerFn",
    "TracingHandle",
    "TracingSettings",
    "configure_tracing",
    "jaeger_document",
    "merge_jaeger_files",
    "read_jaeger_traces",
    "resolve_settings",
    "span_record",
]

_HOMES = {
    **dict.fromkeys(
        (
            "AttributeValue",
            "EventRecord",
            "JaegerTraceStore",
            "LinkRecord",
            "SpanRecord",
            "jaeger_document",
            "merge_jaeger_files",
            "read_jaeger_traces",
        ),
        "orchestrator.telemetry._jaeger_file",
    ),
    **dict.fromkeys(
        (
            "MCP_SDK_SCOPE",
            "FlushingBatchSpanProcessor",
            "JaegerJsonFileExporter",
            "McpAttributesProcessor",
            "TimerFn",
            "span_record",
        ),
        "orchestrator.telemetry._processors",
    ),
    **dict.fromkeys(
        ("FILE_ENV", "UI_URL_ENV", "ExporterName", "OtlpProtocol", "TracingSettings", "resolve_settings"),
        "orchestrator.telemetry._settings",
    ),
    **dict.fromkeys(("TracingHandle", "configure_tracing"), "orchestrator.telemetry._setup"),
}

__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__, globals())
