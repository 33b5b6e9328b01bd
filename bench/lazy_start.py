"""What a lazy server's first call costs through the aggregator, against the server's own cold start.

Run from the repository root::

    python -m bench.lazy_start [--rounds 15] [--out bench/results/lazy_start.json]

Both sides start the same stdio server (the fault server, ``python -m tests.fakes.fault_server``)
and call its ``pid`` tool once with the SDK client (``mcp.Client``):

- **cold start**: spawn the server, ``initialize`` (``server/discover``), first call answered,
  measured directly with the client;
- **lazy first call**: the same server configured ``start: lazy`` behind ``orchestrator serve``
  (stdio), cold (not running; its listing kept in the state database), and one ``tools/call``
  through the aggregator: it starts the server, lists it, judges the listing against the pins,
  then sends the call.

Each round measures both, in alternating order; between rounds the lazy server is left to go
cold (``idle_timeout`` 0.3 s; the bench waits until its process is gone). The report gives
the median of each and their ratio; the budget is at most 1.10.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from mcp import Client, StdioServerParameters

from tests.fakes import REPO_ROOT, fault_server_argv, wait_process_gone

if TYPE_CHECKING:
    import mcp_types as types

BUDGET = 1.10
_IDLE_TIMEOUT = "0.3s"


def _pid(result: types.CallToolResult) -> int:
    if result.is_error or result.structured_content is None:
        raise RuntimeError(f"the pid call failed: {result}")
    return int(result.structured_content["pid"])


async def _cold_start(env: dict[str, str]) -> float:
    """Spawn -> initialize -> first call answered, directly."""
    params = StdioServerParameters(command=sys.executable, args=fault_server_argv(), cwd=str(REPO_ROOT), env=env)
    started = time.perf_counter()
    async with Client(params) as client:
        pid = _pid(await client.call_tool("pid", {}))
        took = time.perf_counter() - started
    await anyio.to_thread.run_sync(wait_process_gone, pid)
    return took


async def _lazy_first_call(client: Client) -> float:
    """One call to the cold lazy server through the aggregator; then wait until it is cold again."""
    started = time.perf_counter()
    pid = _pid(await client.call_tool("lazy__pid", {}))
    took = time.perf_counter() - started
    await anyio.to_thread.run_sync(wait_process_gone, pid)
    await anyio.sleep(0.1)  # the aggregator marks it cold once the process is reaped
    return took


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
    direct: list[float] = []
    lazy: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "OTEL_"))}
        env |= {"XDG_STATE_HOME": folder, "PYTHONPATH": str(REPO_ROOT)}
        config = Path(folder) / "orchestrator.yaml"
        entry = {
            "command": sys.executable,
            "args": fault_server_argv(),
            "cwd": str(REPO_ROOT),
            "start": "lazy",
            "idle_timeout": _IDLE_TIMEOUT,
        }
        config.write_text(json.dumps({"servers": {"lazy": entry}}), encoding="utf-8")
        serve = StdioServerParameters(
            command=sys.executable,
            args=["-m", "orchestrator", "serve", "-c", str(config)],
            cwd=str(REPO_ROOT),
            env=env,
        )
        # The first serve learns the listing (and keeps it); the second serves it cold.
        async with Client(serve) as learning:
            await _lazy_first_call(learning)
        async with Client(serve) as client:
            await client.list_tools()
            await _cold_start(env)  # warm-up (page cache, bytecode), not counted
            await _lazy_first_call(client)
            for round_ in range(args.rounds):
                if round_ % 2 == 0:
                    direct.append(await _cold_start(env))
                    lazy.append(await _lazy_first_call(client))
                else:
                    lazy.append(await _lazy_first_call(client))
                    direct.append(await _cold_start(env))
    direct_ms, lazy_ms = statistics.median(direct) * 1000, statistics.median(lazy) * 1000
    return {
        "server": "tests.fakes.fault_server (stdio)",
        "rounds": args.rounds,
        "cold_start_ms": round(direct_ms, 1),
        "lazy_first_call_ms": round(lazy_ms, 1),
        "ratio": round(lazy_ms / direct_ms, 3),
        "budget": BUDGET,
        "cold_start_all_ms": [round(value * 1000, 1) for value in direct],
        "lazy_first_call_all_ms": [round(value * 1000, 1) for value in lazy],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="A lazy server's first call through the aggregator vs its cold start.")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, help="also write the report here as JSON")
    args = parser.parse_args()
    report = anyio.run(_measure, args)
    print(
        f"{report['server']}, {report['rounds']} rounds: cold start {report['cold_start_ms']:g} ms, "
        f"lazy first call {report['lazy_first_call_ms']:g} ms, ratio {report['ratio']:.3f} (budget {BUDGET:.2f})"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
