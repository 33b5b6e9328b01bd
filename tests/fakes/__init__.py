"""Fake downstream MCP servers for end-to-end tests of the aggregator.

`fault_server` is a real MCP server (low-level SDK `Server`) with tools that misbehave on
purpose: slow, hang, crash, fail, flood stderr, change the tool list at run time. Run it as
a subprocess from the repository root::

    python -m tests.fakes.fault_server [--name NAME] [--tools a,b] [--transport http --port 0] ...

`inprocess` (not a subprocess: imported by tests) holds `ToolServer`, an in-process `MCPServer`
whose tools report through events, and memory-stream transports to it, for fast tests of the
server and downstream layers.

This package module stays stdlib-only: `python -m tests.fakes.fault_server` imports it first,
and a `--fail-start` server should fail fast without paying for the SDK import. Helpers that
need the SDK build on `fault_server_argv` (e.g.
`StdioServerParameters(command=sys.executable, args=fault_server_argv(...), cwd=REPO_ROOT, env=...)`).

Events file protocol (`FAULT_EVENTS_FILE`): one line per event, appended and flushed as it
happens. Lines written: `started hang <request-id>`, `cancelled hang <request-id>` (the
client sent `notifications/cancelled`), `aborted hang <request-id>` (the handler was torn
down for another reason, e.g. the connection closed) -- by `hang`, and by `sample` with
`hang_after` once its reply is in; the same three with `sample`/`elicit` for a handshake-era
`sample`/`elicit` call while it waits for the client's answer; `crash`; `spawned <pid> <unix-time>` at process start
when the server runs with `--start-event` (opt-in); `crash-after-seconds` just before a
`--crash-after-seconds` exit; `called <tool>` as each tools/call arrives, with `--call-events`
(opt-in). Remember that an SDK stdio client passes only a whitelist of
environment variables to the child: put `FAULT_EVENTS_FILE` into the `env` you hand the
transport.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

__all__ = [
    "EVENTS_FILE_ENV",
    "FAULT_SERVER_MODULE",
    "REPO_ROOT",
    "exit_served",
    "fault_server_argv",
    "fault_server_command",
    "garbage_line",
    "read_events",
    "wait_for_event",
    "wait_for_events",
    "wait_process_gone",
]

REPO_ROOT: Path = Path(__file__).resolve().parents[2]
"""The repository root: the working directory `python -m tests.fakes.fault_server` needs."""

FAULT_SERVER_MODULE = "tests.fakes.fault_server"

EVENTS_FILE_ENV = "FAULT_EVENTS_FILE"
"""Environment variable naming the file the fault server appends its event lines to."""


def fault_server_argv(*options: str) -> list[str]:
    """Arguments for `sys.executable` that start the fault server with `options`."""
    return ["-m", FAULT_SERVER_MODULE, *options]


def fault_server_command(*options: str) -> list[str]:
    """A full command line (interpreter included) that starts the fault server."""
    return [sys.executable, *fault_server_argv(*options)]


def garbage_line(i: int) -> bytes:
    """Line ``i`` of the noise `--garbage N` and the `garbage(n)` tool write to stdout.

    Never a JSON-RPC message: plain text, valid JSON that is not JSON-RPC, or broken JSON,
    in turn; always one line, newline included, far below PIPE_BUF.
    """
    kinds = (b"fault_server garbage %d: this is not JSON {[" % i, b'{"garbage": %d}' % i, b"[%d, oops" % i)
    return kinds[i % len(kinds)] + b"\n"


def read_events(path: Path) -> list[str]:
    """The event lines written so far (empty when the file does not exist yet)."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def wait_for_event(path: Path, prefix: str, *, timeout: float = 5.0, interval: float = 0.02) -> str:
    """Poll `path` until a line starting with `prefix` appears; return that line.

    Blocking (uses `time.sleep`): call it from sync code, or via
    `anyio.to_thread.run_sync` from async tests.

    Raises:
        TimeoutError: No such line within `timeout` seconds; the message lists what was seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        for line in read_events(path):
            if line.startswith(prefix):
                return line
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no event starting with {prefix!r} in {path} after {timeout}s; saw {read_events(path)}")
        time.sleep(interval)


def wait_for_events(path: Path, prefix: str, count: int, *, timeout: float = 20.0, interval: float = 0.02) -> list[str]:
    """Poll `path` until `count` lines start with `prefix`; return them.

    Blocking, like `wait_for_event`: call it via `anyio.to_thread.run_sync` from async tests.

    Raises:
        TimeoutError: Fewer such lines within `timeout` seconds; the message lists what was seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in read_events(path) if line.startswith(prefix)]
        if len(found) >= count:
            return found
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"{len(found)} of {count} events starting with {prefix!r} in {path} after {timeout}s; "
                f"saw {read_events(path)}"
            )
        time.sleep(interval)


def wait_process_gone(pid: int, *, timeout: float = 30.0, interval: float = 0.01) -> None:
    """Poll (bounded) until no process has ``pid`` any more (it exited and its parent reaped it).

    Raises:
        TimeoutError: It is still there after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"process {pid} is still there after {timeout}s")
        time.sleep(interval)


def exit_served() -> None:
    """End a test server process that has finished serving, without tearing its heap down.

    The SDK leaves a large heap: Python's own teardown of it at exit takes a few hundred
    milliseconds, and every test waits that long for each of its servers to stop. A server
    that has returned from serving has nothing left to clean up (the fault server closes its
    events file after each line), so its output is flushed and the process ends with status 0.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can be said
            stream.flush()
    os._exit(0)
