"""Tracing settings: the config's ``tracing:`` section and the standard ``OTEL_*`` variables, resolved.

Pure: reads the mapping it is given, never ``os.environ`` itself, and builds nothing.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, cast
from urllib.parse import unquote, urlsplit

from orchestrator.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.config import TracingSpec

__all__ = ["FILE_ENV", "UI_URL_ENV", "ExporterName", "OtlpProtocol", "TracingSettings", "resolve_settings"]

logger = logging.getLogger(__name__)

FILE_ENV: Final = "ORCHESTRATOR_TRACES_FILE"
"""Path of the Jaeger-JSON file; ``{service}`` and ``{pid}`` in it are replaced."""
UI_URL_ENV: Final = "JAEGER_UI_URL"

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
        return tuple(cast("ExporterName", n) for n in names if n != "none")
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
