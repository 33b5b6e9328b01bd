"""Self-test of the fault server: a real subprocess driven by the SDK client, in both eras.

`mode="auto"` negotiates 2026-07-28 with this server; `mode="legacy"` does the 2025-11-25
handshake. The timings printed by the crash test (`pytest -s`) are what the aggregator can
expect from the SDK when a stdio child dies mid-call.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import anyio
import mcp_types as types
import pytest
from anyio.streams.text import TextReceiveStream
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ToolsListChanged
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from tests.fakes import EVENTS_FILE_ENV, REPO_ROOT, fault_server_argv, fault_server_command, read_events

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

    from mcp.client.caching import CacheMode
    from mcp.client.session import ClientRequestContext, IncomingMessage

pytestmark = pytest.mark.anyio

T = TypeVar("T")

MODES = ["auto", "legacy"]
EXPECTED_VERSION = {"auto": "2026-07-28", "legacy": "2025-11-25"}
BUILTIN_TOOLS = {
    "echo",
    "add",
    "slow",
    "hang",
    "crash",
    "pid",
    "add_tool",
    "remove_tool",
    "log",
    "sample",
    "elicit",
    "fail",
    "big",
    "env",
    "spawn_grandchild",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def _params(*options: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=fault_server_argv(*options), cwd=REPO_ROOT, env=env)


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def _structured(result: types.CallToolResult) -> dict[str, Any]:
    content: object = result.structured_content
    assert isinstance(content, dict)
    return cast("dict[str, Any]", content)


class _Collector(Generic[T]):
    """Collects callback values; `wait_len` blocks (bounded) until enough arrived."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._changed = anyio.Event()

    def add(self, item: T) -> None:
        self.items.append(item)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_len(self, n: int, timeout: float = 2.0) -> list[T]:
        with anyio.fail_after(timeout):
            while len(self.items) < n:
                await self._changed.wait()
        return self.items


async def _wait_for_event(path: Path, prefix: str, count: int = 1, timeout: float = 5.0) -> str:
    """Poll the events file (bounded) until `count` lines start with `prefix`; return the last of them."""
    with anyio.fail_after(timeout):
        while True:
            matching = [line for line in read_events(path) if line.startswith(prefix)]
            if len(matching) >= count:
                return matching[count - 1]
            await anyio.sleep(0.02)


class _Inbox:
    """A `message_handler` that keeps what it receives and wakes waiters."""

    def __init__(self) -> None:
        self.messages: list[IncomingMessage] = []
        self._changed = anyio.Event()

    async def __call__(self, message: IncomingMessage) -> None:
        self.messages.append(message)
        self._changed.set()
        self._changed = anyio.Event()

    def of_type(self, kind: type[Any]) -> list[IncomingMessage]:
        return [m for m in self.messages if isinstance(m, kind)]

    async def wait_for(self, kind: type[Any], timeout: float = 5.0) -> IncomingMessage:
        with anyio.fail_after(timeout):
            while not (found := self.of_type(kind)):
                await self._changed.wait()
        return found[0]


# --------------------------------------------------------------------------- basics


async def test_tools_resource_prompt(mode: str) -> None:
    odd = "x" * 60 + ".odd-name_1"
    env = {"FAULT_SELFTEST_SECRET": "s3cr3t-value"}
    params = _params("--name", "f1", "--tools", f"plain,{odd}", "--tool", "with,comma", env=env)
    async with Client(params, mode=mode) as c:
        assert c.protocol_version == EXPECTED_VERSION[mode]
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert BUILTIN_TOOLS | {"plain", odd, "with,comma"} <= set(tools)
        assert tools["echo"].annotations is not None
        assert tools["echo"].annotations.read_only_hint is True

        echo = await c.call_tool("echo", {"text": "héllo"})
        assert _text(echo) == "héllo"
        assert echo.structured_content == {"text": "héllo"}
        assert (await c.call_tool("add", {"a": 2, "b": 0.5})).structured_content == {"sum": 2.5}
        assert _text(await c.call_tool(odd, {"k": [1, 2]})) == '{"k": [1, 2]}'
        assert _text(await c.call_tool("with,comma", {})) == "{}"

        failed = await c.call_tool("fail", {"message": "boom"})
        assert failed.is_error is True
        assert _text(failed) == "boom"
        bad_args = await c.call_tool("add", {"a": "two", "b": 1})
        assert bad_args.is_error is True
        with pytest.raises(MCPError):
            await c.call_tool("no-such-tool", {})

        assert len(_text(await c.call_tool("big", {"kb": 64}))) == 64 * 1024
        assert _structured(await c.call_tool("pid", {}))["pid"] > 0

        resource = await c.read_resource("fault://static")
        content = resource.contents[0]
        assert isinstance(content, types.TextResourceContents)
        assert content.text == "static"
        prompt = await c.get_prompt("greet", {"name": "Ada"})
        message = prompt.messages[0].content
        assert isinstance(message, types.TextContent)
        assert message.text == "Hello, Ada!"

        present = await c.call_tool("env", {"name": "FAULT_SELFTEST_SECRET"})
        absent = await c.call_tool("env", {"name": "FAULT_SELFTEST_NOT_SET"})
        assert present.structured_content == {"name": "FAULT_SELFTEST_SECRET", "set": True}
        assert absent.structured_content == {"name": "FAULT_SELFTEST_NOT_SET", "set": False}
        assert "s3cr3t" not in _text(present)


