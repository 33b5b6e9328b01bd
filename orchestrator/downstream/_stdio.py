"""The stdio transport to a downstream server: a child process in its own process group.

The SDK's ``stdio_client`` is close, but an aggregator needs three things it lacks:
- the whole process group is killed on shutdown even when the child itself exits cleanly
  on stdin EOF, so grandchildren (``npx``/``uvx`` launchers) never outlive it;
- stderr is a pipe we drain continuously, so a chatty child never blocks and its output
  lands in our log, bounded;
- one stdout line is capped, so a runaway child cannot make us buffer without limit.
Shutdown follows the spec: close stdin, wait, SIGTERM the group, wait, SIGKILL the group.
"""

from __future__ import annotations

import json
import logging
import subprocess
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, cast

import anyio
import anyio.abc
import mcp_types as types
from mcp.client.stdio import get_default_environment
from mcp.os.posix.utilities import terminate_posix_process_tree
from mcp.shared.message import SessionMessage

from orchestrator._sdk_internals import ReadStream, WrappedReadStream
from orchestrator.downstream._stdio_calls import Handover, StdioCalls

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Mapping

    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from orchestrator.config import StdioServerSpec
    from orchestrator.downstream._stderr import StderrDrain

__all__ = ["MAX_LINE_BYTES", "stdio_transport"]

logger = logging.getLogger(__name__)

MAX_LINE_BYTES = 16 * 1024 * 1024
"""Longest stdout line accepted from a child; a longer one ends the connection."""

_EXIT_GRACE = 2.0
_TERM_GRACE = 2.0
_LEFTOVER_GRACE = 1.0


def _parse(line: bytes) -> SessionMessage | Exception:
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:
        return exc


def _parse_unless_answer(line: bytes, calls: StdioCalls) -> SessionMessage | Exception | Handover:
    """The line for the SDK, or its hand-over when it answers one of ``calls``."""
    try:
        message = json.loads(line)
    except ValueError:
        return _parse(line)  # the SDK's own words for what is wrong with it
    handover = calls.claim(message)
    if handover is not None:
        return handover
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_python(message, by_name=False))
    except ValueError as exc:
        return exc


class _HandingOver(WrappedReadStream):
    """The read stream the SDK's dispatcher takes messages from; hands each ``Handover`` over on the way.

    The dispatcher asks for the next message only once it has dispatched the last one, so an
    answer reaches its caller exactly when the SDK would have resolved it.
    """

    def __init__(self, inner: MemoryObjectReceiveStream[SessionMessage | Exception | Handover]) -> None:
        super().__init__(cast("ReadStream[SessionMessage | Exception]", inner))

    async def receive(self) -> SessionMessage | Exception:
        while True:
            item: object = await self._inner.receive()
            if not isinstance(item, Handover):
                return item
            item.deliver()


def _take_line(buffer: bytearray) -> bytes | None:
    """The first whole line of ``buffer`` (without its newline), taken out of it; ``None`` while there is none."""
    end = buffer.find(b"\n")
    if end < 0:
        return None
    with memoryview(buffer) as view:  # one copy of the line, where slicing the bytearray made two
        line = bytes(view[:end])
    del buffer[: end + 1]
    return line


@asynccontextmanager
async def stdio_transport(
    spec: StdioServerSpec,
    drain: StderrDrain,
    extra_env: Mapping[str, str] | None = None,
    on_calls: Callable[[StdioCalls], None] | None = None,
) -> AsyncGenerator[
    tuple[ReadStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]],
    None,
]:
    """Start the child and yield the (read, write) message streams of its stdio.

    The child's environment is the SDK's safe default (PATH, HOME, ...), then ``extra_env``
    (e.g. the tracing variables), then the server's own configured ``env``, which wins.
    ``on_calls`` is given the child's ``StdioCalls``: requests written beside the SDK's, whose
    answers never reach the read stream.

    Raises:
        OSError: The command could not be started.
    """
    env = get_default_environment() | dict(extra_env or {}) | {k: v.get_secret_value() for k, v in spec.env.items()}
    process = await anyio.open_process(
        [spec.command, *spec.args],
        env=env,
        cwd=spec.cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    read_send, read_receive = anyio.create_memory_object_stream[SessionMessage | Exception | Handover](0)
    write_send, write_receive = anyio.create_memory_object_stream[SessionMessage](0)

    async def write_line(data: bytes) -> None:
        # No lock: one send is one write() of the whole line, which asyncio's pipe transport
        # queues whole and in order, so lines of the SDK and of StdioCalls never interleave.
        assert process.stdin is not None
        await process.stdin.send(data)

    calls = StdioCalls(write_line)
    if on_calls is not None:
        on_calls(calls)

    async def write_stdin() -> None:
        assert process.stdin is not None
        async with write_receive:
            try:
                async for message in write_receive:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await write_line(data.encode())
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                # The child stopped reading: end the session rather than hang a request.
                await read_send.aclose()

    async with anyio.create_task_group() as tg:
        assert process.stderr is not None
        tg.start_soon(_read_stdout, process, spec.command, read_send, calls)
        tg.start_soon(write_stdin)
        tg.start_soon(drain.run, process.stderr)
        try:
            yield _HandingOver(read_receive), write_send
        finally:
            with anyio.CancelScope(shield=True):
                await _stop(process)
                if process.returncode is not None:
                    # Close our pipe ends: a reader that stopped at the line cap never sees EOF,
                    # and asyncio would keep that paused pipe (an fd) open for good.
                    await process.aclose()
            tg.cancel_scope.cancel()
            await read_receive.aclose()
            await write_send.aclose()


async def _read_stdout(
    process: anyio.abc.Process,
    command: str,
    read_send: MemoryObjectSendStream[SessionMessage | Exception | Handover],
    calls: StdioCalls,
) -> None:
    """Hand each stdout line to the SDK (or to the one of ``calls`` it answers) until the child stops."""
    assert process.stdout is not None
    buffer = bytearray()
    async with read_send:
        try:
            async for chunk in process.stdout:
                buffer += chunk
                while (line := _take_line(buffer)) is not None:
                    if not line.strip():
                        continue
                    message = _parse_unless_answer(line, calls) if calls.waiting else _parse(line)
                    # Neither the text (10 MB for a big listing) is kept while the message
                    # is read, nor the message once it is taken (until the next line).
                    del line
                    await read_send.send(message)
                    del message
                if len(buffer) > MAX_LINE_BYTES:
                    logger.error("server %s wrote a line over %d bytes; closing it", command, MAX_LINE_BYTES)
                    # It is blocked writing to a pipe nobody reads now: stop it at once.
                    process.terminate()
                    return
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return
        finally:
            calls.close()


async def _stop(process: anyio.abc.Process) -> None:
    """Close stdin, wait, then SIGTERM and SIGKILL the whole process group; every wait bounded."""
    if process.stdin is not None:
        with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            await process.stdin.aclose()
    await _wait_exit(process, _EXIT_GRACE)
    # Even a child that exited cleanly may leave members of its group behind.
    await terminate_posix_process_tree(process, _TERM_GRACE if process.returncode is None else _LEFTOVER_GRACE)
    await _wait_exit(process, _TERM_GRACE)
    if process.returncode is None:
        logger.warning("process %d survived SIGKILL; abandoning it", process.pid)


async def _wait_exit(process: anyio.abc.Process, timeout: float) -> None:
    """Wait for the child to exit, polling: ``wait()`` would also wait for a grandchild's pipes."""
    with anyio.move_on_after(timeout):
        while process.returncode is None:  # noqa: ASYNC110 - no event exists for a child's exit
            await anyio.sleep(0.01)
