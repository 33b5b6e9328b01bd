"""Input-required rounds: a 2026-07-28 caller answers downstream sampling and elicitation.

A 2026-07-28 client gets no server-to-client requests: when a downstream asks for input in
the middle of a call, the aggregator returns ``InputRequiredResult`` and the client's retry
carries the answer (``orchestrator.server._rounds``). These tests run the real aggregator,
over stdio and streamable HTTP, in front of one downstream of each era: ``new`` (2026-07-28,
answers with its own input rounds) and ``old`` (``--legacy-only``: 2025-11-25, asks with
server-to-client requests).
"""

from __future__ import annotations

import secrets
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
import pytest
from mcp import Client

from tests.e2e.harness import aggregator_params, events_seen, fault_entry, http_aggregator, write_config
from tests.fakes import EVENTS_FILE_ENV

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Coroutine
    from pathlib import Path

    from mcp.client.session import ClientRequestContext

pytestmark = pytest.mark.anyio

UPSTREAMS = ["stdio", "http"]
DOWNSTREAMS = {"new": (), "old": ("--legacy-only",)}
"""Downstream server key -> fault server options; `old` speaks 2025-11-25 to the aggregator."""

EXPIRED = "expired or is unknown"


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


def _reply(prompt: str) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=f"sampled: {prompt}"), model="test-model"
    )