async def test_progress(mode: str) -> None:
    seen = _Collector[tuple[float, float | None, str | None]]()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.add((progress, total, message))

    async with Client(_params(), mode=mode) as c:
        result = await c.call_tool("slow", {"seconds": 0.2, "steps": 4}, progress_callback=on_progress)
        assert _text(result) == "done"
        # Progress callbacks run as spawned tasks: the last one may land just after the result.
        progress = await seen.wait_len(4)
    assert sorted(progress) == [(float(i), 4.0, f"step {i}/4") for i in range(1, 5)]


async def test_log(mode: str) -> None:
    logs = _Collector[types.LoggingMessageNotificationParams]()

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.add(params)

    # log_level is the 2026-07-28 per-request opt-in; without it nothing arrives on that era.
    async with Client(_params(), mode=mode, logging_callback=on_log, log_level="info") as c:
        assert _text(await c.call_tool("log", {"level": "warning", "message": "hello"})) == "logged"
        first = (await logs.wait_len(1))[0]
    assert (first.level, first.data, first.logger) == ("warning", "hello", "fault")


# --------------------------------------------------------------------------- cancellation


async def test_hang_timeout_sends_cancel(mode: str, tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    async with Client(_params(env={EVENTS_FILE_ENV: str(events)}), mode=mode) as c:
        start = time.monotonic()
        with pytest.raises(MCPError) as exc_info:
            await c.call_tool("hang", {}, read_timeout_seconds=0.5)
        elapsed = time.monotonic() - start
        assert exc_info.value.code == types.REQUEST_TIMEOUT
        assert 0.4 < elapsed < 3
        started = await _wait_for_event(events, "started hang")
        cancelled = await _wait_for_event(events, "cancelled hang")
        # Same request id: the courtesy notifications/cancelled named the hanging call.
        assert cancelled.split()[-1] == started.split()[-1]
        # The server is still usable afterwards.
        assert _text(await c.call_tool("echo", {"text": "still here"})) == "still here"

        # A caller-side cancellation (not only a timeout) also sends notifications/cancelled.
        second = ""
        async with anyio.create_task_group() as tg:

            async def call_hang() -> None:
                await c.call_tool("hang", {})

            tg.start_soon(call_hang)
            second = await _wait_for_event(events, "started hang", count=2)
            tg.cancel_scope.cancel()
        assert await _wait_for_event(events, "cancelled hang", count=2) == second.replace("started", "cancelled")
    assert not any(line.startswith("aborted") for line in read_events(events))


async def test_hang_aborted_when_stdin_closes(tmp_path: Path) -> None:
    """Without notifications/cancelled the handler is still torn down, and says so differently."""
    events = tmp_path / "events.txt"
    lines = [
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
        '"capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}',
        '{"jsonrpc":"2.0","method":"notifications/initialized"}',
        '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"hang","arguments":{}}}',
    ]
    env = {**os.environ, EVENTS_FILE_ENV: str(events)}
    command = fault_server_command()
    async with await anyio.open_process(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL) as process:
        assert process.stdin is not None
        await process.stdin.send("".join(line + "\n" for line in lines).encode())
        assert await _wait_for_event(events, "started hang") == "started hang 2"
        await process.stdin.aclose()
        with anyio.fail_after(5):
            await process.wait()
    assert read_events(events) == ["started hang 2", "aborted hang 2"]


# --------------------------------------------------------------------------- list_changed


async def test_add_tool_list_changed(mode: str) -> None:
    inbox = _Inbox()

    async def names(cache_mode: CacheMode = "use") -> set[str]:
        return {t.name for t in (await c.list_tools(cache_mode=cache_mode)).tools}

    # --list-ttl-ms: tools/list carries a 60 s SEP-2549 cache hint, honoured by the client at 2026-07-28.
    async with Client(_params("--list-ttl-ms", "60000"), mode=mode, message_handler=inbox) as c:
        assert "fresh-tool" not in await names()
        if mode == "legacy":
            assert _text(await c.call_tool("add_tool", {"name": "fresh-tool"})) == "added"
            await inbox.wait_for(types.ToolListChangedNotification)
        else:
            # 2026-07-28 without a listen stream: no notification (counted below), and the client
            # keeps serving its cached (now stale) listing until the TTL runs out or the caller refreshes.
            assert _text(await c.call_tool("add_tool", {"name": "unheard-tool"})) == "added"
            assert "unheard-tool" not in await names()
            assert "unheard-tool" in await names("refresh")
            async with c.listen(tools_list_changed=True) as sub:
                assert sub.honored.tools_list_changed is True
                assert _text(await c.call_tool("add_tool", {"name": "fresh-tool"})) == "added"
                with anyio.fail_after(5):
                    event = await sub.__anext__()
                assert event == ToolsListChanged()
            # The listen stream's frame is teed to message_handler as well. It is the only one: a
            # notification for the unheard change would have come before add_tool's answer, long before.
            await inbox.wait_for(types.ToolListChangedNotification)
            assert len(inbox.of_type(types.ToolListChangedNotification)) == 1
        # Legacy: nothing is cached (no hints on that wire); modern: the listen event evicted the entry.
        assert "fresh-tool" in await names()
        assert _text(await c.call_tool("fresh-tool", {"a": 1})) == '{"a": 1}'
        assert _text(await c.call_tool("add_tool", {"name": "fresh-tool"})) == "exists"
        assert _text(await c.call_tool("remove_tool", {"name": "fresh-tool"})) == "removed"
        assert "fresh-tool" not in await names("refresh")


# --------------------------------------------------------------------------- sampling / elicitation


async def test_sampling_and_elicitation(mode: str) -> None:
    asked: list[types.CreateMessageRequestParams] = []

    async def sampling(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        asked.append(params)
        first = params.messages[0].content
        prompt = first.text if isinstance(first, types.TextContent) else "?"
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(text=f"reply to {prompt}"), model="fake-llm"
        )

    async def elicitation(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestFormParams)
        return types.ElicitResult(action="accept", content={"answer": f"yes: {params.message}"})

    async with Client(_params(), mode=mode, sampling_callback=sampling, elicitation_callback=elicitation) as c:
        result = await c.call_tool("sample", {"prompt": "ping"})
        assert result.is_error is not True
        assert _text(result) == "reply to ping"
        assert len(asked) == 1
        assert asked[0].max_tokens == 50
        elicited = await c.call_tool("elicit", {"question": "ok?"})
        assert elicited.structured_content == {"action": "accept", "content": {"answer": "yes: ok?"}}

    async with Client(_params(), mode=mode) as c:  # no callbacks: no capabilities declared
        refused = await c.call_tool("sample", {"prompt": "ping"})
        assert refused.is_error is True
        assert "sampling" in _text(refused)
        refused = await c.call_tool("elicit", {"question": "ok?"})
        assert refused.is_error is True
        assert "elicitation" in _text(refused)


async def test_sample_hang_after_hangs_once_the_reply_is_in_and_handshake_waits_are_recorded(
    mode: str, tmp_path: Path
) -> None:
    events = tmp_path / "events.txt"
    answered = anyio.Event()

    async def sampling(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        if mode == "legacy":  # the server's handler is waiting on this very answer
            assert await _wait_for_event(events, "started sample")
        answered.set()
        return types.CreateMessageResult(role="assistant", content=types.TextContent(text="ok"), model="fake-llm")

    async with Client(_params(env={EVENTS_FILE_ENV: str(events)}), mode=mode, sampling_callback=sampling) as c:
        with pytest.raises(MCPError) as exc_info:
            await c.call_tool("sample", {"prompt": "p", "hang_after": True}, read_timeout_seconds=1)
        assert exc_info.value.code == types.REQUEST_TIMEOUT
        assert answered.is_set()
        started = await _wait_for_event(events, "started hang")
        cancelled = await _wait_for_event(events, "cancelled hang")
    assert cancelled.split()[-1] == started.split()[-1]
    sample_events = [line for line in read_events(events) if "sample" in line]
    # Handshake era: the wait for the answer is recorded, start and end; 2026-07-28 has no such wait.
    assert [line.split()[0] for line in sample_events] == (["started", "finished"] if mode == "legacy" else [])


# --------------------------------------------------------------------------- crash / process faults


async def test_crash_fails_the_call_promptly(mode: str, tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    async with Client(_params(env={EVENTS_FILE_ENV: str(events)}), mode=mode) as c:
        start = time.monotonic()
        with pytest.raises(MCPError) as exc_info:
            await c.call_tool("crash", {}, read_timeout_seconds=10)
        elapsed = time.monotonic() - start
        print(f"\n[{mode}] crash mid-call -> MCPError({exc_info.value.code}) after {elapsed * 1000:.1f} ms")
        assert exc_info.value.code == types.CONNECTION_CLOSED
        assert elapsed < 2.0
        with pytest.raises(MCPError) as again:
            await c.call_tool("echo", {"text": "x"})
        assert again.value.code == types.CONNECTION_CLOSED
    assert read_events(events) == ["crash"]


async def test_spawn_grandchild_same_process_group(mode: str) -> None:
    async with Client(_params(), mode=mode) as c:
        server = await c.call_tool("pid", {})
        child = await c.call_tool("spawn_grandchild", {})
        server_pid: int = _structured(server)["pid"]
        child_pid: int = _structured(child)["pid"]
        try:
            assert os.getpgid(child_pid) == os.getpgid(server_pid) == server_pid  # SDK: start_new_session
        finally:
            os.kill(child_pid, signal.SIGKILL)


async def test_fail_start() -> None:
    start = time.monotonic()
    done = await anyio.run_process(fault_server_command("--fail-start"), cwd=REPO_ROOT, check=False)
    assert done.returncode == 3
    assert b"--fail-start" in done.stderr
    assert time.monotonic() - start < 5


async def test_fail_start_file(tmp_path: Path) -> None:
    flag = tmp_path / "down"
    flag.write_text("")
    done = await anyio.run_process(fault_server_command("--fail-start-file", str(flag)), cwd=REPO_ROOT, check=False)
    assert done.returncode == 3
    assert str(flag).encode() in done.stderr
    flag.unlink()
    async with Client(_params("--fail-start-file", str(flag))) as c:
        assert _text(await c.call_tool("echo", {"text": "back"})) == "back"


async def test_stderr_flood_then_serves(tmp_path: Path) -> None:
    errlog_path = tmp_path / "stderr.txt"
    with errlog_path.open("w") as errlog:
        async with Client(stdio_client(_params("--stderr-mb", "2"), errlog=errlog)) as c:
            assert _text(await c.call_tool("echo", {"text": "after flood"})) == "after flood"
    assert errlog_path.stat().st_size >= 2 * 1024 * 1024


# --------------------------------------------------------------------------- streamable HTTP


@asynccontextmanager
async def _http_server(*options: str, transport: str = "http") -> AsyncGenerator[str]:
    """Start the fault server over `transport` (`http` or `sse`); yield its endpoint URL."""
    command = fault_server_command("--transport", transport, "--port", "0", *options)
    async with await anyio.open_process(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL) as process:
        try:
            assert process.stderr is not None
            buffer = ""
            with anyio.fail_after(15):
                async for chunk in TextReceiveStream(process.stderr):
                    buffer += chunk
                    if "LISTENING " in buffer and buffer.split("LISTENING ", 1)[1].count("\n"):
                        break
            port = int(buffer.split("LISTENING ", 1)[1].split()[0])
            yield f"http://127.0.0.1:{port}/{'sse' if transport == 'sse' else 'mcp'}"
        finally:
            process.terminate()
            with anyio.move_on_after(5):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_http_both_eras() -> None:
    async with _http_server("--name", "webfault") as url:
        for mode in MODES:
            await _check_http_client(url, mode)


async def _check_http_client(url: str, mode: str) -> None:
    seen = _Collector[float]()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.add(progress)

    inbox = _Inbox()
    async with Client(url, mode=mode, message_handler=inbox) as c:
        assert c.protocol_version == EXPECTED_VERSION[mode]
        assert _text(await c.call_tool("echo", {"text": mode})) == mode
        await c.call_tool("slow", {"seconds": 0.05, "steps": 2}, progress_callback=on_progress)
        assert await seen.wait_len(2) == [1.0, 2.0]
        if mode == "legacy":
            # Handshake era over HTTP: list_changed rides the standalone GET stream.
            await c.call_tool("add_tool", {"name": "http-added"})
            await inbox.wait_for(types.ToolListChangedNotification)
        else:
            async with c.listen(tools_list_changed=True) as sub:
                await c.call_tool("add_tool", {"name": "http-added-modern"})
                with anyio.fail_after(5):
                    assert await sub.__anext__() == ToolsListChanged()
        names = {t.name for t in (await c.list_tools()).tools}
        assert {"http-added", "http-added-modern"} & names


# --------------------------------------------------------------------------- --legacy-only, headers


@asynccontextmanager
async def _client_over(
    transport: str, *options: str, headers: dict[str, str] | None = None, **client_options: Any
) -> AsyncGenerator[Client]:
    """A `Client` (auto mode unless told) connected to a fault server started with `options`."""
    if transport == "stdio":
        async with Client(_params(*options), **client_options) as client:
            yield client
        return
    async with _http_server(*options, transport=transport) as url:
        if transport == "sse":
            async with Client(sse_client(url, headers=headers), **client_options) as client:
                yield client
        else:
            async with (
                create_mcp_http_client(headers=headers) as http_client,
                Client(streamable_http_client(url, http_client=http_client), **client_options) as client,
            ):
                yield client


@pytest.mark.parametrize("transport", ["stdio", "http", "sse"])
async def test_legacy_only_turns_an_auto_client_to_the_handshake_era(transport: str) -> None:
    async with _client_over(transport) as client:
        assert client.protocol_version == "2026-07-28"
    async with _client_over(transport, "--legacy-only") as client:
        assert client.protocol_version == "2025-11-25"
        assert client.session.initialize_result is not None
        assert _text(await client.call_tool("echo", {"text": "old"})) == "old"
        assert {t.name for t in (await client.list_tools()).tools} == BUILTIN_TOOLS


async def test_legacy_only_refuses_discover_and_modern_requests_with_method_not_found() -> None:
    # What a 2025-11-25-only server answers a client pinned to the modern era.
    async with _http_server("--legacy-only") as url, Client(url, mode="2026-07-28") as client:
        with pytest.raises(MCPError) as discover:
            await client.session.send_discover("2026-07-28")
        with pytest.raises(MCPError) as call:
            await client.call_tool("echo", {"text": "new"})
    assert discover.value.code == types.METHOD_NOT_FOUND
    assert call.value.code == types.METHOD_NOT_FOUND


@pytest.mark.parametrize("transport", ["http", "sse"])
@pytest.mark.parametrize("mode", MODES)
async def test_headers_tool_returns_the_request_headers_of_the_call(transport: str, mode: str) -> None:
    sent = {"Authorization": "Bearer selftest-canary", "X-Api-Key": "k-1"}
    async with _client_over(transport, "--headers-tool", headers=sent, mode=mode) as client:
        result = await client.call_tool("headers", {})
        assert result.is_error is not True, _text(result)
        received = _structured(result)
    assert received["authorization"] == "Bearer selftest-canary"
    assert received["x-api-key"] == "k-1"
    assert all(name == name.lower() for name in received)
    assert received["host"].startswith("127.0.0.1:")


async def test_headers_tool_is_opt_in_and_an_error_on_stdio() -> None:
    async with Client(_params()) as client:
        assert "headers" not in {t.name for t in (await client.list_tools()).tools}
    async with Client(_params("--headers-tool")) as client:
        result = await client.call_tool("headers", {})
    assert result.is_error is True
    assert "HTTP" in _text(result)


async def test_bad_output_tool_breaks_its_own_output_schema_and_the_sdk_client_refuses_it(mode: str) -> None:
    async with Client(_params()) as client:
        assert "bad_output" not in {t.name for t in (await client.list_tools()).tools}
    async with Client(_params("--bad-output-tool"), mode=mode) as client:
        assert client.protocol_version == EXPECTED_VERSION[mode]
        tool = next(t for t in (await client.list_tools()).tools if t.name == "bad_output")
        assert tool.output_schema is not None
        assert tool.output_schema["properties"]["n"] == {"type": "integer"}
        assert _structured(await client.call_tool("bad_output", {"n": 7})) == {"n": 7}
        # The server sends the result as it is; the SDK client's own check refuses it.
        with pytest.raises(RuntimeError, match="Invalid structured content returned by tool bad_output") as refused:
            await client.call_tool("bad_output", {})
        with pytest.raises(RuntimeError, match="has an output schema but did not return structured content"):
            await client.call_tool("bad_output", {"n": 7, "structured": False})
    assert "'seven' is not of type 'integer'" in str(refused.value)
