"""Replicas of ``orchestrator serve --transport http`` behind a real HAProxy, on a real PostgreSQL.

Shared by the end-to-end tests (``tests/e2e/test_replicas.py``) and the benchmark
(``bench/replicas.py``): a fresh database on a running PostgreSQL server, N replicas of one
config started at once, and Debian's HAProxy in front (round robin, ``/readyz`` checks, a
2025-11-25 session kept on the replica that answered its ``initialize``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import httpx2
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.consent_flow import free_port
from tests.e2e.harness import ProcessLog, aggregator_command, logged_process, running_process

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

    from anyio.abc import Process

__all__ = [
    "HAPROXY",
    "LISTENING",
    "Cluster",
    "Replica",
    "fresh_database",
    "haproxy",
    "haproxy_config",
    "replica_cluster",
]

HAPROXY = "/usr/sbin/haproxy"
LISTENING = r"listening on http://127\.0\.0\.1:(\d+)/mcp"
CHECK_INTERVAL = "300ms"
"""How often HAProxy asks each replica's ``/readyz`` (short: tests wait for a dead one to be taken out)."""


@asynccontextmanager
async def fresh_database(server_url: str, prefix: str = "replicas") -> AsyncGenerator[str, None]:
    """A new, empty database on the PostgreSQL server at ``server_url``; its URL (dropped after)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    server = make_url(server_url)
    admin = create_async_engine(server.set(drivername="postgresql+asyncpg"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


@dataclass
class Replica:
    """One running ``orchestrator serve``."""

    index: int
    port: int
    log: ProcessLog

    @property
    def pid(self) -> int:
        """Its process id."""
        return self.log.process.pid

    def kill(self) -> None:
        """SIGKILL it: no drain, no goodbye (its stdio fault server sees its stdin close and exits)."""
        os.kill(self.pid, signal.SIGKILL)


@dataclass
class Cluster:
    """The replicas, the load balancer in front of them, and the database they share."""

    url: str
    replicas: list[Replica]
    haproxy: ProcessLog
    state: str

    def replica_with_pid(self, pid: int) -> Replica:
        """The replica whose process is ``pid``."""
        (found,) = [replica for replica in self.replicas if replica.pid == pid]
        return found

    async def kill(self, replica: Replica, *, wait: bool = True) -> None:
        """SIGKILL ``replica``, and wait (bounded) until HAProxy has taken it out of rotation."""
        after = len(self.haproxy.text)
        replica.kill()
        if wait:
            await self._out_of_rotation(replica, after)

    async def freeze(self, replica: Replica) -> None:
        """SIGSTOP ``replica`` (alive, answering nothing), and wait until HAProxy has taken it out."""
        after = len(self.haproxy.text)
        os.kill(replica.pid, signal.SIGSTOP)
        await self._out_of_rotation(replica, after)

    async def _out_of_rotation(self, replica: Replica, after: int) -> None:
        await self.haproxy.wait_for(rf"Server replicas/r{replica.index} is DOWN", after=after, timeout=20)


def haproxy_config(port: int, backends: list[int], *, check_interval: str = CHECK_INTERVAL) -> str:
    """HAProxy's config: round robin over ``backends``, ``/readyz`` checks, sessions kept on their replica."""
    servers = "\n".join(f"    server r{index} 127.0.0.1:{backend}" for index, backend in enumerate(backends))
    return f"""\
global
    log stderr format raw local0 info
    maxconn 2000

defaults
    mode http
    log global
    option httplog
    option dontlog-normal          # log only errors (a 5xx, a cut connection) and server state changes
    timeout connect 2s
    timeout client 120s
    timeout server 120s            # longer than the longest streamed (SSE) answer
    retries 3
    option redispatch 1            # a connection refused is retried on another replica

frontend mcp
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host 127.0.0.1
    http-check expect status 200
    # A 2025-11-25 session lives in the memory of the replica that answered its initialize:
    # remember which one handed out each Mcp-Session-Id, and send the session's requests there.
    stick-table type string len 64 size 100k expire 1h
    stick store-response res.hdr(mcp-session-id)
    stick match req.hdr(mcp-session-id)
    default-server check inter {check_interval} fall 2 rise 2
{servers}
"""


async def _until_accepting(port: int, process: Process, log: ProcessLog) -> None:
    """Wait (bounded, polling) until something accepts connections on ``port``.

    Raises:
        RuntimeError: HAProxy exited first.
        TimeoutError: Nothing accepted within 20 s.
    """
    with anyio.fail_after(20):
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"HAProxy exited with {process.returncode}:\n{log.text[-3000:]}")
            with contextlib.suppress(OSError):
                stream = await anyio.connect_tcp("127.0.0.1", port)
                await stream.aclose()
                return
            await anyio.sleep(0.05)


@asynccontextmanager
async def haproxy(
    folder: Path, backends: list[int], *, check_interval: str = CHECK_INTERVAL
) -> AsyncGenerator[tuple[str, ProcessLog], None]:
    """HAProxy in the foreground on a free loopback port; its MCP URL and its log.

    Raises:
        RuntimeError: Its config does not check, or it exited before accepting connections.
    """
    port = free_port()
    config = folder / "haproxy.cfg"
    config.write_text(haproxy_config(port, backends, check_interval=check_interval), encoding="utf-8")
    checked = await anyio.run_process([HAPROXY, "-c", "-f", str(config)], check=False)
    if checked.returncode != 0:
        raise RuntimeError((checked.stdout + checked.stderr).decode())
    async with running_process([HAPROXY, "-f", str(config), "-db"]) as log:
        await _until_accepting(port, log.process, log)
        yield f"http://127.0.0.1:{port}/mcp", log


async def _ready(port: int) -> None:
    """Wait (bounded, polling) until replica ``port`` says it is ready (its downstream is up)."""
    async with httpx2.AsyncClient(timeout=5) as http:
        with anyio.fail_after(30):
            while True:
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
                await anyio.sleep(0.05)


@asynccontextmanager
async def replica_cluster(
    folder: Path, config: Path, count: int, state: str, *, check_interval: str = CHECK_INTERVAL
) -> AsyncGenerator[Cluster, None]:
    """``count`` replicas of ``serve --transport http`` on ``config``, started at once, behind HAProxy.

    ``state`` is the URL of the database named in ``config`` (the cluster reports it); HAProxy's
    config goes in ``folder``.
    """
    replicas: dict[int, Replica] = {}
    all_started = anyio.Event()
    stop = anyio.Event()

    async def replica(index: int) -> None:
        # All start at once on a database no one has migrated yet, as in a deployment.
        async with logged_process(aggregator_command(config), LISTENING, timeout=90) as (match, log):
            replicas[index] = Replica(index, int(match.group(1)), log)
            if len(replicas) == count:
                all_started.set()
            await stop.wait()

    async with anyio.create_task_group() as tg:
        for index in range(count):
            tg.start_soon(replica, index)
        try:
            with anyio.fail_after(120):
                await all_started.wait()
            ordered = [replicas[index] for index in range(count)]
            for each in ordered:
                await _ready(each.port)
            async with haproxy(folder, [each.port for each in ordered], check_interval=check_interval) as (
                url,
                haproxy_log,
            ):
                yield Cluster(url, ordered, haproxy_log, state)
        finally:
            stop.set()
