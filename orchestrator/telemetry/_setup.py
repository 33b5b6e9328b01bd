"""Tracing setup: resolves the settings, has the ``TracerProvider`` built, hands back a handle that flushes it.

Owns installing the provider globally only when asked, flushing at shutdown, merging the
stdio children's trace files, and the environment handed to stdio children so they export to
the same place; ``_provider`` builds the provider (resource, sampler, one processor per exporter).

When nothing enables tracing nothing is installed: the API's default no-op provider stays,
so every span the SDK or the orchestrator starts is a non-recording span, and the SDK is not
even imported.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Final

from opentelemetry import trace

from orchestrator.config import TracingSpec
from orchestrator.telemetry._jaeger_file import (
    merge_jaeger_files,
)
from orchestrator.telemetry._settings import FILE_ENV, TracingSettings, resolve_settings

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["TracingHandle", "configure_tracing"]

logger = logging.getLogger(__name__)

_FLUSH_TIMEOUT_MS: Final = 10_000


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
    # Imported here, on purpose: the SDK (with psutil, which its resources load) costs tens of
    # milliseconds, which a process with tracing off (most starts of `serve`) must not pay.
    from orchestrator.telemetry._provider import tracer_provider

    provider, exporters = tracer_provider(settings, shutdown_on_exit=set_global)
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
    return TracingHandle(settings, provider, env, exporters)
