"""What starting the orchestrator costs: importing the command line, and ``serve`` up to its first tools/list.

Run from the repository root::

    python -m bench.startup [--rounds 11] [--out bench/results/startup.json]

Two figures, each the median of ``--rounds`` runs after one warm-up run (page cache, bytecode):

- **import**: the cumulative ``-X importtime`` of ``import orchestrator.cli`` in a fresh
  ``python -c`` (what every command, ``--help`` included, pays before it parses an argument);
- **serve**: the CPU (user + system, all threads) of ``python -m orchestrator serve`` over stdio,
  from its launch until it has answered the first ``tools/list``, read from ``/proc/<pid>/stat``
  the moment the answer arrives. The config has one stdio server (the fault server,
  ``python -m tests.fakes.fault_server``) and no workflows, tracing off; the state database is
  migrated by the warm-up, so every counted run finds it current. The downstream server's own CPU
  is not counted (it is another process). Wall time to that answer is reported beside it.

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
from pathlib import Path
from typing import IO, Any

from tests.fakes import REPO_ROOT, fault_server_argv

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
        assert process.stdout is not None
        try:
            client = {"name": "bench", "version": "0"}
            hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": client}
            _send(process.stdin, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
            _answer(process.stdout, 1)
            _send(process.stdin, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            _send(process.stdin, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
            listed = _answer(process.stdout, 2)
            cpu, wall = _cpu_seconds(process.pid), time.perf_counter() - started
        finally:
            process.stdin.close()
            process.wait(30)
    tools = len(listed.get("result", {}).get("tools", []))
    if tools == 0:
        raise RuntimeError(f"tools/list answered {listed}; the log:\n{log.read_text()[-2000:]}")
    return cpu, wall, tools


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
    parser.add_argument("--out", type=Path, help="also write the report here as JSON")
    args = parser.parse_args()
    report = _measure(args.rounds)
    print(
        f"{report['rounds']} rounds (medians): import orchestrator.cli {report['import_cli_ms']:g} ms (-X importtime "
        f"cumulative); serve to first tools/list {report['serve_cpu_ms']:g} ms CPU, {report['serve_wall_ms']:g} ms wall"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
