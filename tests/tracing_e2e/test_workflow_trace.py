"""A composite tool run through a subprocess aggregator is one trace across every process.

The test process is the caller (its own span, exported by ``tests.tracing.harness``); the
aggregator is ``orchestrator serve`` over stdio; the downstream servers are the bundled
example servers as stdio children of the aggregator. All of them export over OTLP/HTTP to
the test's receiver, and the trace is read back from what the receiver decoded.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest
from mcp import Client

from orchestrator.tracing import tracer
from tests.e2e.harness import aggregator_params, write_config
from tests.tracing.harness import export_spans_to
from tests.tracing_e2e._support import (
    AGGREGATOR,
    CALLER,
    RUN_META_KEY,
    Trace,
    example_server,
    export_env,
    text_of,
    wait_for_trace,
    write_brief,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Mapping
    from pathlib import Path

    from tests.otlp_receiver import OtlpReceiver

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CALL_TIMEOUT = 30.0
INPUT = {"service": "checkout"}


def _config(directory: Path, *, flaky: int, max_attempts: int = 3) -> Path:
    workflows = write_brief(directory, max_attempts=max_attempts)
    servers = {
        "metrics": example_server("analytics", {"ANALYTICS_FLAKY": str(flaky)}),
        "tickets": example_server("tracker"),
    }
    return write_config(directory, servers, workflows=[str(workflows)])


@asynccontextmanager
async def _aggregator(config: Path, receiver: OtlpReceiver) -> AsyncGenerator[Client]:
    """A traced subprocess aggregator, with this process's spans exported to ``receiver`` too."""
    with export_spans_to(receiver.url):
        async with Client(aggregator_params(config, env=export_env(receiver)), read_timeout_seconds=CALL_TIMEOUT) as c:
            yield c


def _counts(**expected: int) -> Callable[[Trace], bool]:
    """A ``wait_for_trace`` predicate: at least ``n`` downstream ``tools/call <tool>`` SERVER spans per tool."""

    def complete(trace: Trace) -> bool:
        return all(len(trace.named(f"tools/call {tool}", kind="SERVER")) >= n for tool, n in expected.items()) and bool(
            trace.named("invoke_workflow brief")
        )

    return complete


