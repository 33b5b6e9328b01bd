"""Approval steps of a composite, asked of the calling client through elicitation, end to end.

The real aggregator (over stdio and streamable HTTP) serves a workflow whose second step asks
for approval; an SDK ``Client`` of either protocol era answers through its elicitation
callback (a 2025-11-25 client gets an ``elicitation/create`` request, a 2026-07-28 client an
input round). The fault server downstream runs with ``--call-events``, so its events file
counts the calls that reached it.
"""

from __future__ import annotations

import json
import re
import time
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import anyio
import mcp_types as types
import pytest
import yaml
from mcp import Client
from mcp.client.stdio import stdio_client

from tests.e2e.durable_harness import GUARDED
from tests.e2e.harness import aggregator_command, aggregator_params, fault_entry, logged_process, write_config
from tests.fakes import EVENTS_FILE_ENV, read_events

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable
    from pathlib import Path

    from mcp.client.session import ClientRequestContext

pytestmark = pytest.mark.anyio

RUN_META_KEY = "io.github.mcp-orchestrator/run"
APPROVAL_META = "io.github.mcp-orchestrator/approval"
UPSTREAMS = ["stdio", "http"]
Action = Literal["accept", "decline", "cancel"]
ERAS = {"2026-07-28": "auto", "2025-11-25": "legacy"}
"""Protocol era of the calling client -> its ``Client(mode=...)``."""


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


def _config(tmp_path: Path, **runs: Any) -> Path:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "guarded.yaml").write_text(yaml.safe_dump(GUARDED, sort_keys=False), encoding="utf-8")
    # `send` is a dummy tool of the fault server: it answers with its arguments.
    server = fault_entry("--call-events", "--tools", "send", env={EVENTS_FILE_ENV: str(tmp_path / "f.events")})
    return write_config(tmp_path, {"f": server}, workflows=[str(folder)], runs=runs)


def _calls(tmp_path: Path) -> list[str]:
    """The tools/calls that reached the fault server, in order."""
    return [line.removeprefix("called ") for line in read_events(tmp_path / "f.events") if line.startswith("called ")]


class _Log:
    """The aggregator's stderr, and a bounded wait for a line of it."""

    def __init__(self, wait: Callable[[str], Awaitable[object]]) -> None:
        self._wait = wait

    async def wait_for(self, text: str) -> None:
        """Wait (bounded) until ``text`` has been logged."""
        await self._wait(re.escape(text))


def _wait_in_file(path: Path, pattern: str, timeout: float = 20.0) -> None:
    """Poll the file ``path`` until ``pattern`` matches in it (blocking: run it in a thread).

    Raises:
        TimeoutError: No match within ``timeout`` seconds.
    """
    compiled = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while not (path.exists() and compiled.search(path.read_text(encoding="utf-8", errors="replace"))):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{pattern!r} was not logged in {path} within {timeout}s")
        time.sleep(0.02)  # a file gives no event to wait on


@asynccontextmanager
async def _caller(
    upstream: str, mode: str, config: Path, tmp_path: Path, **options: Any
) -> AsyncGenerator[tuple[Client, _Log], None]:
    """An SDK client of the aggregator serving ``config``, and the aggregator's log."""
    if upstream == "stdio":
        log_path = tmp_path / "aggregator.log"
        with log_path.open("w", encoding="utf-8") as errlog:
            transport = stdio_client(aggregator_params(config), errlog=errlog)
            async with Client(transport, mode=mode, **options) as client:
                yield client, _Log(lambda pattern: anyio.to_thread.run_sync(partial(_wait_in_file, log_path, pattern)))
        return
    async with (
        logged_process(aggregator_command(config), r"listening on (\S+)") as (match, log),
        Client(match.group(1), mode=mode, **options) as client,
    ):
        yield client, _Log(log.wait_for)


def _run_meta(result: types.CallToolResult) -> dict[str, Any]:
    assert result.meta is not None, result
    return result.meta[RUN_META_KEY]


