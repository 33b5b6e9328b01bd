"""A run says which catalogue it ran against: on its ``invoke_workflow`` span and in its result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from orchestrator.tracing import ATTR_CATALOGUE_VERSION
from orchestrator.workflow import execute
from tests.workflow.helpers import Call, FunctionInvoker, plan_of

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

pytestmark = pytest.mark.anyio


def _run_span(spans: InMemorySpanExporter) -> ReadableSpan:
    return next(span for span in spans.get_finished_spans() if span.name.startswith("invoke_workflow"))


async def _echo(call: Call) -> Any:
    return dict(call.arguments)


async def test_the_version_given_to_a_run_is_on_its_span_and_in_its_result(spans: InMemorySpanExporter) -> None:
    plan = plan_of({"one": {"tool": "s.t", "with": {"x": 1}}})

    result = await execute(plan, {}, FunctionInvoker(_echo), catalogue_version="0123456789abcdef")

    assert result.status == "succeeded", result.error
    assert result.catalogue_version == "0123456789abcdef"
    run_span = _run_span(spans)
    assert run_span.attributes is not None
    assert run_span.attributes[ATTR_CATALOGUE_VERSION] == "0123456789abcdef"


async def test_a_run_given_no_version_records_none(spans: InMemorySpanExporter) -> None:
    result = await execute(plan_of({"one": {"tool": "s.t"}}), {}, FunctionInvoker(_echo))

    assert result.catalogue_version is None
    run_span = _run_span(spans)
    assert run_span.attributes is not None
    assert ATTR_CATALOGUE_VERSION not in run_span.attributes