def _attributes(span_attributes: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {key: span_attributes.get(key) for key in keys}


async def test_a_composite_call_is_one_trace_from_the_caller_through_each_step_into_the_downstream_servers(
    tmp_path: Path, otlp_receiver: OtlpReceiver
) -> None:
    config = _config(tmp_path, flaky=0)
    async with _aggregator(config, otlp_receiver) as client:
        with tracer.start_as_current_span("caller brief"):
            result = await client.call_tool("brief", INPUT)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    tickets = result.structured_content["tickets"]
    assert len(tickets) >= 2

    trace = wait_for_trace(
        otlp_receiver, "caller brief", _counts(query_metrics=1, search_tickets=1, get_ticket=len(tickets))
    )
    tree = trace.render()
    caller = trace.one("caller brief", service=CALLER)

    # Exactly one trace: the caller is its only root, no span points at a parent outside it,
    # and no span this call caused anywhere (any process) landed in another trace.
    assert trace.roots() == [caller], tree
    assert trace.orphans() == [], tree
    caused = {"invoke_workflow brief", "tools/call brief", "tools/call query_metrics", "tools/call search_tickets"}
    strays = [
        s
        for s in otlp_receiver.spans
        if (s.name in caused or s.name.startswith("step ") or s.name == "tools/call get_ticket")
        and s.trace_id != trace.trace_id
    ]
    assert strays == [], f"spans of the call outside its trace: {[(s.service_name, s.name) for s in strays]}"
    assert result.meta is not None
    assert result.meta[RUN_META_KEY]["trace_id"] == trace.trace_id

    # caller → tools/call brief (aggregator SERVER) → invoke_workflow → step → MCP send (CLIENT) → downstream SERVER
    (metrics_call,) = trace.named("tools/call query_metrics", kind="SERVER")
    assert trace.chain(metrics_call) == [
        ("metrics", "SERVER", "tools/call query_metrics"),
        (AGGREGATOR, "CLIENT", "MCP send tools/call query_metrics"),
        (AGGREGATOR, "INTERNAL", "step latency"),
        (AGGREGATOR, "INTERNAL", "invoke_workflow brief"),
        (AGGREGATOR, "SERVER", "tools/call brief"),
        (CALLER, "CLIENT", "MCP send tools/call brief"),
        (CALLER, "INTERNAL", "caller brief"),
    ], tree
    (search_call,) = trace.named("tools/call search_tickets", kind="SERVER")
    assert trace.chain(search_call)[:3] == [
        ("tickets", "SERVER", "tools/call search_tickets"),
        (AGGREGATOR, "CLIENT", "MCP send tools/call search_tickets"),
        (AGGREGATOR, "INTERNAL", "step tickets"),
    ], tree
    item_calls = trace.named("tools/call get_ticket", kind="SERVER")
    assert len(item_calls) == len(tickets), tree
    item_steps: set[str] = set()
    for item_call in item_calls:
        chain = trace.chain(item_call)
        item_steps.add(chain[2][2])
        assert chain[:2] == [
            ("tickets", "SERVER", "tools/call get_ticket"),
            (AGGREGATOR, "CLIENT", "MCP send tools/call get_ticket"),
        ], tree
        assert chain[3:] == [
            (AGGREGATOR, "INTERNAL", "step details"),
            (AGGREGATOR, "INTERNAL", "invoke_workflow brief"),
            (AGGREGATOR, "SERVER", "tools/call brief"),
            (CALLER, "CLIENT", "MCP send tools/call brief"),
            (CALLER, "INTERNAL", "caller brief"),
        ], tree
    assert item_steps == {f"step details[{i}]" for i in range(len(tickets))}, tree

    # What each layer says about itself.
    run = trace.one("invoke_workflow brief")
    assert _attributes(
        run.attributes,
        "gen_ai.operation.name",
        "gen_ai.workflow.name",
        "mcp_orchestrator.run.id",
        "mcp_orchestrator.run.status",
    ) == {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": "brief",
        "mcp_orchestrator.run.id": result.meta[RUN_META_KEY]["run_id"],
        "mcp_orchestrator.run.status": "succeeded",
    }
    latency = trace.one("step latency")
    assert _attributes(
        latency.attributes,
        "mcp_orchestrator.step.tool",
        "mcp_orchestrator.step.status",
        "mcp_orchestrator.step.attempts",
    ) == {
        "mcp_orchestrator.step.tool": "metrics.query_metrics",
        "mcp_orchestrator.step.status": "succeeded",
        "mcp_orchestrator.step.attempts": 1,
    }
    assert latency.events == ()
    assert trace.one("step details").attributes["mcp_orchestrator.step.for_each.count"] == len(tickets)
    client_span = trace.one("MCP send tools/call query_metrics", service=AGGREGATOR)
    assert _attributes(
        client_span.attributes, "gen_ai.tool.name", "network.transport", "mcp_orchestrator.server.key"
    ) == {
        "gen_ai.tool.name": "query_metrics",
        "network.transport": "pipe",
        "mcp_orchestrator.server.key": "metrics",
    }
    assert metrics_call.attributes["gen_ai.tool.name"] == "query_metrics"
    assert {s.service_name for s in trace.spans} == {CALLER, AGGREGATOR, "metrics", "tickets"}
    assert all(s.status_code == "UNSET" for s in trace.spans), tree


async def test_each_retry_of_a_step_is_a_retry_event_on_its_span_with_one_client_span_per_attempt(
    tmp_path: Path, otlp_receiver: OtlpReceiver
) -> None:
    config = _config(tmp_path, flaky=2, max_attempts=3)  # the first two query_metrics calls fail
    async with _aggregator(config, otlp_receiver) as client:
        with tracer.start_as_current_span("caller flaky brief"):
            result = await client.call_tool("brief", INPUT)
    assert not result.is_error, text_of(result)

    trace = wait_for_trace(otlp_receiver, "caller flaky brief", _counts(query_metrics=3))
    tree = trace.render()
    step = trace.one("step latency")
    assert step.status_code == "UNSET", tree
    assert step.attributes["mcp_orchestrator.step.attempts"] == 3
    assert step.attributes["mcp_orchestrator.step.status"] == "succeeded"
    retries = [event for event in step.events if event.name == "retry"]
    assert [event.attributes["mcp_orchestrator.retry.attempt"] for event in retries] == [1, 2]
    assert {event.attributes["error.type"] for event in retries} == {"tool_error"}
    assert all(event.attributes["mcp_orchestrator.retry.delay_s"] > 0 for event in retries)
    assert [event.name for event in step.events] == ["retry", "retry"]

    # One CLIENT span per attempt under the step, each with the downstream's SERVER span under it.
    attempts = trace.children(step)
    assert [(s.kind, s.name) for s in attempts] == [("CLIENT", "MCP send tools/call query_metrics")] * 3, tree
    outcomes: list[tuple[str, str | None]] = []
    for attempt in attempts:
        (server_span,) = trace.children(attempt)
        assert (server_span.service_name, server_span.name) == ("metrics", "tools/call query_metrics")
        outcomes.append((server_span.status_code, server_span.attributes.get("error.type")))
    assert outcomes == [("ERROR", "tool_error"), ("ERROR", "tool_error"), ("UNSET", None)], tree
    # Each retry event sits between the attempt that failed and the next one.
    for event, before, after in zip(retries, attempts[:-1], attempts[1:], strict=True):
        assert before.end_ns <= event.time_ns <= after.start_ns
    assert trace.one("invoke_workflow brief").status_code == "UNSET"


async def test_a_failing_step_marks_its_span_and_the_run_span_as_errors(
    tmp_path: Path, otlp_receiver: OtlpReceiver
) -> None:
    config = _config(tmp_path, flaky=9, max_attempts=2)  # every attempt fails
    async with _aggregator(config, otlp_receiver) as client:
        with tracer.start_as_current_span("caller failing brief"):
            result = await client.call_tool("brief", INPUT)
    assert result.is_error
    assert result.meta is not None
    assert result.meta[RUN_META_KEY]["failed_step"] == "latency"

    trace = wait_for_trace(otlp_receiver, "caller failing brief", _counts(query_metrics=2))
    tree = trace.render()
    assert result.meta[RUN_META_KEY]["trace_id"] == trace.trace_id

    step = trace.one("step latency")
    assert step.status_code == "ERROR", tree
    assert step.attributes["error.type"] == "tool_error"
    assert step.attributes["mcp_orchestrator.step.status"] == "failed"
    assert step.attributes["mcp_orchestrator.step.attempts"] == 2
    assert "transient upstream error" in step.status_message
    assert [event.name for event in step.events] == ["retry"]

    run = trace.one("invoke_workflow brief")
    assert run.status_code == "ERROR", tree
    assert run.attributes["error.type"] == "tool_error"
    assert run.attributes["mcp_orchestrator.run.status"] == "failed"
    assert run.attributes["mcp_orchestrator.run.failed_step"] == "latency"
    assert run.status_message

    # The composite's own SERVER span reports the isError result; the downstream's spans their failures.
    upstream = trace.one("tools/call brief", service=AGGREGATOR, kind="SERVER")
    assert (upstream.status_code, upstream.attributes.get("error.type")) == ("ERROR", "tool_error"), tree
    downstream = trace.named("tools/call query_metrics", service="metrics", kind="SERVER")
    assert [(s.status_code, s.attributes.get("error.type")) for s in downstream] == [("ERROR", "tool_error")] * 2
    # Steps that did not fail are not marked.
    assert trace.one("step tickets").status_code != "ERROR"
