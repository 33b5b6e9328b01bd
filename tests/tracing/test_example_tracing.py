"""The example servers' tracing wrapper: on only when the variables ask, flushed on exit, bad values refused.

Every call passes ``set_global=False``: the session's global provider belongs to ``harness``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from examples.servers._tracing import traced
from orchestrator.telemetry import FILE_ENV

if TYPE_CHECKING:
    from pathlib import Path


def test_without_variables_the_example_servers_install_nothing() -> None:
    with traced("analytics", {}, set_global=False) as handle:
        assert not handle.enabled


def test_the_service_name_defaults_to_the_server_name_and_spans_are_flushed_on_exit(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    env = {"OTEL_TRACES_EXPORTER": "jaeger_file", FILE_ENV: str(path)}
    with traced("analytics", env, set_global=False) as handle:
        assert handle.provider is not None
        assert handle.settings.service_name == "analytics"
        with handle.provider.get_tracer("test").start_as_current_span("work"):
            pass
    (trace,) = json.loads(path.read_text(encoding="utf-8"))["data"]
    assert [process["serviceName"] for process in trace["processes"].values()] == ["analytics"]


def test_otel_service_name_overrides_the_server_name() -> None:
    with traced(
        "analytics", {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "metrics"}, set_global=False
    ) as handle:
        assert handle.settings.service_name == "metrics"


def test_an_invalid_variable_stops_the_server_with_a_message_naming_it() -> None:
    with (
        pytest.raises(SystemExit, match="OTEL_TRACES_EXPORTER"),
        traced("analytics", {"OTEL_TRACES_EXPORTER": "x"}, set_global=False),
    ):
        pass