class Answers:
    """An elicitation callback that answers each approval with the next scripted action."""

    def __init__(self, *actions: Action) -> None:
        self.actions = list(actions)
        self.asked: list[types.ElicitRequestFormParams] = []

    async def __call__(self, context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestFormParams)
        self.asked.append(params)
        action = self.actions.pop(0)
        return types.ElicitResult(action=action, content={} if action == "accept" else None)


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_an_approved_step_runs_once_and_a_declined_one_stops_the_run_before_its_call(
    tmp_path: Path, upstream: str, era: str
) -> None:
    answers = Answers("accept", "decline")
    async with _caller(upstream, ERAS[era], _config(tmp_path), tmp_path, elicitation_callback=answers) as (client, _):
        assert client.protocol_version == era
        with anyio.fail_after(30):
            approved = await client.call_tool("guarded", {"text": "hello"})
        assert not approved.is_error, _text(approved)
        assert approved.structured_content == {"text": "hello"}
        assert _run_meta(approved)["status"] == "succeeded"
        assert _calls(tmp_path) == ["echo", "send"]

        with anyio.fail_after(30):
            declined = await client.call_tool("guarded", {"text": "again"})
        assert declined.is_error
        assert "the user declined step 'send'; nothing was called" in _text(declined)
        run = _run_meta(declined)
        assert (run["status"], run["failed_step"]) == ("declined", "send")
        assert _calls(tmp_path) == ["echo", "send", "echo"]

    # What the user was asked: the message, what the step will do, and which run and step.
    first = answers.asked[0]
    assert first.message.startswith("Send the draft?\n\nStep 'send' calls f.send.\n")
    assert json.loads(first.message.split("f.send.\n", 1)[1]) == {"text": "hello"}
    assert first.requested_schema == {"type": "object", "properties": {}}
    if era == "2025-11-25":  # a 2026-07-28 input request carries no `_meta` on the wire
        assert first.meta is not None
        run_id = _run_meta(approved)["run_id"]
        assert first.meta[APPROVAL_META] == {"run_id": run_id, "step_id": "send", "tool": "f.send"}
    assert len(answers.asked) == 2


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_an_unanswered_approval_times_out_and_declines_the_run_before_its_call(
    tmp_path: Path, upstream: str, era: str
) -> None:
    config = _config(tmp_path, approval_timeout="500ms")
    answered = anyio.Event()

    async def late(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        # The user answers only after the aggregator stopped waiting (or never, if it does not).
        with anyio.fail_after(30):
            await answered.wait()
        return types.ElicitResult(action="accept", content={})

    async with _caller(upstream, ERAS[era], config, tmp_path, elicitation_callback=late) as (client, log):
        result: types.CallToolResult | None = None

        async def call() -> None:
            nonlocal result
            result = await client.call_tool("guarded", {"text": "hello"})

        with anyio.fail_after(40):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                await log.wait_for("approval of step 'send' of run ")
                await log.wait_for(": no answer within 0.5s: declined")
                answered.set()

    assert result is not None
    assert result.is_error
    # A 2026-07-28 client's late answer comes in a round after the run ended: it gets the result.
    assert "no answer to the approval of step 'send' in time; nothing was called" in _text(result)
    run = _run_meta(result)
    assert (run["status"], run["failed_step"]) == ("declined", "send")
    assert _calls(tmp_path) == ["echo"]


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_a_client_without_elicitation_gets_an_error_and_nothing_is_called(
    tmp_path: Path, upstream: str, era: str
) -> None:
    async with _caller(upstream, ERAS[era], _config(tmp_path), tmp_path) as (client, _):
        with anyio.fail_after(30):
            result = await client.call_tool("guarded", {"text": "hello"})
        assert result.is_error
        assert "step 'send' needs the user's approval, and the client cannot be asked" in _text(result)
        assert _run_meta(result)["failed_step"] == "(run)"
        assert _calls(tmp_path) == []
        # The downstream counts calls: a direct one shows up.
        assert not (await client.call_tool("f__echo", {"text": "direct"})).is_error
        assert _calls(tmp_path) == ["echo"]
