"""A real Redis server for tests: Debian's ``redis-server``, on a free loopback port in a temporary folder.

It keeps nothing on disk (``--save ''``, no append-only file) and asks for a password, so every
test that uses it speaks to Redis as a deployment with one does. Ready is when the server says
so on its log (standard output), read line by line: no polling. `.ci/run` installs the package.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Generator

__all__ = ["REDIS_PASSWORD", "RedisServer", "redis_server_binary", "running_redis"]

REDIS_PASSWORD = "s3cret-redis-Pa55word"
"""The password every test server asks for: a test looks for it where it must never be."""

_READY = "Ready to accept connections"


def redis_server_binary() -> str:
    """Where ``redis-server`` is; outside CI, skips the test when it is not installed.

    Raises:
        RuntimeError: It is not installed and this is CI (which installs it: a missing one is a fault).
    """
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if Path(found).exists():
        return found
    if os.environ.get("CI"):
        raise RuntimeError("redis-server is not installed (apt-get install redis-server; .ci/run does it)")
    pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run does it)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class RedisServer:
    """A running test server.

    Attributes:
        port: Its port on 127.0.0.1.
        url: ``redis://:PASSWORD@127.0.0.1:PORT/0``.
        process: Its process.
    """

    port: int
    url: str
    process: subprocess.Popen[str]


@contextmanager
def running_redis(port: int | None = None, *, timeout: float = 30.0) -> Generator[RedisServer, None, None]:
    """Start ``redis-server`` (on ``port``, else a free one); yields it once it is ready; stops it after.

    Raises:
        RuntimeError: It exited or did not get ready within ``timeout`` seconds (its log is in the message).
    """
    binary = redis_server_binary()
    folder = Path(tempfile.mkdtemp(prefix="orchestrator-redis-"))
    port = _free_port() if port is None else port
    argv = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(folder),
        "--save", "",
        "--appendonly", "no",
        "--requirepass", REDIS_PASSWORD,
        "--logfile", "",
        "--daemonize", "no",
    ]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=folder)
    drain: threading.Thread | None = None
    try:
        drain = _wait_ready(process, timeout)
        yield RedisServer(port, f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0", process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if drain is not None:
            drain.join(timeout=30)  # the pipe ends with the process
        if process.stdout is not None:
            process.stdout.close()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(process: subprocess.Popen[str], timeout: float) -> threading.Thread:
    """Read the server's log until it says it is ready; returns the thread that reads the rest.

    The rest is read so that a chatty server never blocks on a full pipe.
    """
    assert process.stdout is not None
    stdout = process.stdout
    lines: list[str] = []
    timer = _Killer(process, timeout)
    try:
        for line in stdout:
            lines.append(line)
            if _READY in line:
                break
        else:
            raise RuntimeError("redis-server exited before it was ready:\n" + "".join(lines))
    finally:
        timer.cancel()
    if timer.fired:
        raise RuntimeError(f"redis-server was not ready in {timeout:g} s:\n" + "".join(lines))
    drain = threading.Thread(target=stdout.read, daemon=True)
    drain.start()
    return drain


class _Killer:
    """Kills a process that takes longer than ``timeout`` seconds (a blocking read then ends)."""

    def __init__(self, process: subprocess.Popen[str], timeout: float) -> None:
        self.fired = False
        self._timer = threading.Timer(timeout, self._fire, args=(process,))
        self._timer.daemon = True
        self._timer.start()

    def _fire(self, process: subprocess.Popen[str]) -> None:
        self.fired = True
        process.kill()

    def cancel(self) -> None:
        self._timer.cancel()
