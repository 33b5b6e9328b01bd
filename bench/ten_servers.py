"""Start-up with ten stdio servers: ``orchestrator serve`` to a client seeing all their tools, vs the floor.

Run from the repository root::

    python -m bench.ten_servers [--servers 10] [--rounds 9] [--tree NAME=PATH ...] [--out FILE]

The floor is what the servers alone cost the machine: the sum of their single-server CPU
divided by the cores. A server's CPU is measured on its own (``python -m
tests.fakes.fault_server``, a low-level SDK server, spawned directly; the 2025-11-25 handshake
and one ``tools/list`` by a raw JSON-RPC client; user + system CPU of the process once the list
is answered, psutil). The servers are identical, so the sum is ``--servers`` times it.

Each **serve** run starts ``python -m orchestrator serve`` (stdio) over a config of ``--servers``
such servers (keys ``s0`` .. ``s9``, each with its own ``--name``) and, at once, sends
``initialize``, ``notifications/initialized`` and ``tools/list`` itself; while the list lacks
tools it waits for ``notifications/tools/list_changed`` and lists again. The figure is the wall
time from launching ``serve`` to the first list holding every server's tools. At that moment
it also reads the CPU of the aggregator and of all its children (psutil), and notes a timeline:
the first server's process start (psutil, clock-tick resolution), ``initialize`` answered (the
aggregator loaded and serving), and the first and last server ``ready`` (connected and listed,
from ``serve``'s log).

``--tree NAME=PATH`` (repeatable) runs ``serve`` from another checkout (``PYTHONPATH`` and
working directory ``PATH``): before/after comparisons in one run. The servers always come from
this checkout. Default: this checkout alone, as ``this``. Every tree gets its own state
database, warmed by one unmeasured run (pins taken, listings kept), so measured runs are a
normal start.

A round measures the single server once and each tree once, in an order rotated every round
(rotating interleaved rounds: a drift of the machine's speed falls on every side alike). The
report gives, per tree, medians of the wall time and of the per-round ratio wall / floor (each
round's own floor), and the CPU split. Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import psutil

from tests.fakes import REPO_ROOT, fault_server_argv

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

TARGET = 1.10
_TIMEOUT = 120.0
_HELLO = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}


class _Lines:
    """JSON-RPC messages from a pipe, one per line, read with a deadline."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._fd = pipe.fileno()
        self._buffer = bytearray()

    def next(self, deadline: float) -> dict[str, Any]:
        while (end := self._buffer.find(b"\n")) < 0:
            left = deadline - time.perf_counter()
            if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                raise TimeoutError("no message before the deadline")
            chunk = os.read(self._fd, 1 << 20)
            if not chunk:
                raise EOFError("the process closed its stdout")
            self._buffer += chunk
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return json.loads(line) if line.strip() else {}

    def answer(self, request_id: int, deadline: float, seen: list[str] | None = None) -> dict[str, Any]:
        """The response to ``request_id``; the methods of notifications met on the way go to ``seen``."""
        while True:
            message = self.next(deadline)
            if message.get("id") == request_id and "method" not in message:
                if "error" in message:
                    raise RuntimeError(f"request {request_id} failed: {message['error']}")
                return message["result"]
            if seen is not None and "method" in message and "id" not in message:
                seen.append(message["method"])


def _send(pipe: IO[bytes], message: dict[str, Any]) -> None:
    pipe.write(json.dumps(message).encode() + b"\n")
    pipe.flush()


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _children_cpu(process: psutil.Process) -> float:
    total = 0.0
    for child in process.children(recursive=True):
        try:
            total += _cpu(child)
        except psutil.NoSuchProcess:
            continue
    return total


