"""A proxied plain tool call (not a composite) is one tree across the caller, the aggregator and the server.

Stdio downstreams get the trace context in ``params._meta`` only; HTTP downstreams also as
HTTP headers. Either way the downstream's own SERVER span is the child of the aggregator's
CLIENT span.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from mcp import Client

from orchestrator.tracing import tracer
from tests.e2e.harness import aggregator_params, write_config
from tests.tracing.harness import export_spans_to
from tests.tracing_e2e._support import (
    AGGREGATOR,
    CALLER,
    Trace,
    example_server,
    export_env,
    http_example_server,
    text_of,
    wait_for_trace,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.otlp_receiver import OtlpReceiver

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CALL_TIMEOUT = 30.0
TICKET = {"id": "TCK-116"}


async def _call_traced(config: Path, receiver: OtlpReceiver, tool: str, arguments: dict[str, Any]) -> Trace:
    with export_spans_to(receiver.url):
        params = aggregator_params(config, env=export_env(receiver))
        async with Client(params, read_timeout_seconds=CALL_TIMEOUT) as client:
            with tracer.start_as_current_span(f"caller {tool}"):
                result = await client.call_tool(tool, arguments)
    assert not result.is_error, text_of(result)
    assert "TCK-116" in text_of(result)

    def complete(trace: Trace) -> bool:
        return bool(trace.named("tools/call get_ticket", kind="SERVER"))

    return wait_for_trace(receiver, f"caller {tool}", complete)


def _assert_one_tree(trace: Trace, exposed: str, server_key: str) -> None:
    tree = trace.render()
    caller = trace.one(f"caller {exposed}", service=CALLER)
    assert trace.roots() == [caller], tree
    assert trace.orphans() == [], tree
    downstream = trace.one("tools/call get_ticket", service=server_key, kind="SERVER")
    assert trace.chain(downstream) == [
        (server_key, "SERVER", "tools/call get_ticket"),
        (AGGREGATOR, "CLIENT", "MCP send tools/call get_ticket"),
        (AGGREGATOR, "SERVER", f"tools/call {exposed}"),
        (CALLER, "CLIENT", f"MCP send tools/call {exposed}"),
        (CALLER, "INTERNAL", f"caller {exposed}"),
    ], tree
    # No workflow layers for a plain call.
    assert not trace.named(lambda name: name.startswith(("invoke_workflow", "step "))), tree
    assert downstream.attributes["gen_ai.tool.name"] == "get_ticket"
    upstream = trace.one(f"tools/call {exposed}", service=AGGREGATOR)
    assert upstream.attributes["gen_ai.tool.name"] == exposed


async def test_a_proxied_plain_tool_call_is_one_tree_across_the_caller_the_aggregator_and_a_stdio_server(
    tmp_path: Path, otlp_receiver: OtlpReceiver
) -> None:
    config = write_config(tmp_path, {"tickets": example_server("tracker")})
    trace = await _call_traced(config, otlp_receiver, "tickets__get_ticket", TICKET)

    _assert_one_tree(trace, "tickets__get_ticket", "tickets")
    client_span = trace.one("MCP send tools/call get_ticket", service=AGGREGATOR)
    assert client_span.attributes["network.transport"] == "pipe"
    assert client_span.attributes["mcp_orchestrator.server.key"] == "tickets"


async def test_a_proxied_call_to_an_http_downstream_joins_the_same_tree(
    tmp_path: Path, otlp_receiver: OtlpReceiver
) -> None:
    server_env = export_env(otlp_receiver, OTEL_SERVICE_NAME="web")
    async with http_example_server("tracker", server_env) as url:
        config = write_config(tmp_path, {"web": {"url": url}})
        trace = await _call_traced(config, otlp_receiver, "web__get_ticket", TICKET)

    _assert_one_tree(trace, "web__get_ticket", "web")
    client_span = trace.one("MCP send tools/call get_ticket", service=AGGREGATOR)
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    assert {
        key: client_span.attributes.get(key)
        for key in ("network.transport", "server.address", "server.port", "mcp_orchestrator.server.key")
    } == {
        "network.transport": "tcp",
        "server.address": "127.0.0.1",
        "server.port": port,
        "mcp_orchestrator.server.key": "web",
    }
