"""A 10,000-tool catalogue: ``tools/list`` through the aggregator against the same list direct, and memory.

Run from the repository root::

    python -m bench.big_catalogue [--tools 10000] [--rounds 15] [--fastmcp | --no-fastmcp]
                                  [--out bench/results/big_catalogue.json]

One stdio server (``bench._many_tools_server``: the bundled snapshot's 184 real tool definitions,
cycled and numbered) lists ``--tools`` tools. A list is timed on the wire, by a raw JSON-RPC
client over stdio (the 2025-11-25 handshake, then ``tools/list`` requests): from writing the
request to reading the last byte of its response. No client-side parsing is in the figure: an
SDK client spends as long again validating 10,000 tools, whoever sent them.

- **direct**: from the server itself (what an SDK server spends answering, every time);
- **proxied**: through ``orchestrator serve`` (stdio) with that server behind it (``prefix``
  on, so every name is rewritten);
- **fastmcp**: through FastMCP's proxy (``bench._fastmcp_proxy`` over stdio, one backend session)
  with the same server behind it, when FastMCP is installed (the ``bench`` extra) and
  ``--no-fastmcp`` is not given.

All are started and listed once first (the aggregator then has the catalogue); each round lists
once on each, the order rotating. The report gives the median of each, their ratio to direct
(the aggregator's budget: at most 0.5), the CPU each serving process spent per list, and the
resident memory (RSS) of each serving process after the rounds (the aggregator's budget: at
most 150 MB).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import psutil
from anyio.streams.buffered import BufferedByteReceiveStream

from tests.fakes import REPO_ROOT

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Mapping, Sequence

    from anyio.abc import Process

RATIO_BUDGET = 0.5
RSS_BUDGET_MB = 150.0
_LINE_LIMIT = 256 * 2**20  # one JSON-RPC message per line; a 10,000-tool list is ~10 MB


class RawPeer:
    """A JSON-RPC peer over a process's stdin/stdout, one message per line, no parsing but the id."""

    def __init__(self, process: Process) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self.process = process
        self._stdin = process.stdin
        self._stdout = BufferedByteReceiveStream(process.stdout)
        self._next_id = 0

    async def send(self, method: str, params: Mapping[str, Any] | None = None, *, notify: bool = False) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": dict(params or {})}
        if not notify:
            self._next_id += 1
            message["id"] = self._next_id
        await self._stdin.send(json.dumps(message).encode() + b"\n")

    async def response(self) -> bytes:
        """The next line that answers the last request (notifications and logs are skipped)."""
        marker = f'"id":{self._next_id}'.encode()
        while True:
            line = await self._stdout.receive_until(b"\n", _LINE_LIMIT)
            if marker in line.replace(b" ", b"") and (b'"result"' in line or b'"error"' in line):
                return line

    async def request(self, method: str, params: Mapping[str, Any] | None = None) -> bytes:
        await self.send(method, params)
        return await self.response()


@asynccontextmanager
async def raw_peer(argv: Sequence[str], env: Mapping[str, str]) -> AsyncGenerator[RawPeer, None]:
    """Start ``argv`` and complete the 2025-11-25 handshake with it."""
    async with await anyio.open_process(list(argv), cwd=str(REPO_ROOT), env=dict(env), stderr=None) as process:
        peer = RawPeer(process)
        hello = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        }
        await peer.request("initialize", hello)
        await peer.send("notifications/initialized", notify=True)
        try:
            yield peer
        finally:
            if process.stdin is not None:
                await process.stdin.aclose()  # end of input: a stdio server exits
            with anyio.move_on_after(10):
                await process.wait()
            if process.returncode is None:
                process.kill()


async def _timed_list(peer: RawPeer, expected: int) -> float:
    started = time.perf_counter()
    line = await peer.request("tools/list")
    took = time.perf_counter() - started
    count = line.count(b'"inputSchema"')
    if count != expected:
        raise RuntimeError(f"listed {count} tools, expected {expected}: {line[:300]!r}")
    return took


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _server_argv(tools: int) -> list[str]:
    return [sys.executable, "-m", "bench._many_tools_server", "--tools", str(tools)]


