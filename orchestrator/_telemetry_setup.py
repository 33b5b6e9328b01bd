"""OpenTelemetry SDK setup: the one module that builds providers, processors and exporters.

Owns turning the config's ``tracing:`` section and the standard ``OTEL_*`` variables (which
win) into a ``TracerProvider``; the SDK-side enrichment of the MCP SDK's client spans
(``McpAttributesProcessor``); the Jaeger-JSON file exporter; flushing at shutdown; the
environment handed to stdio children so they export to the same place. Called by the CLI
(the composition root) and the bundled example servers; library code never imports it and
uses ``orchestrator.tracing`` (OpenTelemetry API only) instead.

When nothing enables tracing nothing is installed: the API's default no-op provider stays,
so every span the SDK or the orchestrator starts is a non-recording span.

Precedence, highest first:

- ``OTEL_SDK_DISABLED=true`` turns everything off.
- Exporters: ``OTEL_TRACES_EXPORTER`` (comma list of ``otlp``, ``console``, ``jaeger_file``,
  ``none``); else ``otlp`` when ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`` is set; else
  ``tracing.exporter`` (``file`` is ``jaeger_file``, ``otlp_grpc`` is ``otlp`` over gRPC).
- Protocol: ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``, ``OTEL_EXPORTER_OTLP_PROTOCOL``, the
  config (``otlp_grpc``), else ``http/protobuf``.
- Endpoint: ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` as is; else ``OTEL_EXPORTER_OTLP_ENDPOINT``
  or ``tracing.endpoint`` as a base URL (``/v1/traces`` appended for HTTP); else Jaeger's
  local ports (4318 HTTP, 4317 gRPC).
- ``OTEL_SERVICE_NAME``, then ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``, then
  ``tracing.service_name``; ``JAEGER_UI_URL`` then ``tracing.ui_url``;
  ``ORCHESTRATOR_TRACES_FILE`` then ``tracing.file`` then ``./traces.json``.
- ``OTEL_TRACES_SAMPLER``/``_ARG`` (default ``parentbased_always_on``).

The exporters' own tuning variables (``OTEL_EXPORTER_OTLP_HEADERS``, ``_TIMEOUT``,
``_COMPRESSION``, certificates, ``OTEL_BSP_*``) and ``OTEL_PROPAGATORS`` (default
``tracecontext,baggage``) are read by the SDK itself from the process environment.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, cast
from urllib.parse import unquote, urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
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
from opentelemetry.trace import SpanKind

from orchestrator._jaeger_file import (
    EventRecord,
    JaegerTraceStore,
    LinkRecord,
    SpanRecord,
    merge_jaeger_files,
    write_json_atomic,
)
from orchestrator.config import TracingSpec
from orchestrator.errors import ConfigError
from orchestrator.tracing import current_downstream_call

__all__ = [
    "FILE_ENV",
    "MCP_SDK_SCOPE",
    "UI_URL_ENV",
    "ExporterName",
    "JaegerJsonFileExporter",
    "McpAttributesProcessor",
    "OtlpProtocol",
    "TracingHandle",
    "TracingSettings",
    "configure_tracing",
    "resolve_settings",
    "span_record",
]

logger = logging.getLogger(__name__)

FILE_ENV: Final = "ORCHESTRATOR_TRACES_FILE"
"""Path of the Jaeger-JSON file; ``{service}`` and ``{pid}`` in it are replaced."""
UI_URL_ENV: Final = "JAEGER_UI_URL"
MCP_SDK_SCOPE: Final = "mcp-python-sdk"

ExporterName = Literal["otlp", "console", "jaeger_file"]
OtlpProtocol = Literal["http/protobuf", "grpc"]

_EXPORTERS: Final[frozenset[str]] = frozenset({"otlp", "console", "jaeger_file"})
_CONFIG_EXPORTERS: Final[Mapping[str, tuple[ExporterName, ...]]] = {
    "none": (),
    "otlp": ("otlp",),
    "otlp_grpc": ("otlp",),
    "console": ("console",),
    "file": ("jaeger_file",),
}
_SAMPLERS: Final[frozenset[str]] = frozenset(
    {
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    }
)
_DEFAULT_HTTP_ENDPOINT: Final = "http://localhost:4318/v1/traces"
_DEFAULT_GRPC_ENDPOINT: Final = "http://localhost:4317"
_DEFAULT_FILE: Final = "traces.json"
_ENV_SOURCE: Final = "environment"
_CONFIG_SOURCE: Final = "tracing configuration"
_FLUSH_TIMEOUT_MS: Final = 10_000


# -------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """The resolved tracing setup, after the variables and the config have been combined."""

    exporters: tuple[ExporterName, ...]
    """Empty when tracing is off."""
    service_name: str
    protocol: OtlpProtocol = "http/protobuf"
    endpoint: str | None = None
    """The full traces endpoint, set when ``otlp`` is among the exporters."""
    file: Path | None = None
    """Absolute path of the Jaeger-JSON file, set when ``jaeger_file`` is among the exporters."""
    resource_attributes: Mapping[str, str] = field(default_factory=dict[str, str])
    sampler: str = "parentbased_always_on"
    sampler_arg: float | None = None
    ui_url: str | None = None
    record_payloads: bool = False

    @property
    def enabled(self) -> bool:
        """Whether any exporter is configured (otherwise nothing is installed)."""
        return bool(self.exporters)


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _parse_resource_attributes(raw: str | None) -> dict[str, str]:
    # Same rules as the SDK's OTELResourceDetector: comma-separated key=value, values URL-decoded.
    attributes: dict[str, str] = {}
    for item in (raw or "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = unquote(value.strip())
    return attributes


def _resolve_exporters(spec: TracingSpec, env: Mapping[str, str], problems: list[str]) -> tuple[ExporterName, ...]:
    if (_get(env, "OTEL_SDK_DISABLED") or "").lower() == "true":
        return ()
    raw = _get(env, "OTEL_TRACES_EXPORTER")
    if raw is not None:
        names = list(dict.fromkeys(n.strip().lower() for n in raw.split(",") if n.strip()))
        unknown = [n for n in names if n not in _EXPORTERS and n != "none"]
        if unknown:
            expected = ", ".join(sorted(_EXPORTERS | {"none"}))
            problems.append(f"OTEL_TRACES_EXPORTER: unknown exporter(s) {', '.join(unknown)} (expected {expected})")
            return ()
        if "none" in names and len(names) > 1:
            problems.append("OTEL_TRACES_EXPORTER: 'none' cannot be combined with other exporters")
            return ()
        return tuple(cast(ExporterName, n) for n in names if n != "none")
    if _get(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or _get(env, "OTEL_EXPORTER_OTLP_ENDPOINT"):
        return ("otlp",)
    return _CONFIG_EXPORTERS[spec.exporter]


def _resolve_protocol(spec: TracingSpec, env: Mapping[str, str], problems: list[str]) -> OtlpProtocol:
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        raw = _get(env, name)
        if raw is None:
            continue
        if raw == "http/protobuf" or raw == "grpc":
            return raw
        hint = " (the Python exporter has no http/json; use http/protobuf)" if raw == "http/json" else ""
        problems.append(f"{name}: unsupported protocol {raw!r}, expected http/protobuf or grpc{hint}")
        return "http/protobuf"
    return "grpc" if spec.exporter == "otlp_grpc" else "http/protobuf"


def _traces_url(base: str) -> str:
    # OTel spec: the signal path is appended to the base endpoint. A base that already
    # ends in it is taken as the full URL instead of doubling it.
    trimmed = base.rstrip("/")
    return trimmed if trimmed.endswith("/v1/traces") else f"{trimmed}/v1/traces"


def _resolve_endpoint(spec: TracingSpec, env: Mapping[str, str], protocol: OtlpProtocol, problems: list[str]) -> str:
    traces = _get(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    base_name, base = "OTEL_EXPORTER_OTLP_ENDPOINT", _get(env, "OTEL_EXPORTER_OTLP_ENDPOINT")
    if base is None and spec.endpoint:
        base_name, base = "tracing.endpoint", spec.endpoint.strip()
    if traces is not None:
        name, endpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces
    elif base is not None:
        name, endpoint = base_name, (_traces_url(base) if protocol == "http/protobuf" else base)
    else:
        return _DEFAULT_HTTP_ENDPOINT if protocol == "http/protobuf" else _DEFAULT_GRPC_ENDPOINT
    if protocol == "http/protobuf" and urlsplit(endpoint).scheme not in ("http", "https"):
        problems.append(f"{name}: {endpoint!r} is not an http:// or https:// URL")
    return endpoint


def _resolve_sampler(env: Mapping[str, str], problems: list[str]) -> tuple[str, float | None]:
    name = (_get(env, "OTEL_TRACES_SAMPLER") or "parentbased_always_on").lower()
    if name not in _SAMPLERS:
        problems.append(f"OTEL_TRACES_SAMPLER: unsupported sampler {name!r} (expected {', '.join(sorted(_SAMPLERS))})")
        return "parentbased_always_on", None
    if not name.endswith("traceidratio"):
        return name, None
    raw = _get(env, "OTEL_TRACES_SAMPLER_ARG")
    if raw is None:
        return name, 1.0
    try:
        ratio = float(raw)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        problems.append(f"OTEL_TRACES_SAMPLER_ARG: {raw!r} is not a ratio between 0 and 1")
        return name, 1.0
    return name, ratio


def _resolve_file(spec: TracingSpec, env: Mapping[str, str], service_name: str) -> Path:
    raw = _get(env, FILE_ENV) or (str(spec.file) if spec.file is not None else _DEFAULT_FILE)
    expanded = raw.replace("{service}", service_name).replace("{pid}", str(os.getpid()))
    return Path(expanded).expanduser().absolute()


def resolve_settings(spec: TracingSpec, env: Mapping[str, str]) -> TracingSettings:
    """Combine the config's ``tracing:`` section with the environment (which wins); pure.

    Raises:
        ConfigError: A variable or config value is invalid; lists every problem.
    """
    env_problems: list[str] = []
    exporters = _resolve_exporters(spec, env, env_problems)
    resource_attributes = _parse_resource_attributes(_get(env, "OTEL_RESOURCE_ATTRIBUTES"))
    service_name = _get(env, "OTEL_SERVICE_NAME") or resource_attributes.get("service.name") or spec.service_name
    protocol = _resolve_protocol(spec, env, env_problems)
    endpoint = _resolve_endpoint(spec, env, protocol, env_problems) if "otlp" in exporters else None
    sampler, sampler_arg = _resolve_sampler(env, env_problems) if exporters else ("parentbased_always_on", None)
    if env_problems:
        raise ConfigError(_ENV_SOURCE, env_problems)
    ui_url = _get(env, UI_URL_ENV) or spec.ui_url
    return TracingSettings(
        exporters=exporters,
        service_name=service_name,
        protocol=protocol,
        endpoint=endpoint,
        file=_resolve_file(spec, env, service_name) if "jaeger_file" in exporters else None,
        resource_attributes=resource_attributes,
        sampler=sampler,
        sampler_arg=sampler_arg,
        ui_url=ui_url.rstrip("/") if ui_url else None,
        record_payloads=spec.record_payloads and bool(exporters),
    )


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
                write_json_atomic(self.path, self._store.document())
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


# ------------------------------------------------------------------- handle


class TracingHandle:
    """What ``configure_tracing`` set up: flushes at shutdown, builds trace links and child environments.

    Attributes:
        settings: The resolved settings.
        provider: The provider built, or None when tracing is off.
        exporters: The exporters built, one per configured exporter, in order.
    """

    def __init__(
        self,
        settings: TracingSettings,
        provider: TracerProvider | None,
        env: Mapping[str, str],
        exporters: tuple[SpanExporter, ...] = (),
    ) -> None:
        self.settings = settings
        self.provider = provider
        self.exporters = exporters
        self._otel_env = {k: v for k, v in env.items() if k.startswith("OTEL_")}
        self._started = time.time()
        self._child_files: dict[str, Path] = {}
        self._lock = threading.Lock()
        self._shut_down = False

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded and exported by this process."""
        return self.provider is not None

    @property
    def record_payloads(self) -> bool:
        """Whether tool arguments and results are recorded (redacted) on spans."""
        return self.settings.record_payloads

    def trace_url(self, trace_id: str) -> str | None:
        """``{ui_url}/trace/{trace_id}``, or None without a UI URL or when tracing is off."""
        if not self.enabled or self.settings.ui_url is None:
            return None
        return f"{self.settings.ui_url}/trace/{trace_id}"

    def child_trace_file(self, server_key: str) -> Path | None:
        """The Jaeger-JSON file a stdio child named ``server_key`` writes: ``traces.json`` → ``traces.<key>.json``."""
        main = self.settings.file
        if main is None:
            return None
        return main.with_name(f"{main.stem}.{server_key}{main.suffix or '.json'}")

    def child_environment(self, server_key: str) -> dict[str, str]:
        """The ``OTEL_*`` variables a stdio child needs to export where this process does.

        Every ``OTEL_*`` variable of this process's environment, with the resolved
        exporter, protocol and endpoint made explicit (so a config-file-only setup reaches
        children too), ``OTEL_SERVICE_NAME=<server_key>`` and, for the file exporter, a
        per-child file next to ours (merged into ours at ``shutdown``). Empty when tracing
        is off. Lay the server's own configured ``env`` over it, so a user can override.
        """
        if not self.enabled:
            return {}
        env = dict(self._otel_env)
        env.pop("OTEL_SDK_DISABLED", None)
        env["OTEL_SERVICE_NAME"] = server_key
        env["OTEL_TRACES_EXPORTER"] = ",".join(self.settings.exporters)
        if self.settings.endpoint is not None:
            env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = self.settings.protocol
            env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = self.settings.endpoint
        child_file = self.child_trace_file(server_key)
        if child_file is not None:
            env[FILE_ENV] = str(child_file)
            with self._lock:
                self._child_files[server_key] = child_file
        return env

    def force_flush(self, timeout_millis: int = _FLUSH_TIMEOUT_MS) -> bool:
        """Export every finished span now; False if an exporter did not finish in time."""
        if self.provider is None or self._shut_down:
            return True
        return self.provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and stop the exporters; then merge the children's trace files into ours. Safe to call twice."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            child_files = list(self._child_files.values())
        if self.provider is None:
            return
        if not self.provider.force_flush(_FLUSH_TIMEOUT_MS):
            logger.warning("tracing: not every span was exported within %d ms", _FLUSH_TIMEOUT_MS)
        self.provider.shutdown()
        self._merge_child_files(child_files)

    def _merge_child_files(self, child_files: Iterable[Path]) -> None:
        main = self.settings.file
        # Only files written during this run: a stale file of a server not started now must not leak in.
        fresh = [p for p in child_files if p.exists() and p.stat().st_mtime >= self._started - 1.0]
        if main is None or not fresh:
            return
        try:
            count = merge_jaeger_files([main, *fresh], main)
        except (OSError, ValueError) as exc:
            logger.warning("tracing: could not merge the servers' trace files into %s: %s", main, exc)
            return
        # Their spans are in ours now; left behind they would only be merged (or uploaded) twice.
        for merged in fresh:
            try:
                merged.unlink(missing_ok=True)
            except OSError as exc:
                logger.warning("tracing: could not remove %s after merging it: %s", merged, exc.strerror or exc)
        logger.info("tracing: merged %d trace(s) from %d server file(s) into %s", count, len(fresh), main)


