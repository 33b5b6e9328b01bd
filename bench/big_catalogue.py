"""A 10,000-tool catalogue: ``tools/list`` through the aggregator against the same list direct, and memory.

Run from the repository root::

    python -m bench.big_catalogue [--tools 10000] [--rounds 15] [--out bench/results/big_catalogue.json]

One stdio server (``bench._many_tools_server``: the bundled snapshot's 184 real tool definitions,
cycled and numbered) lists ``--tools`` tools. The SDK client (``mcp.Client``) lists them:

- **direct**: from the server itself (what any SDK server spends answering, every time);
- **proxied**: through ``orchestrator serve`` (stdio) with that server behind it (``prefix``
  on, so every name is rewritten).

Both connections are opened and warmed up first; each round lists once on each, in alternating
order. The report gives the median wall time of each (client-side, parsing included), their
ratio (the budget: at most 0.5), the CPU the aggregator spent per list, and the aggregator's
resident memory (RSS) after the rounds (the budget: at most 150 MB).
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
from typing import Any

import anyio
import psutil
from mcp import Client, StdioServerParameters

from tests.fakes import REPO_ROOT

RATIO_BUDGET = 0.5
RSS_BUDGET_MB = 150.0


def _server_argv(tools: int) -> list[str]:
    return ["-m", "bench._many_tools_server", "--tools", str(tools)]


def _write_config(directory: Path, tools: int) -> Path:
    config = directory / "orchestrator.yaml"
    server = {"command": sys.executable, "args": _server_argv(tools), "cwd": str(REPO_ROOT)}
    config.write_text(json.dumps({"servers": {"many": server}}))
    return config


def _aggregator_process(client_pid: int) -> psutil.Process:
    """The ``orchestrator serve`` child of this process (the SDK client spawned it)."""
    for child in psutil.Process(client_pid).children(recursive=True):
        if "orchestrator" in " ".join(child.cmdline()):
            return child
    raise RuntimeError("the aggregator process was not found")


async def _timed_list(client: Client, expected: int) -> float:
    started = time.perf_counter()
    listed = await client.list_tools()
    took = time.perf_counter() - started
    if len(listed.tools) != expected:
        raise RuntimeError(f"listed {len(listed.tools)} tools, expected {expected}")
    return took


async def run(tools: int, rounds: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ORCHESTRATOR_"))}
    direct_params = StdioServerParameters(command=sys.executable, args=_server_argv(tools), cwd=str(REPO_ROOT), env=env)
    with tempfile.TemporaryDirectory() as work:
        config = _write_config(Path(work), tools)
        args = ["-m", "orchestrator", "serve", "-c", str(config)]
        # State in the temp directory: the bench must not touch a user's pins.
        proxied_env = {**env, "ORCHESTRATOR_STATE_DIR": work}
        proxied_params = StdioServerParameters(command=sys.executable, args=args, cwd=str(REPO_ROOT), env=proxied_env)
        async with Client(direct_params) as direct, Client(proxied_params) as proxied:
            expected = tools + 1  # and echo
            await _timed_list(direct, expected)
            await _timed_list(proxied, expected)  # waits for the server, builds what is served
            aggregator = _aggregator_process(os.getpid())
            times: dict[str, list[float]] = {"direct": [], "proxied": []}
            cpu_before = aggregator.cpu_times()
            for round_index in range(rounds):
                order = [("direct", direct), ("proxied", proxied)]
                for name, client in order if round_index % 2 == 0 else reversed(order):
                    times[name].append(await _timed_list(client, expected))
            cpu_after = aggregator.cpu_times()
            rss_mb = aggregator.memory_info().rss / 2**20
    p50 = {name: statistics.median(values) for name, values in times.items()}
    cpu_per_list = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) / rounds
    return {
        "tools": tools,
        "rounds": rounds,
        "direct_p50_s": round(p50["direct"], 4),
        "proxied_p50_s": round(p50["proxied"], 4),
        "ratio": round(p50["proxied"] / p50["direct"], 3),
        "ratio_budget": RATIO_BUDGET,
        "aggregator_cpu_per_list_s": round(cpu_per_list, 4),
        "aggregator_rss_mb": round(rss_mb, 1),
        "rss_budget_mb": RSS_BUDGET_MB,
        "cores": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="tools/list of a big catalogue, through the aggregator and direct")
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    report = anyio.run(run, args.tools, args.rounds)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
