"""A downstream's requests for input reach the client whose call caused them, and no other.

Two clients share one aggregator (served over streamable HTTP). Client A's call makes the
downstream ask for sampling while client B has a call in flight on the same downstream.
Where the transport links the request to its call (a 2026-07-28 downstream, or any
downstream over streamable HTTP), A is asked and B never is. A 2025-11-25 downstream over
stdio sends requests with no link to their call: with calls of two clients in flight the
request is refused, and still B never sees A's prompt.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import anyio
import mcp_types as types
import pytest
from mcp import Client

from tests.e2e.harness import events_seen, fault_entry, http_aggregator, http_fault_server, write_config
from tests.fakes import EVENTS_FILE_ENV

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

    from mcp.client.session import ClientRequestContext

pytestmark = pytest.mark.anyio

SECRET = "the private prompt of client A"


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


class _Asked:
    """A client's sampling callback that records every prompt it is shown."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.prompts: list[str] = []

    async def __call__(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        first = params.messages[0].content
        prompt = first.text if isinstance(first, types.TextContent) else "?"
        self.prompts.append(prompt)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=f"{self.who} says: {prompt}"), model="m"
        )


@asynccontextmanager
async def _downstream(kind: str, tmp_path: Path, events: Path) -> AsyncGenerator[dict[str, Any], None]:
    """The config entry of a downstream of ``kind``."""
    env = {EVENTS_FILE_ENV: str(events)}
    if kind == "stdio-2026":
        yield fault_entry(env=env)
    elif kind == "stdio-2025":
        yield fault_entry("--legacy-only", env=env)
    else:
        async with http_fault_server("--legacy-only", env=env) as (url, _process):
            yield {"url": url}


@pytest.mark.parametrize("upstream_mode", ["legacy", "auto"])
@pytest.mark.parametrize("downstream", ["stdio-2026", "http-2025", "stdio-2025"])
async def test_a_request_for_sampling_reaches_only_the_client_whose_call_made_it(
    tmp_path: Path, downstream: str, upstream_mode: Literal["auto", "legacy"]
) -> None:
    events, gate = tmp_path / "events.log", tmp_path / "gate"
    asked_a, asked_b = _Asked("A"), _Asked("B")
    results: dict[str, types.CallToolResult] = {}
    answered = anyio.Event()
    async with _downstream(downstream, tmp_path, events) as entry:
        config = write_config(tmp_path, {"f": entry})
        async with (
            http_aggregator(config) as url,
            Client(url, mode=upstream_mode, sampling_callback=asked_a) as client_a,
            Client(url, mode=upstream_mode, sampling_callback=asked_b) as client_b,
        ):

            async def call_a() -> None:
                arguments = {"prompt": SECRET, "gate": str(gate)}
                results["a"] = await client_a.call_tool("f__sample", arguments)
                answered.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(call_a)
                await events_seen(events, "gated sample")  # A's call is at the downstream
                tg.start_soon(partial(client_b.call_tool, "f__hang", {}))
                await events_seen(events, "started hang")  # and so is B's
                gate.touch()  # now the downstream asks for sampling, for A's call
                with anyio.fail_after(20):
                    await answered.wait()
                tg.cancel_scope.cancel()  # B's hang

    assert SECRET not in asked_b.prompts, "client B was shown client A's prompt"
    assert asked_b.prompts == []
    result = results["a"]
    if downstream == "stdio-2025":
        assert result.is_error, _text(result)
        assert "calls from 2 clients were in flight" in _text(result)
        assert asked_a.prompts == []
    else:
        assert not result.is_error, _text(result)
        assert _text(result) == f"A says: {SECRET}"
        assert asked_a.prompts == [SECRET]