# -------------------------------------------------------------------- setup


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
    # The console is for watching spans as they happen; everything else is batched.
    if isinstance(exporter, ConsoleSpanExporter):
        return SimpleSpanProcessor(exporter)
    return BatchSpanProcessor(exporter)


def configure_tracing(
    spec: TracingSpec | None = None, env: Mapping[str, str] = os.environ, *, set_global: bool = True
) -> TracingHandle:
    """Set up OpenTelemetry tracing for this process from the config and the environment.

    Installs nothing when tracing is off. Otherwise builds a ``TracerProvider`` (resource
    with the service name and ``OTEL_RESOURCE_ATTRIBUTES``, the sampler, the MCP attribute
    enrichment, one processor per exporter) and, with ``set_global``, makes it the global
    provider, which the MCP SDK's and the orchestrator's tracers then use. Call
    ``shutdown()`` on the handle before exiting to flush.

    Args:
        spec: The config's ``tracing:`` section; default: all off (variables only).
        env: The environment to read ``OTEL_*``, ``JAEGER_UI_URL`` and ``ORCHESTRATOR_TRACES_FILE`` from.
        set_global: Install the provider globally (once per process; tests pass False).

    Raises:
        ConfigError: A variable or config value is invalid, or gRPC export is asked for
            without its package installed.
    """
    settings = resolve_settings(spec or TracingSpec(), env)
    if not settings.enabled:
        return TracingHandle(settings, None, env)
    exporters = _exporters(settings)
    resource = Resource.create({**settings.resource_attributes, "service.name": settings.service_name})
    provider = TracerProvider(resource=resource, sampler=_sampler(settings), shutdown_on_exit=set_global)
    provider.add_span_processor(McpAttributesProcessor())
    for exporter in exporters:
        provider.add_span_processor(_processor(exporter))
    if set_global:
        trace.set_tracer_provider(provider)
        if trace.get_tracer_provider() is not provider:
            # The API allows one global provider per process and ignores later ones.
            logger.warning("tracing: a tracer provider was already installed; configure_tracing runs once per process")
    where = settings.endpoint if settings.endpoint is not None else settings.file
    logger.info(
        "tracing: %s as service %r%s",
        ", ".join(settings.exporters),
        settings.service_name,
        f" to {where}" if where is not None else "",
    )
    return TracingHandle(settings, provider, env, tuple(exporters))
