"""What starting the orchestrator costs: importing the command line, and ``serve`` up to its first tools/list.

Run from the repository root::

    python -m bench.startup [--rounds 11] [--servers N] [--out bench/results/startup.json]

Two figures, each the median of ``--rounds`` runs after one warm-up run (page cache, bytecode):

- **import**: the cumulative ``-X importtime`` of ``import orchestrator.cli`` in a fresh
  ``python -c`` (what every command, ``--help`` included, pays before it parses an argument);
- **serve**: the CPU (user + system, all threads) of ``python -m orchestrator serve`` over stdio,
  from its launch until it has answered the first ``tools/list``, read from ``/proc/<pid>/stat``
  the moment the answer arrives. The config has one stdio server (the fault server,
  ``python -m tests.fakes.fault_server``) and no workflows, tracing off; the state database is
  migrated by the warm-up, so every counted run finds it current. The downstream server's own CPU
  is not counted (it is another process). Wall time to that answer is reported beside it.

With ``--servers N`` (N > 1) a third part, **fleet**, measures how long ``serve`` takes to list
the tools of N stdio servers (N fault servers), against what the machine can do at all. Each round
runs, in rotating order:

- **single**: one fault server started directly, its CPU and wall time to its ``tools/list``
  answer; the **floor** is N times that CPU over the cores (``os.sched_getaffinity``): N servers
  cannot all be listening sooner;
- **direct**: N fault servers started at once by this client, wall time until the last one has
  answered ``tools/list`` (what a client starting them itself gets), and their CPU;
- **serve**: ``serve`` with the N servers in its config, wall time from its launch until its first
  ``tools/list`` answer, which holds every server's tools (``serve`` waits for its servers'
  first listings before answering); its own CPU and its servers' (psutil) at that moment.

Every process of the fleet part starts in a session of its own, as the SDK's ``stdio_client``
and ``serve`` start stdio servers: with the kernel's autogroup scheduling, processes that share
a session share one CPU share, so on a busy machine servers started in this process's session
would get less CPU than the ones ``serve`` starts.

The client speaks JSON-RPC over the pipes itself (``initialize``, then ``tools/list``), so the
process measured is exactly the one started. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import psutil

from tests.fakes import REPO_ROOT, fault_server_argv, fault_server_command

if TYPE_CHECKING:
    from collections.abc import Callable

FLEET_BUDGET = 1.1
"""serve's wall time to all tools listed, over the floor (issue 17)."""
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_CUMULATIVE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \|\s?(\S+)\s*$", re.MULTILINE)


def _environment(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "OTEL_"))}
    return env | {"XDG_STATE_HOME": str(state), "PYTHONPATH": str(REPO_ROOT)}