async def test_calls_of_one_client_on_a_2025_stdio_server_still_get_their_requests_answered(
    tmp_path: Path,
) -> None:
    events, gate = tmp_path / "events.log", tmp_path / "gate"
    asked = _Asked("A")
    config = write_config(tmp_path, {"f": fault_entry("--legacy-only", env={EVENTS_FILE_ENV: str(events)})})
    results: list[types.CallToolResult] = []
    answered = anyio.Event()
    async with http_aggregator(config) as url, Client(url, mode="legacy", sampling_callback=asked) as client:

        async def sample() -> None:
            results.append(await client.call_tool("f__sample", {"prompt": "mine", "gate": str(gate)}))
            answered.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(sample)
            await events_seen(events, "gated sample")
            tg.start_soon(partial(client.call_tool, "f__hang", {}))
            await events_seen(events, "started hang")
            gate.touch()
            with anyio.fail_after(20):
                await answered.wait()
            tg.cancel_scope.cancel()
    assert _text(results[0]) == "A says: mine"


async def _roots(context: ClientRequestContext) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root.model_validate({"uri": "file:///work/project", "name": "project"})])


@pytest.mark.parametrize(("downstream", "upstream_mode"), [("stdio-2026", "auto"), ("stdio-2025", "legacy")])
async def test_a_request_for_roots_is_answered_by_the_calling_client(
    tmp_path: Path, downstream: str, upstream_mode: Literal["auto", "legacy"]
) -> None:
    options = ("--ops-tools",) if downstream == "stdio-2026" else ("--ops-tools", "--legacy-only")
    config = write_config(tmp_path, {"f": fault_entry(*options)})
    async with (
        http_aggregator(config) as url,
        Client(url, mode=upstream_mode, list_roots_callback=_roots) as client,
        Client(url, mode=upstream_mode) as no_roots,
    ):
        result = await client.call_tool("f__roots", {})
        assert not result.is_error, _text(result)
        assert result.structured_content == {"roots": ["file:///work/project"]}
        refused = await no_roots.call_tool("f__roots", {})
        assert refused.is_error
        assert "does not support" in _text(refused) or "roots" in _text(refused)


async def _slow_person(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    await anyio.sleep(1.5)  # the scenario itself: a person takes longer than the call's timeout
    return types.ElicitResult(action="accept", content={"answer": "after a while"})


@pytest.mark.parametrize(
    ("downstream", "upstream_mode"),
    [("stdio-2026", "auto"), ("http-2025", "legacy"), ("stdio-2025", "legacy"), ("stdio-2025", "auto")],
)
async def test_the_time_a_person_takes_to_answer_does_not_count_against_the_calls_timeout(
    tmp_path: Path, downstream: str, upstream_mode: Literal["auto", "legacy"]
) -> None:
    async with _downstream(downstream, tmp_path, tmp_path / "events.log") as entry:
        config = write_config(tmp_path, {"f": {**entry, "timeout": "1s"}})
        async with (
            http_aggregator(config) as url,
            Client(url, mode=upstream_mode, elicitation_callback=_slow_person) as c,
        ):
            result = await c.call_tool("f__elicit", {"question": "take your time"})
            assert not result.is_error, _text(result)
            assert result.structured_content == {"action": "accept", "content": {"answer": "after a while"}}
            # The call's own timeout still holds when nobody is being asked.
            hung = await c.call_tool("f__hang", {})
            assert "timed out after 1s" in _text(hung)


async def test_a_person_who_never_answers_ends_the_wait_after_input_timeout(tmp_path: Path) -> None:
    never = anyio.Event()

    async def absent(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        await never.wait()
        raise AssertionError("unreachable")

    config = write_config(tmp_path, {"f": fault_entry("--legacy-only", timeout="1s", input_timeout="1s")})
    async with http_aggregator(config) as url, Client(url, mode="legacy", elicitation_callback=absent) as client:
        with anyio.fail_after(20):
            result = await client.call_tool("f__elicit", {"question": "anyone?"})
        assert result.is_error
        assert "the client did not answer server 'f''s elicitation request within 1s" in _text(result)