def fastmcp_installed() -> bool:
    """Whether FastMCP (the ``bench`` extra) can be imported."""
    return importlib.util.find_spec("fastmcp") is not None


async def run(tools: int, rounds: int, fastmcp: bool = False) -> dict[str, Any]:
    """List ``tools`` tools ``rounds`` times on each peer; with ``fastmcp``, FastMCP's proxy is a third."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ORCHESTRATOR_"))}
    expected = tools + 1  # and echo
    with tempfile.TemporaryDirectory() as work:
        config = Path(work) / "orchestrator.yaml"
        server = {"command": sys.executable, "args": _server_argv(tools)[1:], "cwd": str(REPO_ROOT)}
        config.write_text(json.dumps({"servers": {"many": server}}), encoding="utf-8")
        # State in the temp directory: the bench must not touch a user's pins.
        commands = {
            "direct": (_server_argv(tools), env),
            "proxied": (
                [sys.executable, "-m", "orchestrator", "serve", "-c", str(config)],
                {**env, "ORCHESTRATOR_STATE_DIR": work},
            ),
        }
        if fastmcp:
            commands["fastmcp"] = ([sys.executable, "-m", "bench._fastmcp_proxy", "--", *_server_argv(tools)[1:]], env)
        async with AsyncExitStack() as stack:
            peers = {
                name: await stack.enter_async_context(raw_peer(argv, peer_env))
                for name, (argv, peer_env) in commands.items()
            }
            for peer in peers.values():
                await _timed_list(peer, expected)  # waits for the server; the proxies build what they serve
            processes = {name: psutil.Process(peer.process.pid) for name, peer in peers.items()}
            times: dict[str, list[float]] = {name: [] for name in peers}
            cpu: dict[str, float] = dict.fromkeys(peers, 0.0)
            names = list(peers)
            for round_index in range(rounds):
                shift = round_index % len(names)
                for name in names[shift:] + names[:shift]:
                    before = _cpu(processes[name])
                    times[name].append(await _timed_list(peers[name], expected))
                    cpu[name] += _cpu(processes[name]) - before
            rss_mb = {name: process.memory_info().rss / 2**20 for name, process in processes.items()}
    p50 = {name: statistics.median(values) for name, values in times.items()}
    report: dict[str, Any] = {
        "tools": tools,
        "rounds": rounds,
        "direct_p50_s": round(p50["direct"], 4),
        "proxied_p50_s": round(p50["proxied"], 4),
        "ratio": round(p50["proxied"] / p50["direct"], 3),
        "ratio_budget": RATIO_BUDGET,
        "server_cpu_per_list_s": round(cpu["direct"] / rounds, 4),
        "aggregator_cpu_per_list_s": round(cpu["proxied"] / rounds, 4),
        "server_rss_mb": round(rss_mb["direct"], 1),
        "aggregator_rss_mb": round(rss_mb["proxied"], 1),
        "rss_budget_mb": RSS_BUDGET_MB,
        "cores": os.cpu_count(),
    }
    if fastmcp:
        report |= {
            "fastmcp_p50_s": round(p50["fastmcp"], 4),
            "fastmcp_ratio": round(p50["fastmcp"] / p50["direct"], 3),
            "fastmcp_cpu_per_list_s": round(cpu["fastmcp"] / rounds, 4),
            "fastmcp_rss_mb": round(rss_mb["fastmcp"], 1),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description="tools/list of a big catalogue, through the aggregator and direct")
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--fastmcp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also list through FastMCP's proxy (default: when FastMCP is installed)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    fastmcp = fastmcp_installed() if args.fastmcp is None else bool(args.fastmcp)
    if fastmcp and not fastmcp_installed():
        parser.error("--fastmcp needs FastMCP: pip install -e '.[bench]'")
    report = anyio.run(run, args.tools, args.rounds, fastmcp)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
