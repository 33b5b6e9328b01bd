"""``orchestrator serve --transport http --workers N``: N serving processes behind one port.

The supervisor binds the listening socket, then starts N workers, each a whole
``orchestrator serve`` (its own downstream servers, its own event loop) on that inherited
socket: the kernel spreads connections over them, so calls use every core. A worker sits at a
seat (``orchestrator.server.WorkerSeat``): its index, the socket, a lifeline pipe and a private
directory where the workers reach each other for the sessions and rounds one of them holds.

The supervisor forwards SIGTERM/SIGINT (stop: every worker drains, then exits) and SIGHUP
(reload), and starts a worker again when one dies, waiting longer each time it dies quickly.
If the supervisor itself is killed, the workers' lifelines close and they stop by themselves.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from orchestrator import telemetry
from orchestrator.server import WorkerSeat, bind_socket, write_consent_key

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

__all__ = ["WORKER_SEAT_OPTION", "supervise_workers"]

logger = logging.getLogger(__name__)

WORKER_SEAT_OPTION = "--worker-seat"
"""The hidden option a worker is started with (``WorkerSeat.encode``)."""

_READY_TIMEOUT = 120.0
"""Seconds a worker may take to listen (it imports, reads the config, opens the store)."""
_STOP_GRACE = 30.0
"""Seconds the workers get to drain after a stop, before they are killed."""
_QUICK_DEATH = 10.0
"""A worker that dies sooner than this after its start is restarted after a growing pause."""
_MAX_PAUSE = 30.0


@dataclass
class _Worker:
    index: int
    process: anyio.abc.Process
    lifeline: int
    started: float
    quick_deaths: int = 0


@dataclass
class _Supervisor:
    count: int
    argv: Sequence[str]
    listener: int
    directory: Path
    trace_file: Path | None = None
    workers: dict[int, _Worker] = field(default_factory=dict[int, _Worker])
    stopping: bool = False
    trace_files: list[Path] = field(default_factory=list[Path])

    def _environment(self, index: int) -> dict[str, str] | None:
        """A worker's environment: ours, with a trace file of its own when traces go to a file."""
        if self.trace_file is None:
            return None
        main = self.trace_file
        # Each start its own file: a restarted worker must not overwrite its predecessor's.
        own = main.with_name(f"{main.stem}.worker-{index}-{len(self.trace_files)}{main.suffix or '.json'}")
        self.trace_files.append(own)
        return {**os.environ, telemetry.FILE_ENV: str(own)}

    def merge_traces(self) -> None:
        """The workers' trace files, merged into the configured one once they have all stopped."""
        if self.trace_file is None or not self.trace_files:
            return
        try:
            telemetry.merge_jaeger_files([self.trace_file, *self.trace_files], self.trace_file)
        except (OSError, ValueError) as exc:
            logger.warning("tracing: could not merge the workers' trace files into %s: %s", self.trace_file, exc)
            return
        for merged in self.trace_files:
            merged.unlink(missing_ok=True)

    async def start(self, index: int, quick_deaths: int = 0) -> tuple[_Worker, int]:
        """Start worker ``index``; return it and the read end of its ready pipe."""
        lifeline_read, lifeline_write = os.pipe()
        ready_read, ready_write = os.pipe()
        seat = WorkerSeat(index, self.count, self.directory, self.listener, lifeline_read, ready_write)
        try:
            process = await anyio.open_process(
                [sys.executable, "-m", "orchestrator", *self.argv, WORKER_SEAT_OPTION, seat.encode()],
                stdin=None,
                stdout=None,
                stderr=None,
                env=self._environment(index),
                pass_fds=(self.listener, lifeline_read, ready_write),
                # Its own session: a terminal's Ctrl-C reaches the supervisor, which stops
                # the workers in order (and does not restart the ones that stopped).
                start_new_session=True,
            )
        finally:
            os.close(lifeline_read)
            os.close(ready_write)
        worker = _Worker(index, process, lifeline_write, anyio.current_time(), quick_deaths)
        self.workers[index] = worker
        return worker, ready_read

    async def watch(self, worker: _Worker, tg: anyio.abc.TaskGroup) -> None:
        """Wait for ``worker`` to exit; start it again unless the supervisor is stopping."""
        code = await worker.process.wait()
        with contextlib.suppress(OSError):
            os.close(worker.lifeline)
        if self.stopping:
            return
        lived = anyio.current_time() - worker.started
        quick = worker.quick_deaths + 1 if lived < _QUICK_DEATH else 0
        pause = min(_MAX_PAUSE, 0.5 * 2**quick) if quick else 0.0
        logger.warning("worker %d exited with code %s; starting it again in %.1f s", worker.index, code, pause)
        await anyio.sleep(pause)
        if self.stopping:
            return
        replacement, ready = await self.start(worker.index, quick)
        tg.start_soon(_report_back, worker.index, ready)
        tg.start_soon(self.watch, replacement, tg)

    def signal_all(self, signum: int) -> None:
        for worker in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.Signals(signum))

    async def stop(self) -> None:
        """Ask every worker to drain and exit; kill the ones still there after the grace."""
        self.stopping = True
        for worker in self.workers.values():
            with contextlib.suppress(OSError):
                os.close(worker.lifeline)
        with anyio.move_on_after(_STOP_GRACE, shield=True):
            for worker in self.workers.values():
                await worker.process.wait()
            return
        for worker in self.workers.values():
            if worker.process.returncode is None:
                logger.warning("worker %d did not stop in %.0f s; killing it", worker.index, _STOP_GRACE)
                worker.process.kill()
        with anyio.CancelScope(shield=True):
            for worker in self.workers.values():
                await worker.process.wait()