def _close(process: subprocess.Popen[bytes]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _single(env: Mapping[str, str]) -> tuple[float, float, int]:
    """One server alone: (its CPU, wall to its tools/list answer, tools listed)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *fault_server_argv("--name", "single")],
        cwd=REPO_ROOT,
        env=dict(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        lines, deadline = _Lines(process.stdout), started + _TIMEOUT
        _send(process.stdin, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": _HELLO})
        lines.answer(1, deadline)
        _send(process.stdin, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _send(process.stdin, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        tools = len(lines.answer(2, deadline)["tools"])
        wall = time.perf_counter() - started
        cpu = _cpu(psutil.Process(process.pid))
    finally:
        _close(process)
    return cpu, wall, tools


@dataclass
class _Tree:
    """A checkout ``serve`` runs from, with its own state database."""

    name: str
    path: Path
    state: Path
    walls: list[float] = field(default_factory=lambda: list[float]())
    ratios: list[float] = field(default_factory=lambda: list[float]())
    own_cpus: list[float] = field(default_factory=lambda: list[float]())
    initialized_cpus: list[float] = field(default_factory=lambda: list[float]())
    children_cpus: list[float] = field(default_factory=lambda: list[float]())
    initialized: list[float] = field(default_factory=lambda: list[float]())
    lists: list[int] = field(default_factory=lambda: list[int]())
    spawned: list[float] = field(default_factory=lambda: list[float]())
    first_ready: list[float] = field(default_factory=lambda: list[float]())
    last_ready: list[float] = field(default_factory=lambda: list[float]())

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        return dict(base) | {"XDG_STATE_HOME": str(self.state), "PYTHONPATH": str(self.path)}


@dataclass(frozen=True, slots=True)
class _ServeRun:
    wall: float
    initialized: float
    initialized_cpu: float
    """The aggregator's CPU when it answered ``initialize``: loading itself and setting up."""
    own_cpu: float
    children_cpu: float
    lists: int
    spawned: float
    """From the launch to the first server's process starting."""
    first_ready: float
    """From the launch to the first server connected and listed (its ``ready`` log line)."""
    last_ready: float


def _serve(
    tree: _Tree, config: Path, base: Mapping[str, str], expected: int, log: Path, python: Sequence[str] = ()
) -> _ServeRun:
    """One ``serve``, timed to the first tools/list that holds ``expected`` tools.

    ``python`` goes between the interpreter and ``-m orchestrator`` (a profiler, say).
    """
    with log.open("wb") as stderr:
        launched, started = time.time(), time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, *python, "-m", "orchestrator", "serve", "-c", str(config)],
            cwd=tree.path,
            env=tree.env(base),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        lines, deadline = _Lines(process.stdout), started + _TIMEOUT
        # Written at once: the pipe holds them until serve reads its stdin.
        _send(process.stdin, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": _HELLO})
        _send(process.stdin, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _send(process.stdin, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        seen: list[str] = []
        lines.answer(1, deadline, seen)
        initialized = time.perf_counter() - started
        aggregator = psutil.Process(process.pid)
        loaded_cpu = _cpu(aggregator)
        request_id, lists = 2, 1
        while len(lines.answer(request_id, deadline, seen)["tools"]) < expected:
            while "notifications/tools/list_changed" not in seen:
                message = lines.next(deadline)
                if "method" in message and "id" not in message:
                    seen.append(message["method"])
            seen.clear()
            request_id, lists = request_id + 1, lists + 1
            _send(process.stdin, {"jsonrpc": "2.0", "id": request_id, "method": "tools/list"})
        wall = time.perf_counter() - started
        own, children = _cpu(aggregator), _children_cpu(aggregator)
        spawned = _first_child_started(aggregator)
    except (TimeoutError, EOFError) as exc:
        raise RuntimeError(f"{tree.name}: {exc}; the log ends:\n{log.read_text()[-3000:]}") from exc
    finally:
        _close(process)
    ready = _ready_times(log, launched) or [wall]
    return _ServeRun(wall, initialized, loaded_cpu, own, children, lists, spawned, min(ready), max(ready))


def _first_child_started(process: psutil.Process) -> float:
    """Seconds from ``process``'s start to its first child's (clock-tick resolution, one clock for both)."""
    return min(child.create_time() for child in process.children()) - process.create_time()


_READY = re.compile(rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO \S+: server '[^']*' ready:", re.MULTILINE)


def _ready_times(log: Path, launched: float) -> list[float]:
    """Seconds from the launch to each server's ``ready`` line in the log (millisecond resolution)."""
    times: list[float] = []
    for stamp in _READY.findall(log.read_bytes()):
        clock = datetime.strptime(stamp.decode(), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        times.append(clock - launched)
    return times


def _config(folder: Path, servers: int) -> Path:
    entries = {
        f"s{i}": {"command": sys.executable, "args": fault_server_argv("--name", f"s{i}"), "cwd": str(REPO_ROOT)}
        for i in range(servers)
    }
    config = folder / "orchestrator.yaml"
    config.write_text(json.dumps({"servers": entries}), encoding="utf-8")
    return config


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    cores = _cores()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "OTEL_", "PYTHON"))}
        trees = [
            _Tree(name, path, folder / f"state-{index}")
            for index, (name, path) in enumerate(args.tree or [("this", REPO_ROOT)])
        ]
        config = _config(folder, args.servers)
        log = folder / "serve.log"
        _, _, per_server = _single(base)  # warm-up: page cache, bytecode
        expected = per_server * args.servers
        for tree in trees:  # warm-up: pins taken, listings kept
            _serve(tree, config, base, expected, log)
        if args.profile is not None:
            run = _serve(trees[0], config, base, expected, log, ["-m", "cProfile", "-o", str(args.profile.resolve())])
            print(f"profiled {trees[0].name}: all listed after {run.wall:.2f} s -> {args.profile}", file=sys.stderr)
        if args.rounds == 0:
            return {}
        singles: list[float] = []
        single_walls: list[float] = []
        sides: list[_Tree | None] = [None, *trees]  # None: the single server
        for round_ in range(args.rounds):
            shift = round_ % len(sides)
            order = sides[shift:] + sides[:shift]
            done: dict[str, _ServeRun] = {}
            cpu = 0.0
            for side in order:
                if side is None:
                    cpu, wall, _ = _single(base)
                    singles.append(cpu)
                    single_walls.append(wall)
                else:
                    done[side.name] = _serve(side, config, base, expected, log)
            floor = cpu * args.servers / cores
            for tree in trees:
                run = done[tree.name]
                tree.walls.append(run.wall)
                tree.ratios.append(run.wall / floor)
                tree.own_cpus.append(run.own_cpu)
                tree.initialized_cpus.append(run.initialized_cpu)
                tree.children_cpus.append(run.children_cpu)
                tree.initialized.append(run.initialized)
                tree.lists.append(run.lists)
                tree.spawned.append(run.spawned)
                tree.first_ready.append(run.first_ready)
                tree.last_ready.append(run.last_ready)
            print(
                f"round {round_ + 1}/{args.rounds}: floor {floor:.2f}s; "
                + ", ".join(f"{t.name} {t.walls[-1]:.2f}s ({t.ratios[-1]:.2f}x)" for t in trees),
                file=sys.stderr,
                flush=True,
            )
    single_cpu = statistics.median(singles)
    floor = single_cpu * args.servers / cores
    return {
        "servers": args.servers,
        "server": "python -m tests.fakes.fault_server (stdio)",
        "tools_per_server": per_server,
        "cores": cores,
        "rounds": args.rounds,
        "target": TARGET,
        "single_server_cpu_s": round(single_cpu, 3),
        "single_server_wall_s": round(statistics.median(single_walls), 3),
        "floor_s": round(floor, 3),
        "trees": {
            tree.name: {
                "path": str(tree.path),
                "all_listed_s": round(statistics.median(tree.walls), 3),
                "ratio_to_floor": round(statistics.median(tree.ratios), 3),
                "first_server_started_s": round(statistics.median(tree.spawned), 3),
                "initialize_answered_s": round(statistics.median(tree.initialized), 3),
                "first_server_ready_s": round(statistics.median(tree.first_ready), 3),
                "last_server_ready_s": round(statistics.median(tree.last_ready), 3),
                "aggregator_cpu_s": round(statistics.median(tree.own_cpus), 3),
                "aggregator_cpu_at_initialize_s": round(statistics.median(tree.initialized_cpus), 3),
                "children_cpu_s": round(statistics.median(tree.children_cpus), 3),
                "cpu_floor_s": round(
                    (statistics.median(tree.own_cpus) + statistics.median(tree.children_cpus)) / cores, 3
                ),
                "lists_needed": max(tree.lists),
                "all_listed_all_s": [round(v, 3) for v in tree.walls],
                "ratio_all": [round(v, 3) for v in tree.ratios],
            }
            for tree in trees
        },
        "single_server_cpu_all_s": [round(v, 3) for v in singles],
    }


def _tree(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not Path(path).is_dir():
        raise argparse.ArgumentTypeError(f"expected NAME=PATH with PATH a checkout, got {text!r}")
    return name, Path(path).resolve()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="serve with N stdio servers: all tools listed, vs the CPU floor.")
    parser.add_argument("--servers", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--tree", type=_tree, action="append", help="NAME=PATH: run serve from this checkout")
    parser.add_argument("--out", type=Path, help="also write the report here as JSON")
    parser.add_argument("--profile", type=Path, help="first: one serve of the first tree under cProfile, to this file")
    args = parser.parse_args(argv)
    report = _measure(args)
    if not report:
        return
    print(
        f"{report['servers']} stdio servers, {report['cores']} cores, {report['rounds']} rounds (medians): "
        f"one server {report['single_server_cpu_s']:g} s CPU; floor {report['floor_s']:g} s"
    )
    for name, tree in report["trees"].items():
        print(
            f"  {name}: all tools listed {tree['all_listed_s']:g} s = {tree['ratio_to_floor']:.2f}x the floor "
            f"(target {TARGET:.2f}x); first server started {tree['first_server_started_s']:g} s, initialize "
            f"answered {tree['initialize_answered_s']:g} s, servers ready {tree['first_server_ready_s']:g}"
            f"-{tree['last_server_ready_s']:g} s; CPU: aggregator {tree['aggregator_cpu_s']:g} s "
            f"({tree['aggregator_cpu_at_initialize_s']:g} s by initialize), servers {tree['children_cpu_s']:g} s "
            f"(their sum / cores {tree['cpu_floor_s']:g} s)"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
