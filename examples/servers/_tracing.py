"""OpenTelemetry for the example servers: export their own spans when the ``OTEL_*`` variables ask.

Owns turning the process environment into a tracer provider for one example server and
flushing it when the server stops. It reuses the orchestrator's setup, so the servers
understand exactly the variables the orchestrator does (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_TRACES_EXPORTER=otlp|console|jaeger_file|none``, ``OTEL_SERVICE_NAME``, …); the
service name defaults to the server's name. With none of them set nothing is installed.

The MCP SDK does the rest: its server middleware opens a SERVER span per request, parented
by the ``traceparent`` the caller put in ``params._meta``, so a server started by the
orchestrator (which passes its ``OTEL_*`` variables on) joins the orchestrator's trace.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Mapping
from contextlib import contextmanager

from orchestrator.config import TracingSpec
from orchestrator.errors import ConfigError
from orchestrator.telemetry import TracingHandle, configure_tracing

__all__ = ["traced"]


@contextmanager
def traced(
    service_name: str, env: Mapping[str, str] = os.environ, *, set_global: bool = True
) -> Generator[TracingHandle]:
    """Configure tracing from ``env`` for the block, then flush every span (on any exit).

    Args:
        service_name: ``service.name`` unless ``OTEL_SERVICE_NAME`` says otherwise.
        env: Where the ``OTEL_*`` variables are read.
        set_global: Install the provider as the process's global one (tests pass False).

    Raises:
        SystemExit: A tracing variable is invalid (the message names it).
    """
    try:
        handle = configure_tracing(TracingSpec(service_name=service_name), env, set_global=set_global)
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from exc
    try:
        yield handle
    finally:
        handle.shutdown()