_SOCKET_PATH_ROOM = 100
"""A Unix socket's path must fit in 108 bytes (``sun_path``), with room for ``worker-N.sock``."""


def _private_directory() -> Path:
    """A fresh owner-only folder (mode 0700) for the workers' sockets, with a path short enough.

    In the temporary folder, unless its path is too long for a socket; then in ``/tmp``.
    """
    directory = Path(tempfile.mkdtemp(prefix="orchestrator-workers-"))
    if len(str(directory)) + len("/worker-00.sock") <= _SOCKET_PATH_ROOM or not Path("/tmp").is_dir():
        return directory
    directory.rmdir()
    return Path(tempfile.mkdtemp(prefix="orchestrator-workers-", dir="/tmp"))


async def _read_ready(ready: int) -> str | None:
    """The URL a worker says it listens on, or ``None`` if it exited first."""
    data = b""
    try:
        while not data.endswith(b"\n"):
            await anyio.wait_readable(ready)
            chunk = os.read(ready, 4096)
            if not chunk:
                return None
            data += chunk
    finally:
        os.close(ready)
    return data.decode().strip()


async def _report_back(index: int, ready: int) -> None:
    """Log when a restarted worker listens again."""
    if await _read_ready(ready) is not None:
        logger.info("worker %d is serving again", index)


async def supervise_workers(
    count: int,
    argv: Sequence[str],
    host: str,
    port: int,
    prepare: Callable[[], Awaitable[None]],
    trace_file: Path | None = None,
) -> int:
    """Serve with ``count`` workers until SIGTERM or SIGINT; the exit status.

    Args:
        count: How many workers.
        argv: The command line each worker runs (after ``python -m orchestrator``): this
            process's own, so they read the same config the same way.
        host: The bind address (already checked against the configured authentication).
        port: The TCP port (0 picks a free one).
        prepare: Run once before any worker starts: it migrates the state database, so the
            workers do not race to.
        trace_file: Where spans go when they go to a Jaeger JSON file: each worker writes its
            own, merged into this one at the end.
    """
    await prepare()
    listener = bind_socket(host, port)
    directory = _private_directory()
    logger.info("starting %d workers; their private sockets are in %s", count, directory)
    write_consent_key(directory)
    supervisor = _Supervisor(count, argv, listener.fileno(), directory, trace_file)
    try:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async with anyio.create_task_group() as tg:
                started = [await supervisor.start(index) for index in range(count)]
                urls: list[str | None] = []
                with anyio.move_on_after(_READY_TIMEOUT):
                    urls = [await _read_ready(ready) for _, ready in started]
                if len(urls) < count or None in urls:
                    print(f"orchestrator: a worker did not start (of {count})", file=sys.stderr, flush=True)
                    await supervisor.stop()
                    tg.cancel_scope.cancel()
                    return 1
                for worker, _ in started:
                    tg.start_soon(supervisor.watch, worker, tg)
                print(f"mcp-orchestrator listening on {urls[0]} ({count} workers)", file=sys.stderr, flush=True)
                async for signum in signals:
                    if signum == signal.SIGHUP:
                        logger.info("received SIGHUP; every worker reloads its config")
                        supervisor.signal_all(signal.SIGHUP)
                        continue
                    logger.info("received %s; stopping the workers", signal.Signals(signum).name)
                    break
                await supervisor.stop()
                tg.cancel_scope.cancel()
    finally:
        listener.close()
        shutil.rmtree(directory, ignore_errors=True)
        supervisor.merge_traces()
    return 0
