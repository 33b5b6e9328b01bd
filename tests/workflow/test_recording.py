"""Recording a run's downstream calls and answering calls from the recording."""

from __future__ import annotations

import contextlib
from typing import Any

import mcp_types as types
import pytest

from orchestrator.errors import DownstreamTimeout, DownstreamToolError, DownstreamUnavailable, RecordingError
from orchestrator.workflow import (
    IDEMPOTENCY_KEY_META,
    RecordingHeader,
    RecordingInvoker,
    ReplayInvoker,
    dump_recording,
    execute,
    parse_recording,
)
from tests.workflow.helpers import Call, FunctionInvoker, plan_of

pytestmark = pytest.mark.anyio


class Counter:
    """A downstream that answers ``n`` with ``n + calls so far``, and fails on ``fail``."""

    def __init__(self) -> None:
        self.calls = 0

    async def call_tool(
        self, server: str, tool: str, arguments: dict[str, Any], *, timeout: float | None, meta: dict[str, Any] | None
    ) -> types.CallToolResult:
        self.calls += 1
        if arguments.get("fail"):
            raise DownstreamToolError(server, "no such row", -32602)
        value = arguments["n"] + self.calls
        return types.CallToolResult(content=[types.TextContent(text=str(value))], structured_content={"v": value})


async def _call(invoker: Any, arguments: dict[str, Any], step: str = "s", index: int = 0) -> Any:
    meta = {IDEMPOTENCY_KEY_META: f"abc:{step}:{index}"}
    result = await invoker.call_tool("srv", "count", arguments, timeout=5.0, meta=meta)
    return result.structured_content["v"]


async def _recorded(*calls: dict[str, Any]) -> ReplayInvoker:
    """Record ``calls`` against a ``Counter``, write and read the file, and replay from it."""
    recorder = RecordingInvoker(Counter())
    for arguments in calls:
        with contextlib.suppress(DownstreamToolError):
            await _call(recorder, arguments)
    text = dump_recording(RecordingHeader("w", {}, "2026-01-01T00:00:00Z"), recorder.calls, {"out": 1})
    recording, output = parse_recording(text, "rec.jsonl")
    assert output == {"out": 1}
    return ReplayInvoker(recording.calls)


async def test_a_recorder_keeps_each_call_its_answer_step_and_index() -> None:
    recorder = RecordingInvoker(Counter())
    assert await _call(recorder, {"n": 10}, step="fan", index=3) == 11
    with pytest.raises(DownstreamToolError):
        await _call(recorder, {"fail": True})
    ok, failed = recorder.calls
    assert (ok.server, ok.tool, ok.arguments, ok.step, ok.index) == ("srv", "count", {"n": 10}, "fan", 3)
    assert ok.result is not None
    assert ok.result["structuredContent"] == {"v": 11}
    assert ok.error is None
    assert failed.result is None
    assert failed.error == {"type": "DownstreamToolError", "message": "no such row", "code": -32602}


async def test_replay_answers_by_arguments_not_order_and_repeats_in_turn() -> None:
    replay = await _recorded({"n": 10}, {"n": 20}, {"n": 10})  # answers 11, 22, 13
    # Key order of the arguments does not matter; the calls come in another order.
    assert await _call(replay, {"n": 20}) == 22
    assert await _call(replay, {"n": 10}) == 11
    assert await _call(replay, {"n": 10}) == 13
    assert replay.unused == []


async def test_a_recorded_error_is_replayed_as_the_same_error() -> None:
    replay = await _recorded({"fail": True, "n": 1})
    with pytest.raises(DownstreamToolError) as caught:
        await _call(replay, {"n": 1, "fail": True})
    assert caught.value.code == -32602
    assert caught.value.server == "srv"
    assert caught.value.detail == "no such row"


async def test_a_call_with_no_answer_names_the_call_and_the_differing_keys() -> None:
    replay = await _recorded({"n": 10, "mode": "a"})
    with pytest.raises(RecordingError) as caught:
        await _call(replay, {"n": 11, "mode": "a", "extra": 1}, step="sum")
    message = str(caught.value)
    assert "no recorded answer for srv.count (step 'sum')" in message
    assert '"n": 11' in message
    assert message.endswith("differs in: extra, n")


async def test_a_call_answered_fewer_times_than_asked_says_all_answers_are_used() -> None:
    replay = await _recorded({"n": 1})
    assert await _call(replay, {"n": 1}) == 2
    with pytest.raises(RecordingError, match=r"answers this call 1 time\(s\), all used"):
        await _call(replay, {"n": 1})


async def test_a_call_of_an_unrecorded_tool_says_so() -> None:
    replay = await _recorded({"n": 1})
    with pytest.raises(RecordingError, match=r"srv\.other .*no call of srv\.other"):
        await replay.call_tool("srv", "other", {}, timeout=None, meta=None)


async def test_a_cancelled_call_is_replayed_as_a_timeout() -> None:
    header = RecordingHeader("w", {}, "t")
    line = (
        '{"kind": "call", "server": "srv", "tool": "count", "arguments": {"n": 1},'
        ' "error": {"type": "cancelled", "message": "cancelled before it answered", "timeout": 2.0}}\n'
    )
    recording, _ = parse_recording(dump_recording(header, []) + line, "rec.jsonl")
    with pytest.raises(DownstreamTimeout):
        await _call(ReplayInvoker(recording.calls), {"n": 1})


def test_a_file_that_is_not_a_recording_is_refused_with_its_line() -> None:
    with pytest.raises(RecordingError, match=r"^rec\.jsonl:1: not a recording"):
        parse_recording('{"format": "other"}\n', "rec.jsonl")
    with pytest.raises(RecordingError, match=r"^rec\.jsonl:2: not JSON"):
        parse_recording(dump_recording(RecordingHeader("w", {}, "t"), []).splitlines()[0] + "\n{oops\n", "rec.jsonl")


async def test_a_run_replayed_from_its_recording_retries_and_fans_out_as_recorded() -> None:
    plan = plan_of(
        {
            "fetch": {
                "tool": "s.fetch",
                "retry": {"max_attempts": 3, "initial_interval": "1ms", "retry_on": ["transport_error"]},
            },
            "double": {
                "needs": ["fetch"],
                "for_each": "${{ steps.fetch.result.items }}",
                "as": "n",
                "tool": "s.double",
                "with": {"n": "${{ n }}"},
            },
        },
        output={"value": {"doubled": "${{ steps.double.result[*].v }}"}},
    )
    failures = 2
    doubled = 0

    async def handler(call: Call) -> Any:
        nonlocal failures, doubled
        if call.tool == "fetch":
            if failures:
                failures -= 1
                raise DownstreamUnavailable("s", "connection lost")
            return {"items": [1, 2, 2]}
        doubled += 1  # the same call twice gets a different answer each time
        return {"v": call.arguments["n"] * 2 + doubled * 100}

    recorder = RecordingInvoker(FunctionInvoker(handler))
    recorded = await execute(plan, {}, recorder)
    assert recorded.status == "succeeded"
    assert [call.error["type"] if call.error else None for call in recorder.calls[:3]] == [
        "DownstreamUnavailable",
        "DownstreamUnavailable",
        None,
    ]
    recording, _ = parse_recording(dump_recording(RecordingHeader("w", {}, "t"), recorder.calls), "rec.jsonl")

    replayed = await execute(plan, {}, ReplayInvoker(recording.calls))

    assert replayed.status == "succeeded"
    assert sorted(replayed.output["doubled"]) == sorted(recorded.output["doubled"])
    assert replayed.steps["fetch"].attempts == recorded.steps["fetch"].attempts == 3
