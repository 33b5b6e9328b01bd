"""Helpers for end-to-end tests: configs on disk, the aggregator as a real subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.fakes import REPO_ROOT, fault_server_argv, fault_server_command, wait_for_events

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
    from pathlib import Path

    from anyio.abc import Process

__all__ = [
    "REPO_ROOT",
    "Notifications",
    "ProcessLog",
    "aggregator_command",
    "aggregator_params",
    "events_seen",
    "fault_entry",
    "http_aggregator",
    "http_fault_server",
    "logged_process",
    "served_process",
    "write_config",
]


class Notifications:
    """A client's ``message_handler`` that counts the notifications of one type it receives."""

    def __init__(self, kind: type[object], matches: Callable[[Any], bool] = lambda _message: True) -> None:
        self._kind = kind
        self._matches = matches
        self.count = 0
        self._arrived = anyio.Event()

    async def __call__(self, message: object) -> None:
        if isinstance(message, self._kind) and self._matches(message):
            self.count += 1
            self._arrived.set()
            self._arrived = anyio.Event()

    async def reach(self, count: int, timeout: float = 30.0) -> None:
        """Wait (bounded) until ``count`` have arrived in all."""
        with anyio.fail_after(timeout):
            while self.count < count:
                await self._arrived.wait()


async def events_seen(path: Path, prefix: str, count: int = 1, *, timeout: float = 20.0) -> list[str]:
    """Wait (bounded) until ``count`` lines of a fault server's events file start with ``prefix``.

    Raises:
        TimeoutError: Fewer such lines within ``timeout`` seconds; the message lists what was seen.
    """
    return await anyio.to_thread.run_sync(partial(wait_for_events, path, prefix, count, timeout=timeout))


