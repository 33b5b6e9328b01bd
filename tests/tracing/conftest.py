"""Fixtures of the tracing tests: a real OTLP/HTTP receiver and an in-memory span capture."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.otlp_receiver import OtlpReceiver
from tests.tracing.harness import capture_spans

if TYPE_CHECKING:
    from collections.abc import Generator

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@pytest.fixture
def otlp_receiver() -> Generator[OtlpReceiver]:
    """An OTLP/HTTP receiver on 127.0.0.1, stopped after the test."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def spans() -> Generator[InMemorySpanExporter]:
    """The spans this process ends during the test, through the session's global provider."""
    with capture_spans() as exporter:
        yield exporter
