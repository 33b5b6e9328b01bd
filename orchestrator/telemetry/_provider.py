"""The ``TracerProvider`` that tracing settings describe: resource, sampler, one processor per exporter.

Loaded only when tracing is on (``configure_tracing`` imports it then): the SDK it builds on
costs tens of milliseconds to import. Each exporter's transport loads only when that exporter
is configured. Installs nothing: ``_setup`` decides whether the provider becomes the global one.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)

from orchestrator.errors import ConfigError
from orchestrator.telemetry._processors import (
    FlushingBatchSpanProcessor,
    JaegerJsonFileExporter,
    McpAttributesProcessor,
)

if TYPE_CHECKING:
    from orchestrator.telemetry._settings import TracingSettings

__all__ = ["tracer_provider"]

_CONFIG_SOURCE: Final = "tracing configuration"


def tracer_provider(
    settings: TracingSettings, *, shutdown_on_exit: bool
) -> tuple[TracerProvider, tuple[SpanExporter, ...]]:
    """The provider for ``settings`` (tracing on) with the MCP attribute enrichment, and its exporters.

    Args:
        settings: Resolved settings with at least one exporter.
        shutdown_on_exit: Flush and stop the provider when the interpreter exits (the global one).

    Raises:
        ConfigError: gRPC export is asked for without its package installed.
    """
    exporters = _exporters(settings)
    resource = Resource.create({**settings.resource_attributes, "service.name": settings.service_name})
    provider = TracerProvider(resource=resource, sampler=_sampler(settings), shutdown_on_exit=shutdown_on_exit)
    provider.add_span_processor(McpAttributesProcessor())
    for exporter in exporters:
        provider.add_span_processor(_processor(exporter))
    return provider, tuple(exporters)


def _sampler(settings: TracingSettings) -> Sampler:
    ratio = settings.sampler_arg if settings.sampler_arg is not None else 1.0
    samplers: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "parentbased_always_on": DEFAULT_ON,
        "parentbased_always_off": DEFAULT_OFF,
    }
    if settings.sampler == "traceidratio":
        return TraceIdRatioBased(ratio)
    if settings.sampler == "parentbased_traceidratio":
        return ParentBasedTraceIdRatio(ratio)
    return samplers[settings.sampler]


def _otlp_exporter(settings: TracingSettings) -> SpanExporter:
    # Imported here, not at the top: each exporter pulls in its transport (requests or
    # grpcio, ~0.1-0.3 s), which a CLI run with tracing off or another exporter must not pay.
    assert settings.endpoint is not None
    if settings.protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        except ImportError as exc:
            raise ConfigError(
                _CONFIG_SOURCE,
                ["OTLP over gRPC needs the package opentelemetry-exporter-otlp-proto-grpc"],
            ) from exc
        return GrpcExporter(endpoint=settings.endpoint)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(endpoint=settings.endpoint)


def _exporters(settings: TracingSettings) -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    for name in settings.exporters:
        if name == "otlp":
            exporters.append(_otlp_exporter(settings))
        elif name == "console":
            # stderr: stdout carries the MCP protocol when serving over stdio.
            exporters.append(ConsoleSpanExporter(out=sys.stderr))
        else:
            assert settings.file is not None
            exporters.append(JaegerJsonFileExporter(settings.file))
    return exporters


def _processor(exporter: SpanExporter) -> SpanProcessor:
    # The console is for watching spans as they happen; everything else is batched, and a
    # flush reaches the exporter (the Jaeger file holds a coalesced write back).
    if isinstance(exporter, ConsoleSpanExporter):
        return SimpleSpanProcessor(exporter)
    return FlushingBatchSpanProcessor(exporter)
