"""Bad input from the upstream client (test plan rows 24-25): junk frames, wrong arguments, size.

A real aggregator fronts one fault server (``f``). Over stdio the JSON-RPC frames are raw lines
written to a Popen'd aggregator; over HTTP they are raw POSTs. Every wait is bounded.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, cast

import anyio
import httpx2
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client, types

from tests.e2e.harness import REPO_ROOT, aggregator_params, fault_entry, http_aggregator, write_config

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.anyio

_DEEP = 100_000
_REPLY_TIMEOUT = 10.0
_INIT_PARAMS = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
_HTTP_BODY_CAP = 4 * 1024 * 1024


def _request(message_id: object, method: str, params: object) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": message_id, "method": method, "params": params}).encode()


def _deep_add_call(message_id: int) -> bytes:
    """A tools/call whose argument ``a`` is an array nested ``_DEEP`` levels deep."""
    nested = b"[" * _DEEP + b"]" * _DEEP
    head = f'{{"jsonrpc":"2.0","id":{message_id},"method":"tools/call","params":{{"name":"f__add","arguments":{{"a":'
    return head.encode() + nested + b',"b":1}}}'


class _Wire:
    """A stdio aggregator driven line by line; a reader thread keeps every wait bounded."""

    def __init__(self, config: Path, stderr: Path) -> None:
        self._stderr = stderr.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "serve", "-c", str(config)],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)

    def send(self, frame: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(frame + b"\n")
        self.process.stdin.flush()

    def responses(self, timeout: float) -> list[dict[str, Any]]:
        """Responses (not notifications) written within ``timeout`` seconds."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = json.loads(self._lines.get(timeout=left))
            except queue.Empty:
                break
            if "method" not in message:
                found.append(message)
        return found

    def reply(self, message_id: object, timeout: float = _REPLY_TIMEOUT) -> dict[str, Any]:
        """The response to ``message_id``; fails after ``timeout`` seconds without one."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = json.loads(self._lines.get(timeout=left))
            except queue.Empty:
                break
            if "method" not in message and message.get("id") == message_id:
                return message
        pytest.fail(f"no response to id {message_id!r} within {timeout} s", pytrace=False)

    def handshake(self) -> None:
        self.send(_request(0, "initialize", _INIT_PARAMS))
        assert "result" in self.reply(0, timeout=30)
        self.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self._stderr.close()


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[_Wire]:
    stdio = _Wire(write_config(tmp_path, {"f": fault_entry()}), tmp_path / "aggregator.stderr")
    try:
        stdio.handshake()
        yield stdio
    finally:
        stdio.close()


def test_stdio_aggregator_answers_bad_requests_with_the_right_errors_survives_junk_and_keeps_serving(
    wire: _Wire,
) -> None:
    wire.send(_request(1, "no/such/method", {}))
    assert wire.reply(1)["error"]["code"] == -32601

    wire.send(_request(2, "tools/call", {"name": "f__nope", "arguments": {}}))
    assert wire.reply(2)["error"]["code"] == -32602

    wire.send(_request(3, "tools/call", {"name": "f__add", "arguments": {"a": "one", "b": [2]}}))
    wrong_type = wire.reply(3)
    assert "error" not in wrong_type
    assert wrong_type["result"]["isError"] is True
    assert "invalid arguments for tool 'f__add'" in wrong_type["result"]["content"][0]["text"]

    # Junk frames: whatever the answer (the next test pins the codes down), nothing may crash.
    for frame in (
        b"{not json",
        b"\xff\xfe garbage \x00",
        b"[" + _request(4, "tools/list", {}) + b"]",
        b"[]",
        b'"just a string"',
        _request(5, "tools/call", "not an object"),
        b'{"id": 6, "method": "tools/list"}',
        _deep_add_call(7),
    ):
        wire.send(frame)
    stray = wire.responses(timeout=1.0)
    assert all("error" in message for message in stray), stray
    assert wire.process.poll() is None

    wire.send(_request(8, "tools/call", {"name": "f__add", "arguments": {"a": 1, "b": 2}}))
    assert wire.reply(8)["result"]["structuredContent"] == {"sum": 3}


def test_stdio_aggregator_answers_unparseable_frames_with_parse_and_invalid_request_errors(wire: _Wire) -> None:
    wire.send(b"{not json")
    assert wire.reply(None, timeout=2)["error"]["code"] == -32700

    wire.send(b"[" + _request(1, "tools/list", {}) + b"]")
    assert wire.reply(None, timeout=2)["error"]["code"] == -32600

    wire.send(b'{"jsonrpc": "2.0", "id": null, "method": "tools/list"}')
    assert wire.reply(None, timeout=2)["error"]["code"] == -32600

    wire.send(_deep_add_call(2))
    deep = wire.responses(timeout=2)
    assert len(deep) == 1, deep
    assert deep[0]["error"]["code"] in (-32700, -32600)


async def test_http_aggregator_rejects_oversized_and_unparseable_bodies_and_keeps_serving(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"f": fault_entry()})
    async with http_aggregator(config) as url:
        async with httpx2.AsyncClient(timeout=20) as http:
            filler = b"x" * (_HTTP_BODY_CAP + 1024)
            oversized = _request(1, "tools/call", {"name": "f__echo", "arguments": {"text": ""}})
            oversized = oversized.replace(b'"text": ""', b'"text": "' + filler + b'"')
            too_big = await http.post(url, content=oversized, headers=_HEADERS)
            assert too_big.status_code == 413

            junk = await http.post(url, content=b"{not json", headers=_HEADERS)
            assert junk.status_code == 400
            assert junk.json()["error"]["code"] == -32700

            # The SDK answers a batch with 400 and -32602 (not the spec's -32600): an error either way.
            batch = await http.post(url, content=b"[" + _request(2, "tools/list", {}) + b"]", headers=_HEADERS)
            assert 400 <= batch.status_code < 500
            assert batch.json()["error"]["code"] in (-32600, -32602)

            deep = await http.post(url, content=_deep_add_call(3), headers=_HEADERS)
            assert 400 <= deep.status_code < 500

        with anyio.fail_after(30):
            async with Client(url) as client:
                result = await client.call_tool("f__add", {"a": 1, "b": 2})
        assert result.structured_content == {"sum": 3}


# ------------------------------------------------------------------ fuzzed arguments for f__add

_NUMBER = st.integers(min_value=-(2**53), max_value=2**53) | st.floats(
    min_value=-1e300, max_value=1e300, allow_nan=False, allow_infinity=False
)
_JSON = st.recursive(
    st.none() | st.booleans() | _NUMBER | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
_EXTRA: dict[str, st.SearchStrategy[Any]] = {"extra": _JSON}
_ARGUMENTS = cast(
    "st.SearchStrategy[dict[str, Any]]",
    st.one_of(
        st.fixed_dictionaries({"a": _NUMBER, "b": _NUMBER}),
        st.fixed_dictionaries({"a": _NUMBER, "b": _NUMBER}, optional=_EXTRA),
        st.dictionaries(st.sampled_from(["a", "b", "c", ""]), _JSON, max_size=3),
        st.fixed_dictionaries({"a": _JSON, "b": _NUMBER}),
    ),
)


def _generated_arguments() -> list[dict[str, Any]]:
    """About 100 argument objects, the same ones on every run (hypothesis only generates here)."""
    collected: list[dict[str, Any]] = []

    @settings(
        max_examples=100,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(arguments=_ARGUMENTS)
    def collect(arguments: dict[str, Any]) -> None:
        collected.append(arguments)

    collect()
    return collected


async def test_fuzzed_add_arguments_give_the_sum_or_an_invalid_arguments_result_and_nothing_crashes(
    tmp_path: Path,
) -> None:
    examples = _generated_arguments()
    assert len(examples) >= 50
    config = write_config(tmp_path, {"f": fault_entry()})
    valid = invalid = 0
    with anyio.fail_after(60):
        async with Client(aggregator_params(config)) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            checker: Any = jsonschema.Draft202012Validator(tools["f__add"].input_schema)
            pid_before = (await client.call_tool("f__pid", {})).structured_content
            for arguments in examples:
                result = await client.call_tool("f__add", arguments)
                if checker.is_valid(arguments):
                    valid += 1
                    assert not result.is_error, (arguments, result)
                    assert result.structured_content == {"sum": arguments["a"] + arguments["b"]}, arguments
                else:
                    invalid += 1
                    assert result.is_error, arguments
                    text = "".join(block.text for block in result.content if isinstance(block, types.TextContent))
                    # The aggregator's own wording: the fault server says "invalid arguments for add:",
                    # so this text proves the call was refused before it reached the downstream.
                    assert text.startswith("invalid arguments for tool 'f__add'"), (arguments, text)
            assert (await client.call_tool("f__pid", {})).structured_content == pid_before
    assert valid >= 10, (valid, invalid)
    assert invalid >= 10, (valid, invalid)