def fault_entry(*options: str, env: Mapping[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """A config entry that starts the fault server with ``options``."""
    entry: dict[str, Any] = {
        "command": sys.executable,
        "args": fault_server_argv(*options),
        "cwd": str(REPO_ROOT),
    }
    if env:
        entry["env"] = dict(env)
    entry.update(extra)
    return entry


def write_config(directory: Path, servers: Mapping[str, Any], **sections: Any) -> Path:
    """Write an ``orchestrator.yaml`` (JSON is valid YAML) and return its path."""
    path = directory / "orchestrator.yaml"
    # Not ASCII-escaped: YAML reads a JSON surrogate pair escape as two lone surrogates.
    path.write_text(json.dumps({"servers": dict(servers), **sections}, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def _child_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def aggregator_params(config: Path, *args: str, env: Mapping[str, str] | None = None) -> StdioServerParameters:
    """Parameters that run ``orchestrator serve`` over stdio on ``config``."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "orchestrator", "serve", "-c", str(config), *args],
        cwd=str(REPO_ROOT),
        env=_child_env(env),
    )


class ProcessLog:
    """What a served process has written to stderr so far, and a way to wait for a line of it."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.text = ""
        self.ended = False
        self._grew = anyio.Event()

    def end(self) -> None:
        """The process closed its stderr (it exited): nothing more will be logged."""
        self.ended = True
        self._grew.set()

    def add(self, chunk: bytes) -> None:
        """Record a chunk of stderr and wake whoever waits for it."""
        self.text += chunk.decode(errors="replace")
        self._grew.set()
        self._grew = anyio.Event()

    async def wait_for(self, pattern: str, *, after: int = 0, timeout: float = 20.0) -> re.Match[str]:
        """The first match of ``pattern`` in the log from offset ``after`` on, waiting (bounded) for it.

        Raises:
            TimeoutError: No match within ``timeout`` seconds, or the process ended without one
                (the message shows the log's end).
        """
        compiled = re.compile(pattern)
        with anyio.move_on_after(timeout):
            while (match := compiled.search(self.text, after)) is None and not self.ended:
                await self._grew.wait()
            if match is not None:
                return match
        why = "the process ended" if self.ended else f"{timeout}s passed"
        raise TimeoutError(f"{pattern!r} was not logged ({why}); the log ends:\n{self.text[-3000:]}")


@asynccontextmanager
async def running_process(
    command: Sequence[str | Path], *, env: Mapping[str, str] | None = None
) -> AsyncGenerator[ProcessLog, None]:
    """Start a process in a session of its own; yield its log, its stderr read into it all along.

    Its stderr keeps being read into the log (a full pipe would block it); at the end it gets
    SIGTERM, then, after 10 s, SIGKILL for its whole process group.
    """
    process = await anyio.open_process(
        [str(part) for part in command],
        cwd=str(REPO_ROOT),
        env=_child_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stderr is not None
    stderr = process.stderr
    log = ProcessLog(process)

    async def drain() -> None:
        async for chunk in stderr:
            log.add(chunk)
        log.end()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            try:
                yield log
            finally:
                tg.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            with anyio.move_on_after(10):
                await process.wait()
            if process.returncode is None:
                os.killpg(process.pid, signal.SIGKILL)
                await process.wait()


@asynccontextmanager
async def logged_process(
    command: Sequence[str | Path], pattern: str, *, env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> AsyncGenerator[tuple[re.Match[str], ProcessLog], None]:
    """Start a server process (``running_process``); yield the ``pattern`` match from its stderr, and its log."""
    async with running_process(command, env=env) as log:
        try:
            match = await log.wait_for(pattern, timeout=timeout)
        except TimeoutError:
            pytest.fail(f"{command} did not log {pattern!r}:\n{log.text[-4000:]}", pytrace=False)
        yield match, log


@asynccontextmanager
async def served_process(
    command: Sequence[str | Path], pattern: str, *, env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> AsyncGenerator[tuple[re.Match[str], Process], None]:
    """Start a server process; yield the ``pattern`` match from its stderr, and the process (see ``logged_process``)."""
    async with logged_process(command, pattern, env=env, timeout=timeout) as (match, log):
        yield match, log.process


def aggregator_command(config: Path, *args: str, host: str = "127.0.0.1") -> list[str]:
    """``orchestrator serve --transport http --port 0`` on ``config``."""
    command = [sys.executable, "-m", "orchestrator", "serve", "-c", str(config)]
    return [*command, "--transport", "http", "--host", host, "--port", "0", *args]


@asynccontextmanager
async def http_aggregator(
    config: Path, *args: str, env: Mapping[str, str] | None = None, host: str = "127.0.0.1"
) -> AsyncGenerator[str, None]:
    """Run ``orchestrator serve --transport http --port 0``; yield its endpoint URL."""
    command = aggregator_command(config, *args, host=host)
    async with served_process(command, r"listening on (\S+)", env=env) as (match, _process):
        yield match.group(1)


@asynccontextmanager
async def http_fault_server(
    *options: str, env: Mapping[str, str] | None = None
) -> AsyncGenerator[tuple[str, Process], None]:
    """Run the fault server over streamable HTTP on a free port; yield its URL and process."""
    command = fault_server_command("--transport", "http", "--port", "0", *options)
    async with served_process(command, r"LISTENING (\d+)", env=env) as (match, process):
        yield f"http://127.0.0.1:{match.group(1)}/mcp", process


@asynccontextmanager
async def bearer_client(url: str, token: str, **client_options: Any) -> AsyncGenerator[Client, None]:
    """An SDK client of the HTTP endpoint ``url`` that sends ``token`` as its bearer credential."""
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http_client,
        Client(streamable_http_client(url, http_client=http_client), **client_options) as client,
    ):
        yield client


def audit_records(config: Path) -> list[dict[str, Any]]:
    """Every audit record of ``config``'s state database, as ``orchestrator audit --json`` prints them."""
    completed = subprocess.run(
        [sys.executable, "-m", "orchestrator", "audit", "-c", str(config), "--json", "--limit", "1000"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]
