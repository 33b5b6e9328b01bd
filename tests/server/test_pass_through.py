"""Which calls take the pass-through path, and that its answers are the typed path's.

A call of a plain downstream tool is forwarded with its result left as the server sent it
(its ``tools/call`` server span says ``mcp_orchestrator.call.pass_through``); every call that
needs more (progress, input rounds, a composite, an unknown name) takes the typed path. On both
paths a caller gets the same answers: results, tool errors, output-schema checks, envelopes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
import pytest
from mcp import MCPError

from orchestrator.server import TRACE_META_KEY
from orchestrator.tracing import ATTR_PASS_THROUGH
from tests.fakes.inprocess import ToolServer
from tests.server.helpers import ProgressSeen, connect, serving, text_of
from tests.tracing.harness import capture_spans

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

pytestmark = pytest.mark.anyio

LIMIT = 5.0
"""Bound of every test; each takes a few tens of milliseconds."""


@pytest.fixture(params=["auto", "legacy"], ids=["2026-07-28", "handshake"])
def mode(request: pytest.FixtureRequest) -> str:
    """How the caller connects: the current stateless era, or the initialize handshake."""
    return request.param


def _passed_through(spans: InMemorySpanExporter, tool: str) -> list[bool]:
    """For each ``tools/call`` of ``tool`` the orchestrator served, whether it took the pass-through path."""
    return [
        bool((span.attributes or {}).get(ATTR_PASS_THROUGH))
        for span in spans.get_finished_spans()
        if span.name == f"tools/call {tool}"
    ]


async def test_a_plain_call_is_passed_through_with_our_envelope(mode: str) -> None:
    with capture_spans() as spans, anyio.fail_after(LIMIT):
        async with serving({"a": ToolServer()}) as server, connect(server, mode=mode) as client:
            result = await client.call_tool("a__add", {"a": 2, "b": 40})
            echoed = await client.call_tool("a__echo", {"text": "hello"})
    assert not result.is_error
    assert result.structured_content == {"result": 42}
    assert text_of(echoed) == "hello"
    assert _passed_through(spans, "a__add") == [True]
    meta = result.meta or {}
    assert TRACE_META_KEY in meta  # the call's trace id, as on the typed path
    if mode == "auto":  # a 2026-era result names the server that answered it: us, not the downstream
        assert meta[types.SERVER_INFO_META_KEY]["name"] == "mcp-orchestrator"
    else:
        assert types.SERVER_INFO_META_KEY not in meta


async def test_calls_that_need_more_than_forwarding_take_the_typed_path(mode: str) -> None:
    servers = {"a": ToolServer()}
    progress = ProgressSeen()
    with capture_spans() as spans, anyio.fail_after(LIMIT):
        async with serving(servers) as server, connect(server, mode=mode) as client:
            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    result = await client.call_tool("a__progress", {"steps": 2}, progress_callback=progress)
                    assert text_of(result) == "done"

                tg.start_soon(call)
                await progress.reach(2)
                servers["a"].proceed.set()
            with pytest.raises(MCPError, match="a__nope"):
                await client.call_tool("a__nope", {})
    assert _passed_through(spans, "a__progress") == [False]  # progress is relayed on the typed path
    assert _passed_through(spans, "a__nope") == [False]


async def test_a_client_that_can_answer_input_rounds_takes_the_typed_path() -> None:
    async def sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        raise AssertionError("not asked")

    with capture_spans() as spans, anyio.fail_after(LIMIT):
        async with serving({"a": ToolServer()}) as server, connect(server, sampling_callback=sampling) as client:
            result = await client.call_tool("a__echo", {"text": "hi"})
    assert text_of(result) == "hi"
    assert _passed_through(spans, "a__echo") == [False]


async def test_errors_on_the_pass_through_path_are_the_typed_paths(mode: str) -> None:
    with capture_spans() as spans, anyio.fail_after(LIMIT):
        async with serving({"a": ToolServer()}) as server, connect(server, mode=mode) as client:
            invalid = await client.call_tool("a__add", {"a": "two", "b": 40})
            failed = await client.call_tool("a__fail", {"message": "it broke"})
            refused = await client.call_tool("a__refuse", {"message": "not now"})
    assert _passed_through(spans, "a__add") == [True]
    assert _passed_through(spans, "a__fail") == [True]
    assert invalid.is_error
    assert (invalid.meta or {})["io.github.mcp-orchestrator/error"]["type"] == "InvalidArgumentsError"
    assert "a__add" in text_of(invalid)
    assert failed.is_error
    assert text_of(failed).endswith("it broke")
    assert (failed.meta or {})["io.github.mcp-orchestrator/error"] == {"type": "DownstreamToolError", "server": "a"}
    assert refused.is_error
    assert "not now" in text_of(refused)
    assert (refused.meta or {})["io.github.mcp-orchestrator/error"]["type"] == "DownstreamToolError"
