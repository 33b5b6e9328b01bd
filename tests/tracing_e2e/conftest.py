"""Fixtures of the cross-process tracing tests: a real OTLP/HTTP receiver and a clean environment."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from tests.otlp_receiver import OtlpReceiver

if TYPE_CHECKING:
    from collections.abc import Generator


@pytest.fixture
def otlp_receiver() -> Generator[OtlpReceiver]:
    """An OTLP/HTTP receiver on 127.0.0.1, stopped after the test."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(autouse=True)
def no_ambient_tracing_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Subprocesses copy this process's environment: only what a test sets may configure tracing."""
    for name in list(os.environ):
        if name.startswith("OTEL_") or name in ("JAEGER_UI_URL", "ORCHESTRATOR_TRACES_FILE"):
            monkeypatch.delenv(name)