async def _sample(context: ClientRequestContext, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    first = params.messages[0].content
    return _reply(first.text if isinstance(first, types.TextContent) else "?")


async def _elicit(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    assert isinstance(params, types.ElicitRequestFormParams)
    return types.ElicitResult(action="accept", content={"answer": f"re: {params.message}"})


def _config(tmp_path: Path, **server_options: Any) -> Path:
    """Both downstreams, each with its own events file (``<key>.events``)."""
    servers = {
        key: fault_entry(*options, env={EVENTS_FILE_ENV: str(tmp_path / f"{key}.events")}, **server_options)
        for key, options in DOWNSTREAMS.items()
    }
    return write_config(tmp_path, servers)


@asynccontextmanager
async def _caller(upstream: str, config: Path, **client_options: Any) -> AsyncGenerator[Client, None]:
    """An SDK client in its default (auto) mode, declaring sampling and elicitation."""
    options: dict[str, Any] = {"sampling_callback": _sample, "elicitation_callback": _elicit, **client_options}
    if upstream == "stdio":
        async with Client(aggregator_params(config), **options) as client:
            yield client
        return
    async with http_aggregator(config) as url, Client(url, **options) as client:
        yield client


async def _wait_for_event(path: Path, prefix: str, count: int = 1) -> str:
    """The ``count``-th line of the events file that starts with ``prefix``, waiting (bounded) for it."""
    return (await events_seen(path, prefix, count))[count - 1]


async def _first_round(client: Client, tool: str, arguments: dict[str, Any]) -> types.InputRequiredResult:
    """Call ``tool`` and hand back the input round it returns (answering none of it)."""
    first = await client.session.call_tool(tool, arguments, allow_input_required=True)
    assert isinstance(first, types.InputRequiredResult), first
    assert first.request_state
    return first


def _sampling_answer(round_: types.InputRequiredResult, prompt: str) -> types.InputResponses:
    [(key, request)] = (round_.input_requests or {}).items()
    assert isinstance(request, types.CreateMessageRequest)
    return {key: _reply(prompt)}


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_a_2026_caller_answers_sampling_and_elicitation_of_downstreams_of_both_eras(
    tmp_path: Path, upstream: str
) -> None:
    async with _caller(upstream, _config(tmp_path)) as client:
        assert client.protocol_version == "2026-07-28"
        for server in DOWNSTREAMS:
            with anyio.fail_after(20):
                await _answer_both_ways(client, server)


async def _answer_both_ways(client: Client, server: str) -> None:
    """Elicitation answered by hand, then sampling and elicitation through the client's callbacks."""
    # By hand: the call comes back as a round carrying the downstream's own request.
    round_ = await _first_round(client, f"{server}__elicit", {"question": "colour?"})
    [(key, request)] = (round_.input_requests or {}).items()
    assert isinstance(request, types.ElicitRequest)
    assert isinstance(request.params, types.ElicitRequestFormParams)
    assert request.params.message == "colour?"
    answer = types.ElicitResult(action="accept", content={"answer": "blue"})
    done = await client.session.call_tool(
        f"{server}__elicit",
        {"question": "colour?"},
        input_responses={key: answer},
        request_state=round_.request_state,
    )
    assert isinstance(done, types.CallToolResult)
    assert done.structured_content == {"action": "accept", "content": {"answer": "blue"}}, server

    # Through the SDK's own round driver and the client's callbacks.
    sampled = await client.call_tool(f"{server}__sample", {"prompt": "hello"})
    assert not sampled.is_error, _text(sampled)
    assert _text(sampled) == "sampled: hello", server
    elicited = await client.call_tool(f"{server}__elicit", {"question": "ok?"})
    assert elicited.structured_content == {"action": "accept", "content": {"answer": "re: ok?"}}, server


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_a_used_or_unknown_request_state_gets_a_clear_expired_error(tmp_path: Path, upstream: str) -> None:
    async with _caller(upstream, _config(tmp_path)) as client:
        unknown = await client.session.call_tool(
            "new__sample",
            {"prompt": "p"},
            input_responses={"sampling/createMessage-1": _reply("p")},
            request_state=secrets.token_urlsafe(24),
        )
        assert unknown.is_error
        assert EXPIRED in _text(unknown)

        for server in DOWNSTREAMS:
            round_ = await _first_round(client, f"{server}__sample", {"prompt": "once"})
            answer = _sampling_answer(round_, "once")
            done = await client.session.call_tool(
                f"{server}__sample", {"prompt": "once"}, input_responses=answer, request_state=round_.request_state
            )
            assert _text(done) == "sampled: once"
            # The round is over: the same state again is stale.
            with anyio.fail_after(10):
                again = await client.session.call_tool(
                    f"{server}__sample", {"prompt": "once"}, input_responses=answer, request_state=round_.request_state
                )
            assert again.is_error, server
            assert EXPIRED in _text(again), server


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_cancelling_a_2026_callers_call_cancels_the_downstream_call_also_mid_round(
    tmp_path: Path, upstream: str
) -> None:
    async with _caller(upstream, _config(tmp_path)) as client:
        for server in DOWNSTREAMS:
            await _check_cancellation(client, server, tmp_path / f"{server}.events")


async def _cancel_when_hanging(events: Path, call: Callable[[], Coroutine[Any, Any, object]], nth: int) -> str:
    """Run ``call`` until the downstream reports its ``nth`` hang, cancel it; return that `started` line."""
    started = ""
    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        started = await _wait_for_event(events, "started hang", nth)
        tg.cancel_scope.cancel()
    return started


async def _check_cancellation(client: Client, server: str, events: Path) -> None:
    tool = f"{server}__sample"
    arguments: dict[str, Any] = {"prompt": "p", "hang_after": True}

    # A plain call of a capable caller runs detached as well: cancelling it must reach down.
    started = await _cancel_when_hanging(events, partial(client.call_tool, f"{server}__hang", {}), 1)
    assert await _wait_for_event(events, "cancelled hang", 1) == started.replace("started", "cancelled")

    # Mid-round: the retry carrying the answer lets the downstream go on (it then hangs);
    # cancelling that retry cancels the downstream call.
    round_ = await _first_round(client, tool, arguments)
    answer = _sampling_answer(round_, "p")
    retry = partial(
        client.session.call_tool, tool, arguments, input_responses=answer, request_state=round_.request_state
    )
    started = await _cancel_when_hanging(events, retry, 2)
    assert await _wait_for_event(events, "cancelled hang", 2) == started.replace("started", "cancelled")

    # The cancelled call's round is gone too.
    with anyio.fail_after(10):
        stale = await retry()
    assert stale.is_error, server
    assert EXPIRED in _text(stale), server


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_an_abandoned_round_ends_with_the_downstream_call_and_disturbs_no_other_call(
    tmp_path: Path, upstream: str
) -> None:
    # The round's own expiry (300 s) is far off; the servers' `input_timeout` ends the wait first.
    # (The call's own `timeout` does not: its clock stops while the client's person answers.)
    async with _caller(upstream, _config(tmp_path, timeout="1s", input_timeout="2s")) as client:
        abandoned = {
            server: await _first_round(client, f"{server}__sample", {"prompt": "never"}) for server in DOWNSTREAMS
        }

        # Other calls, rounds included, go on while those rounds wait.
        for server in DOWNSTREAMS:
            echoed = await client.call_tool(f"{server}__echo", {"text": "still here"})
            assert echoed.structured_content == {"text": "still here"}
            sampled = await client.call_tool(f"{server}__sample", {"prompt": "meanwhile"})
            if server == "old" and upstream == "http":
                # A 2025-11-25 stdio server's request names no call, and two calls are in flight
                # there; stateless HTTP requests do not show they come from one client, so the
                # request is refused rather than risk asking the wrong one.
                assert "calls from 2 clients were in flight" in _text(sampled), _text(sampled)
            else:
                assert _text(sampled) == "sampled: meanwhile", server

        # The 2025-11-25 downstream was asked by a server-to-client request: after `input_timeout`
        # it is answered with an error, its call ends, and the round with it. (The 2026-07-28
        # downstream holds no request while it waits, so nothing there shows when that happens.)
        await _wait_for_event(tmp_path / "old.events", "finished sample", count=2)  # "meanwhile" and this
        round_ = abandoned["old"]
        with anyio.fail_after(10):
            late = await client.session.call_tool(
                "old__sample",
                {"prompt": "never"},
                input_responses=_sampling_answer(round_, "never"),
                request_state=round_.request_state,
            )
        assert isinstance(late, types.CallToolResult)
        assert late.is_error
        # Either the round is gone, or this retry picked up the call's end as its result.
        assert EXPIRED in _text(late) or "did not answer" in _text(late), _text(late)
