"""How the config's ``tracing:`` section and the ``OTEL_*`` variables combine (variables win), and what gets built.

Pure: providers are built with ``set_global=False`` and inspected; nothing is exported.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from orchestrator.config import TracingSpec
from orchestrator.errors import ConfigError
from orchestrator.telemetry import (
    FILE_ENV,
    JaegerJsonFileExporter,
    TracingSettings,
    configure_tracing,
    resolve_settings,
)

if TYPE_CHECKING:
    from pathlib import Path

OFF = TracingSpec()


def resolve(env: dict[str, str], spec: TracingSpec = OFF) -> TracingSettings:
    return resolve_settings(spec, env)


# ------------------------------------------------------------------ on / off


def test_nothing_set_means_tracing_off() -> None:
    settings = resolve({})
    assert not settings.enabled
    assert settings.exporters == ()


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"},
        {"OTEL_TRACES_EXPORTER": "otlp"},
    ],
)
def test_an_otlp_variable_alone_turns_otlp_export_on(env: dict[str, str]) -> None:
    assert resolve(env).exporters == ("otlp",)


@pytest.mark.parametrize("value", ["true", "TRUE", " true "])
def test_otel_sdk_disabled_wins_over_everything(value: str) -> None:
    env = {"OTEL_SDK_DISABLED": value, "OTEL_TRACES_EXPORTER": "console", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}
    assert resolve(env, TracingSpec(exporter="otlp")).exporters == ()


def test_otel_sdk_disabled_false_changes_nothing() -> None:
    assert resolve({"OTEL_SDK_DISABLED": "false"}, TracingSpec(exporter="console")).exporters == ("console",)


def test_otel_traces_exporter_none_turns_off_what_the_config_turned_on() -> None:
    assert resolve({"OTEL_TRACES_EXPORTER": "none"}, TracingSpec(exporter="otlp")).exporters == ()


def test_otel_traces_exporter_wins_over_the_endpoint_variable_and_the_config() -> None:
    env = {"OTEL_TRACES_EXPORTER": "console, jaeger_file,console", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}
    assert resolve(env, TracingSpec(exporter="otlp")).exporters == ("console", "jaeger_file")


def test_the_endpoint_variable_wins_over_the_config_exporter() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}
    assert resolve(env, TracingSpec(exporter="file")).exporters == ("otlp",)


@pytest.mark.parametrize(
    ("exporter", "expected"),
    [
        ("none", ()),
        ("otlp", ("otlp",)),
        ("otlp_grpc", ("otlp",)),
        ("console", ("console",)),
        ("file", ("jaeger_file",)),
    ],
)
def test_the_config_exporter_applies_without_variables(exporter: str, expected: tuple[str, ...]) -> None:
    spec = TracingSpec.model_validate({"exporter": exporter})
    assert resolve({}, spec).exporters == expected


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER: unknown exporter(s) zipkin"),
        ({"OTEL_TRACES_EXPORTER": "none,otlp"}, "'none' cannot be combined"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "no http/json"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "udp"}, "unsupported protocol 'udp'"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "is not an http:// or https:// URL"),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "jaeger_remote"}, "unsupported sampler"),
        (
            {"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
            "OTEL_TRACES_SAMPLER_ARG: '2' is not a ratio",
        ),
    ],
)
def test_invalid_variables_are_a_config_error_naming_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(env)
    assert caught.value.path == "environment"
    assert fragment in str(caught.value)


# ----------------------------------------------------------- endpoint, protocol


@pytest.mark.parametrize(
    ("env", "spec", "endpoint"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, OFF, "http://c:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, OFF, "http://c:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c/otel"}, OFF, "https://c/otel/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/v1/traces"}, OFF, "http://c:4318/v1/traces"),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/custom", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
            OFF,
            "http://t:1/custom",
        ),
        ({}, TracingSpec(exporter="otlp", endpoint="http://jaeger:4318"), "http://jaeger:4318/v1/traces"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318"},
            TracingSpec(exporter="otlp", endpoint="http://cfg:4318"),
            "http://env:4318/v1/traces",
        ),
        ({}, TracingSpec(exporter="otlp"), "http://localhost:4318/v1/traces"),
    ],
)
def test_the_http_endpoint_is_a_base_url_with_the_signal_path_appended(
    env: dict[str, str], spec: TracingSpec, endpoint: str
) -> None:
    settings = resolve(env, spec)
    assert settings.protocol == "http/protobuf"
    assert settings.endpoint == endpoint


@pytest.mark.parametrize(
    ("env", "spec", "endpoint"),
    [
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, OFF, "http://localhost:4317"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, OFF, "http://c:4317"),
        ({}, TracingSpec(exporter="otlp_grpc", endpoint="collector:4317"), "collector:4317"),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
            TracingSpec(exporter="otlp"),
            "http://localhost:4317",
        ),
    ],
)
def test_grpc_takes_the_endpoint_as_is(env: dict[str, str], spec: TracingSpec, endpoint: str) -> None:
    settings = resolve(env, spec)
    assert settings.protocol == "grpc"
    assert settings.endpoint == endpoint


def test_the_protocol_variable_wins_over_the_config() -> None:
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    assert resolve(env, TracingSpec(exporter="otlp_grpc")).protocol == "http/protobuf"


# -------------------------------------------------- service, sampler, file, ui


def test_service_name_precedence_is_variable_then_resource_attributes_then_config() -> None:
    spec = TracingSpec(exporter="console", service_name="from-config")
    assert resolve({}, spec).service_name == "from-config"
    attrs = {"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs,deployment.environment=prod%20eu"}
    settings = resolve(attrs, spec)
    assert settings.service_name == "from-attrs"
    assert settings.resource_attributes == {"service.name": "from-attrs", "deployment.environment": "prod eu"}
    assert resolve({**attrs, "OTEL_SERVICE_NAME": "from-var"}, spec).service_name == "from-var"


@pytest.mark.parametrize(
    ("env", "sampler", "arg"),
    [
        ({}, "parentbased_always_on", None),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, "always_off", None),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, "traceidratio", 0.25),
        ({"OTEL_TRACES_SAMPLER": "ParentBased_TraceIdRatio"}, "parentbased_traceidratio", 1.0),
    ],
)
def test_sampler_variables(env: dict[str, str], sampler: str, arg: float | None) -> None:
    settings = resolve({"OTEL_TRACES_EXPORTER": "console", **env})
    assert (settings.sampler, settings.sampler_arg) == (sampler, arg)


def test_the_trace_file_comes_from_the_variable_then_the_config_then_a_default(tmp_path: Path) -> None:
    spec = TracingSpec(exporter="file", service_name="agg", file=tmp_path / "cfg.json")
    assert resolve({}, spec).file == tmp_path / "cfg.json"
    env = {FILE_ENV: str(tmp_path / "traces-{service}.json")}
    assert resolve(env, spec).file == tmp_path / "traces-agg.json"
    default = resolve({}, TracingSpec(exporter="file")).file
    assert default is not None
    assert default.is_absolute()
    assert default.name == "traces.json"
    assert resolve({}, TracingSpec(exporter="console")).file is None


def test_the_ui_url_comes_from_jaeger_ui_url_then_the_config() -> None:
    spec = TracingSpec(exporter="console", ui_url="http://cfg:16686/")
    assert resolve({}, spec).ui_url == "http://cfg:16686"
    assert resolve({"JAEGER_UI_URL": "http://env:16686"}, spec).ui_url == "http://env:16686"


def test_payload_recording_needs_tracing_on() -> None:
    assert resolve({}, TracingSpec(exporter="console", record_payloads=True)).record_payloads
    assert not resolve({}, TracingSpec(exporter="none", record_payloads=True)).record_payloads


# ---------------------------------------------------------------- building


def test_tracing_off_installs_nothing_and_the_handle_is_inert() -> None:
    before = trace.get_tracer_provider()
    handle = configure_tracing(TracingSpec(ui_url="http://jaeger:16686"), {})
    assert handle.provider is None
    assert handle.exporters == ()
    assert trace.get_tracer_provider() is before
    assert handle.trace_url("0" * 32) is None
    assert handle.child_environment("db") == {}
    assert handle.force_flush()
    handle.shutdown()
    handle.shutdown()


def test_tracing_off_in_a_fresh_process_keeps_the_api_no_op_provider_and_loads_no_exporter() -> None:
    script = (
        "import sys\n"
        "from orchestrator.telemetry import configure_tracing\n"
        "from opentelemetry import trace\n"
        "handle = configure_tracing(env={})\n"
        "print(type(trace.get_tracer_provider()).__name__)\n"
        "print(any(name.startswith('opentelemetry.exporter') for name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == ["ProxyTracerProvider", "False"]


def test_otlp_http_builds_a_batched_http_exporter_and_the_configured_resource_and_sampler() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.5",
    }
    handle = configure_tracing(TracingSpec(service_name="agg"), env, set_global=False)
    try:
        assert handle.provider is not None
        (exporter,) = handle.exporters
        assert isinstance(exporter, HttpExporter)
        resource = handle.provider.resource.attributes
        assert resource["service.name"] == "agg"
        assert resource["deployment.environment"] == "test"
        assert resource["telemetry.sdk.language"] == "python"
        sampler = handle.provider.sampler
        assert isinstance(sampler, ParentBased)
        assert "TraceIdRatioBased{0.5}" in sampler.get_description()
    finally:
        handle.shutdown()


def test_otlp_grpc_builds_the_grpc_exporter() -> None:
    grpc_exporter = pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}
    handle = configure_tracing(None, env, set_global=False)
    try:
        (exporter,) = handle.exporters
        assert isinstance(exporter, grpc_exporter.OTLPSpanExporter)
    finally:
        handle.shutdown()


def test_console_export_goes_to_stderr_because_stdout_carries_mcp(tmp_path: Path) -> None:
    env = {"OTEL_TRACES_EXPORTER": "console,jaeger_file", FILE_ENV: str(tmp_path / "t.json")}
    handle = configure_tracing(None, env, set_global=False)
    try:
        console, file_exporter = handle.exporters
        assert isinstance(console, ConsoleSpanExporter)
        assert console.out is sys.stderr  # pyright: ignore[reportUnknownMemberType] - the SDK types it IO[Any]
        assert isinstance(file_exporter, JaegerJsonFileExporter)
        assert file_exporter.path == tmp_path / "t.json"
    finally:
        handle.shutdown()


def test_a_ratio_sampler_without_parent_is_built_as_is() -> None:
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}
    handle = configure_tracing(None, env, set_global=False)
    try:
        assert handle.provider is not None
        assert isinstance(handle.provider.sampler, TraceIdRatioBased)
    finally:
        handle.shutdown()


def test_trace_url_points_at_the_jaeger_trace_page() -> None:
    handle = configure_tracing(
        None, {"OTEL_TRACES_EXPORTER": "console", "JAEGER_UI_URL": "http://j:16686/"}, set_global=False
    )
    try:
        assert handle.trace_url("ab" * 16) == f"http://j:16686/trace/{'ab' * 16}"
    finally:
        handle.shutdown()


def test_shutdown_is_safe_to_call_twice() -> None:
    handle = configure_tracing(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, set_global=False)
    handle.shutdown()
    handle.shutdown()
    assert handle.force_flush()


# -------------------------------------------------------- child environment


def test_children_get_every_otel_variable_the_resolved_export_and_their_own_service_name() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme",
        "OTEL_SERVICE_NAME": "aggregator",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
        "DOCS_TOKEN": "must-not-leak",
        "HOME": "/root",
    }
    handle = configure_tracing(None, env, set_global=False)
    try:
        assert handle.child_environment("analytics") == {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
            "OTEL_SERVICE_NAME": "analytics",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces",
        }
    finally:
        handle.shutdown()


def test_a_config_file_only_setup_reaches_children_as_variables() -> None:
    spec = TracingSpec(exporter="otlp_grpc", endpoint="http://jaeger:4317")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
    handle = configure_tracing(spec, {}, set_global=False)
    try:
        child = handle.child_environment("db")
        assert child["OTEL_TRACES_EXPORTER"] == "otlp"
        assert child["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] == "grpc"
        assert child["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == "http://jaeger:4317"
    finally:
        handle.shutdown()


def test_children_of_the_file_exporter_each_get_their_own_file_next_to_ours(tmp_path: Path) -> None:
    handle = configure_tracing(TracingSpec(exporter="file", file=tmp_path / "traces.json"), {}, set_global=False)
    try:
        child = handle.child_environment("tracker")
        assert child["OTEL_TRACES_EXPORTER"] == "jaeger_file"
        assert child[FILE_ENV] == str(tmp_path / "traces.tracker.json")
        assert "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" not in child
    finally:
        handle.shutdown()