def _import_ms(env: dict[str, str]) -> float:
    """The cumulative import time of ``orchestrator.cli`` in a fresh interpreter, in ms."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import orchestrator.cli"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    for cumulative, module in _CUMULATIVE.findall(done.stderr):
        if module == "orchestrator.cli":
            return int(cumulative) / 1000
    raise RuntimeError(f"no import line for orchestrator.cli:\n{done.stderr[-2000:]}")


def _send(pipe: IO[bytes], message: dict[str, Any]) -> None:
    pipe.write(json.dumps(message).encode() + b"\n")
    pipe.flush()


def _start_listing(process: subprocess.Popen[bytes]) -> None:
    """Send ``initialize`` (the 2025-11-25 handshake); :func:`_finish_listing` reads on."""
    assert process.stdin is not None
    client = {"name": "bench", "version": "0"}
    hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": client}
    _send(process.stdin, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})


def _finish_listing(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Read the ``initialize`` answer, send ``initialized`` and ``tools/list``, return its answer."""
    assert process.stdin is not None
    assert process.stdout is not None
    _answer(process.stdout, 1)
    _send(process.stdin, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    _send(process.stdin, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    return _answer(process.stdout, 2)


def _tool_count(listed: dict[str, Any], log: Path) -> int:
    tools = len(listed.get("result", {}).get("tools", []))
    if tools == 0:
        raise RuntimeError(f"tools/list answered {listed}; the log:\n{log.read_text()[-2000:]}")
    return tools


def _answer(pipe: IO[bytes], request_id: int) -> dict[str, Any]:
    while line := pipe.readline():
        message: dict[str, Any] = json.loads(line)
        if message.get("id") == request_id:
            return message
    raise RuntimeError("the orchestrator closed stdout before answering")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` so far (all its threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _serve_once(config: Path, env: dict[str, str], log: Path) -> tuple[float, float, int]:
    """One ``serve``: (CPU seconds, wall seconds, tools listed) at the first tools/list answer."""
    with log.open("wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "serve", "-c", str(config)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        assert process.stdin is not None
        try:
            _start_listing(process)
            listed = _finish_listing(process)
            cpu, wall = _cpu_seconds(process.pid), time.perf_counter() - started
        finally:
            process.stdin.close()
            process.wait(30)
    return cpu, wall, _tool_count(listed, log)


def _psutil_cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        times = process.cpu_times()
        total += times.user + times.system
    return total


def _direct_fleet(count: int, env: dict[str, str], log: Path) -> tuple[float, float, int]:
    """Start ``count`` fault servers at once and list each: (wall to the last answer, their CPU, tools)."""
    with log.open("ab") as stderr:
        started = time.perf_counter()
        processes = [
            subprocess.Popen(
                fault_server_command(),
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
            )
            for _ in range(count)
        ]

        def listing(process: subprocess.Popen[bytes]) -> tuple[int, float]:
            _start_listing(process)
            return _tool_count(_finish_listing(process), log), _cpu_seconds(process.pid)

        try:
            # A thread per server, so each is listed the moment it can answer.
            with ThreadPoolExecutor(max_workers=count) as pool:
                listings = list(pool.map(listing, processes))
            wall = time.perf_counter() - started
            tools = sum(tools for tools, _ in listings)
            cpu = sum(cpu for _, cpu in listings)
        finally:
            for process in processes:
                assert process.stdin is not None
                process.stdin.close()
            for process in processes:
                process.wait(30)
    return wall, cpu, tools


def _serve_fleet(config: Path, env: dict[str, str], log: Path) -> tuple[float, float, float, int]:
    """``serve`` with many servers to its first ``tools/list``: (wall, its CPU, its servers' CPU, tools)."""
    with log.open("ab") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "serve", "-c", str(config)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )
        assert process.stdin is not None
        try:
            _start_listing(process)
            listed = _finish_listing(process)
            wall = time.perf_counter() - started
            cpu = _cpu_seconds(process.pid)
            servers_cpu = _psutil_cpu(psutil.Process(process.pid).children(recursive=True))
        finally:
            process.stdin.close()
            process.wait(30)
    return wall, cpu, servers_cpu, _tool_count(listed, log)


def _measure_fleet(count: int, rounds: int) -> dict[str, Any]:
    """The fleet part (see the module's docstring): medians over ``rounds``, the order rotating."""
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as folder:
        env = _environment(Path(folder))
        config = Path(folder) / "orchestrator.yaml"
        entry = {"command": sys.executable, "args": fault_server_argv(), "cwd": str(REPO_ROOT)}
        config.write_text(json.dumps({"servers": {f"s{i}": entry for i in range(count)}}), encoding="utf-8")
        log = Path(folder) / "fleet.log"
        figures: dict[str, list[float]] = {
            name: []
            for name in (
                "single_wall",
                "single_cpu",
                "direct_wall",
                "direct_cpu",
                "serve_wall",
                "serve_cpu",
                "serve_servers_cpu",
            )
        }
        counted: dict[str, int] = {}

        def single() -> None:
            wall, cpu, counted["single"] = _direct_fleet(1, env, log)
            figures["single_wall"].append(wall)
            figures["single_cpu"].append(cpu)

        def direct() -> None:
            wall, cpu, counted["direct"] = _direct_fleet(count, env, log)
            figures["direct_wall"].append(wall)
            figures["direct_cpu"].append(cpu)

        def serve() -> None:
            wall, cpu, servers_cpu, counted["serve"] = _serve_fleet(config, env, log)
            figures["serve_wall"].append(wall)
            figures["serve_cpu"].append(cpu)
            figures["serve_servers_cpu"].append(servers_cpu)

        _direct_fleet(1, env, log)  # warm-up
        _serve_fleet(config, env, log)  # warm-up; migrates the state database, takes the pins in
        parts: list[Callable[[], None]] = [single, direct, serve]
        for round_ in range(rounds):
            shift = round_ % len(parts)
            for part in parts[shift:] + parts[:shift]:
                part()
    if counted["serve"] != count * counted["single"] or counted["direct"] != counted["serve"]:
        raise RuntimeError(f"tools listed differ: {counted} for {count} servers")
    ms = {name: statistics.median(values) * 1000 for name, values in figures.items()}
    floor = count * ms["single_cpu"] / cores
    floor_with_serve = (count * ms["single_cpu"] + ms["serve_cpu"]) / cores
    return {
        "servers": count,
        "cores": cores,
        "rounds": rounds,
        "tools_listed": counted["serve"],
        "single_server_cpu_ms": round(ms["single_cpu"], 1),
        "single_server_wall_ms": round(ms["single_wall"], 1),
        "floor_ms": round(floor, 1),
        "floor_with_serve_cpu_ms": round(floor_with_serve, 1),
        "direct_wall_ms": round(ms["direct_wall"], 1),
        "direct_servers_cpu_ms": round(ms["direct_cpu"], 1),
        "serve_wall_ms": round(ms["serve_wall"], 1),
        "serve_cpu_ms": round(ms["serve_cpu"], 1),
        "serve_servers_cpu_ms": round(ms["serve_servers_cpu"], 1),
        "serve_over_floor": round(ms["serve_wall"] / floor, 3),
        "serve_over_floor_with_serve_cpu": round(ms["serve_wall"] / floor_with_serve, 3),
        "serve_over_direct": round(ms["serve_wall"] / ms["direct_wall"], 3),
        "direct_over_floor": round(ms["direct_wall"] / floor, 3),
        "budget_over_floor": FLEET_BUDGET,
        "all_ms": {name: [round(value * 1000, 1) for value in values] for name, values in figures.items()},
    }


def _measure(rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        env = _environment(Path(folder))
        config = Path(folder) / "orchestrator.yaml"
        entry = {"command": sys.executable, "args": fault_server_argv(), "cwd": str(REPO_ROOT)}
        config.write_text(json.dumps({"servers": {"fault": entry}}), encoding="utf-8")
        log = Path(folder) / "serve.log"
        _import_ms(env)
        _serve_once(config, env, log)  # warm-up; migrates the state database
        imports: list[float] = []
        cpus: list[float] = []
        walls: list[float] = []
        tools = 0
        for _ in range(rounds):
            imports.append(_import_ms(env))
            cpu, wall, tools = _serve_once(config, env, log)
            cpus.append(cpu)
            walls.append(wall)
    return {
        "rounds": rounds,
        "import_cli_ms": round(statistics.median(imports), 1),
        "serve_cpu_ms": round(statistics.median(cpus) * 1000, 1),
        "serve_wall_ms": round(statistics.median(walls) * 1000, 1),
        "tools_listed": tools,
        "import_cli_all_ms": [round(value, 1) for value in imports],
        "serve_cpu_all_ms": [round(value * 1000, 1) for value in cpus],
        "serve_wall_all_ms": [round(value * 1000, 1) for value in walls],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Start-up cost: the command line's import, serve to first tools/list.")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument(
        "--servers", type=int, default=1, help="N > 1 adds the fleet part: serve with N stdio servers (default 1)"
    )
    parser.add_argument("--out", type=Path, help="also write the report here as JSON")
    args = parser.parse_args()
    report = _measure(args.rounds)
    print(
        f"{report['rounds']} rounds (medians): import orchestrator.cli {report['import_cli_ms']:g} ms (-X importtime "
        f"cumulative); serve to first tools/list {report['serve_cpu_ms']:g} ms CPU, {report['serve_wall_ms']:g} ms wall"
    )
    if args.servers > 1:
        fleet = report["fleet"] = _measure_fleet(args.servers, args.rounds)
        print(
            f"{fleet['servers']} stdio servers on {fleet['cores']} cores: one server "
            f"{fleet['single_server_cpu_ms']:g} ms CPU, floor {fleet['floor_ms']:g} ms; "
            f"direct {fleet['direct_wall_ms']:g} ms; serve to all {fleet['tools_listed']} tools listed "
            f"{fleet['serve_wall_ms']:g} ms ({fleet['serve_over_floor']:.2f}x the floor, budget {FLEET_BUDGET:g}x; "
            f"{fleet['serve_over_direct']:.2f}x direct), serve's own CPU {fleet['serve_cpu_ms']:g} ms"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
