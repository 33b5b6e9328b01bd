"""Throughput through HAProxy with 1, 2 and 3 replicas on PostgreSQL, and the CPU each part spends per call.

Run from the repository root (needs PostgreSQL and HAProxy: ``apt-get install postgresql haproxy``)::

    python -m bench.replicas [--replicas 1,2,3] [--calls N] [--concurrency 32] [--clients 8] [--rounds 3]
                             [--phase-seconds 10] [--out bench/results/replicas.json]

One PostgreSQL server is started for the run (``tests.postgres.running_postgres``: a temporary
cluster on a free loopback port, ``fsync=off``). For each replica count a cluster is started as
``tests/e2e/test_replicas.py`` starts its own (``tests.e2e.replica_cluster``): that many
``orchestrator serve --transport http`` processes on one config and one fresh database, each with
its own stdio echo server (``tests.fakes.fault_server``), behind Debian's HAProxy (round robin,
``/readyz`` checks every 2 s). The config is the defaults: no rate limits (with them, each limited
call would be one more database write), and the audit log on, as it is by default over HTTP (one
database write per batch of calls). The ``direct`` row is one fault server over streamable HTTP
with no aggregator and no balancer: the ceiling.

The workload is the same on every target: ``--clients`` SDK clients (``mcp.Client``, 2026-07-28
over streamable HTTP; several, so the calls arrive on several connections) sharing ``--calls``
``echo`` calls with ``--concurrency`` in flight. Every target is started and its clients
connected and warmed up first; then each round measures every target in turn, the order rotating
from round to round, so slow drift on a shared machine hits them alike. A phase stops early once
it has run ``--phase-seconds`` (but not before 100 calls). Reported: the median over rounds of
calls/s, p50 and p99 of the calls in flight, the ratio of calls/s to one replica's, and the CPU
time (user + system, psutil) per call of each replica's process tree (the replica and its echo
server), of HAProxy, of PostgreSQL (the postmaster and its backends) and of this client process.

On a machine with few cores the replicas share them with the client, HAProxy and PostgreSQL, so
throughput plateaus; the CPU per call of each part is what carries to a bigger machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import psutil
from mcp import Client
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench._machine import git, machine
from tests.e2e.harness import fault_entry, http_fault_server, write_config
from tests.e2e.replica_cluster import fresh_database, replica_cluster
from tests.postgres import running_postgres

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]

REPO_ROOT = Path(__file__).resolve().parents[1]
ARGUMENTS: dict[str, Any] = {"text": "hello, benchmark"}
PROTOCOL = "2026-07-28"
WARMUP_CALLS = 50
"""Calls per client once connected (imports, caches, connection pools)."""
ROUND_WARMUP_CALLS = 2
"""Calls per client before each measured phase."""
MIN_PHASE_CALLS = 100
CALL_TIMEOUT = 30.0
CHECK_INTERVAL = "2s"
"""HAProxy's ``/readyz`` checks: few, so the idle clusters cost little while another is measured."""


# --------------------------------------------------------------------------- CPU accounting


def _tree_cpu(root: psutil.Process) -> float:
    """CPU seconds (user + system) of ``root`` and its descendants, the exited ones included.

    A process's ``children_user``/``children_system`` hold what its exited (reaped) children
    used, so PostgreSQL backends that come and go between two readings are counted too.
    """
    total = 0.0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return total
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def _postmaster(port: int) -> psutil.Process:
    """The PostgreSQL server listening on ``port`` (its cmdline has ``-p PORT``).

    Raises:
        RuntimeError: No such process.
    """
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline: list[str] = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and "-p" in cmdline and cmdline[cmdline.index("-p") + 1] == str(port):
            return process
    raise RuntimeError(f"no postgres process with -p {port}")


# --------------------------------------------------------------------------- results


@dataclass(slots=True)
class RoundResult:
    """One measured phase of one target."""

    calls: int
    seconds: float
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    replica_cpu_ms: list[float]
    """Per replica (for ``direct``: the echo server), CPU ms of its process tree per call through the target."""
    haproxy_cpu_ms: float
    postgres_cpu_ms: float
    client_cpu_ms: float


@dataclass(slots=True)
class Target:
    """One thing measured: ``direct`` or a cluster of N replicas, its clients and its processes."""

    name: str
    replicas: int
    clients: list[Client]
    servers: list[psutil.Process]
    """Each replica (for ``direct``: the echo server); their trees are accounted."""
    haproxy: psutil.Process | None
    tool: str = "f__echo"
    state: str | None = None
    """The URL of the cluster's database."""
    calls: int = 0
    """Calls made, warm-up included."""
    audited: int | None = None
    """Audit records in its database once measured (the audit log is on, as by default over HTTP)."""
    rounds: list[RoundResult] = field(default_factory=list[RoundResult])

    def median(self, attr: str) -> float:
        """The median over rounds of a numeric ``RoundResult`` field."""
        return statistics.median(float(getattr(each, attr)) for each in self.rounds)

    def median_replica_cpu(self) -> list[float]:
        """The median over rounds of each replica's CPU ms per call."""
        return [
            statistics.median(each.replica_cpu_ms[index] for each in self.rounds) for index in range(len(self.servers))
        ]

    def summary(self) -> dict[str, Any]:
        """Medians over rounds."""
        replica_cpu = self.median_replica_cpu()
        return {
            "calls_per_s": round(self.median("calls_per_s"), 1),
            "p50_ms": round(self.median("p50_ms"), 2),
            "p99_ms": round(self.median("p99_ms"), 2),
            "replica_cpu_ms": [round(each, 3) for each in replica_cpu],
            "replicas_cpu_ms": round(sum(replica_cpu), 3),
            "haproxy_cpu_ms": round(self.median("haproxy_cpu_ms"), 3),
            "postgres_cpu_ms": round(self.median("postgres_cpu_ms"), 3),
            "client_cpu_ms": round(self.median("client_cpu_ms"), 3),
        }


# --------------------------------------------------------------------------- measuring


async def _call(target: Target, client: Client) -> None:
    target.calls += 1
    result = await client.call_tool(target.tool, ARGUMENTS, read_timeout_seconds=CALL_TIMEOUT)
    if result.is_error:
        raise RuntimeError(f"tool call failed: {result.content}")


async def _each_client(target: Target, calls: int) -> None:
    """``calls`` calls from each of the target's clients, all clients at once."""

    async def one(client: Client) -> None:
        for _ in range(calls):
            await _call(target, client)

    async with anyio.create_task_group() as tg:
        for client in target.clients:
            tg.start_soon(one, client)


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


async def _measure(target: Target, postgres: psutil.Process, options: Options) -> RoundResult:
    await _each_client(target, ROUND_WARMUP_CALLS)
    latencies: list[float] = []
    remaining = options.calls
    deadline = time.perf_counter() + options.phase_seconds

    async def worker(client: Client) -> None:
        nonlocal remaining
        while remaining > 0 and (remaining > options.calls - MIN_PHASE_CALLS or time.perf_counter() < deadline):
            remaining -= 1
            t0 = time.perf_counter()
            await _call(target, client)
            latencies.append(time.perf_counter() - t0)

    servers0 = [_tree_cpu(each) for each in target.servers]
    haproxy0 = _tree_cpu(target.haproxy) if target.haproxy else 0.0
    postgres0 = _tree_cpu(postgres)
    client0 = time.process_time()
    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for index in range(options.concurrency):
            tg.start_soon(worker, target.clients[index % len(target.clients)])
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - client0
    servers = [_tree_cpu(each) - before for each, before in zip(target.servers, servers0, strict=True)]
    haproxy = _tree_cpu(target.haproxy) - haproxy0 if target.haproxy else 0.0
    postgres_cpu = _tree_cpu(postgres) - postgres0

    calls = len(latencies)
    latencies.sort()
    per_call = 1e3 / calls
    return RoundResult(
        calls=calls,
        seconds=elapsed,
        calls_per_s=calls / elapsed,
        p50_ms=_percentile(latencies, 0.50) * 1e3,
        p99_ms=_percentile(latencies, 0.99) * 1e3,
        replica_cpu_ms=[each * per_call for each in servers],
        haproxy_cpu_ms=haproxy * per_call,
        postgres_cpu_ms=postgres_cpu * per_call,
        client_cpu_ms=client_cpu * per_call,
    )


# --------------------------------------------------------------------------- setup


async def _clients(stack: AsyncExitStack, url: str, count: int) -> list[Client]:
    clients: list[Client] = []
    for _ in range(count):
        client = await stack.enter_async_context(Client(url))
        if client.protocol_version != PROTOCOL:
            raise RuntimeError(f"{url} spoke {client.protocol_version}, not {PROTOCOL}")
        clients.append(client)
    return clients


async def _direct(stack: AsyncExitStack, options: Options) -> Target:
    url, process = await stack.enter_async_context(http_fault_server())
    clients = await _clients(stack, url, options.clients)
    return Target("direct", 0, clients, [psutil.Process(process.pid)], None, tool="echo")


async def _replicas(stack: AsyncExitStack, workdir: Path, postgres_url: str, count: int, options: Options) -> Target:
    folder = workdir / f"replicas-{count}"
    folder.mkdir()
    state = await stack.enter_async_context(fresh_database(postgres_url, prefix=f"bench_{count}"))
    config = write_config(folder, {"f": fault_entry()}, state={"url": state})
    cluster = await stack.enter_async_context(
        replica_cluster(folder, config, count, state, check_interval=CHECK_INTERVAL)
    )
    clients = await _clients(stack, cluster.url, options.clients)
    servers = [psutil.Process(each.pid) for each in cluster.replicas]
    name = f"{count} replica" + ("s" if count > 1 else "")
    return Target(name, count, clients, servers, psutil.Process(cluster.haproxy.process.pid), state=state)


async def _audited(state: str) -> int:
    """How many audit records the database at ``state`` holds."""
    engine = create_async_engine(make_url(state).set(drivername="postgresql+asyncpg"))
    try:
        async with engine.connect() as connection:
            return int((await connection.exec_driver_sql("SELECT count(*) FROM audit_records")).scalar_one())
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- report


def _machine() -> dict[str, Any]:
    haproxy = subprocess.run(["/usr/sbin/haproxy", "-v"], capture_output=True, text=True, check=False)
    return machine(haproxy=haproxy.stdout.splitlines()[0] if haproxy.stdout else None)


def _markdown(targets: Sequence[Target], concurrency: int) -> str:
    one = next((each for each in targets if each.replicas == 1), None)
    base = one.median("calls_per_s") if one else None
    lines = [
        f"| target | calls/s, {concurrency} in flight | per round | / 1 replica | p50 ms | p99 ms "
        "| CPU ms/call: each replica (+ its echo server) | all replicas | HAProxy | PostgreSQL | client |",
        "|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for target in targets:
        s = target.summary()
        ratio = f"{s['calls_per_s'] / base:.2f}x" if base else "-"
        each = " / ".join(f"{value:.2f}" for value in s["replica_cpu_ms"])
        rounds = " / ".join(f"{result.calls_per_s:.0f}" for result in target.rounds)
        if target.name == "direct":
            lines.append(
                f"| direct (echo server, no aggregator) | {s['calls_per_s']:.0f} | {rounds} | {ratio} "
                f"| {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | echo server {each} | - | - | - | {s['client_cpu_ms']:.2f} |"
            )
            continue
        lines.append(
            f"| {target.name} | {s['calls_per_s']:.0f} | {rounds} | {ratio} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} "
            f"| {each} | {s['replicas_cpu_ms']:.2f} | {s['haproxy_cpu_ms']:.2f} | {s['postgres_cpu_ms']:.2f} "
            f"| {s['client_cpu_ms']:.2f} |"
        )
    audited = [f"{each.name} {each.audited} of {each.calls}" for each in targets if each.audited is not None]
    lines += ["", f"Audit records written (of the calls made, warm-up included): {', '.join(audited)}."]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


@dataclass(frozen=True, slots=True)
class Options:
    """Command-line options."""

    replicas: tuple[int, ...]
    calls: int
    concurrency: int
    clients: int
    rounds: int
    phase_seconds: float
    out: Path


async def run(options: Options, postgres_url: str) -> dict[str, Any]:
    """Run the benchmark against the PostgreSQL server at ``postgres_url``; the JSON-ready results."""
    machine = _machine()
    postgres = _postmaster(int(make_url(postgres_url).port or 5432))
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        async with AsyncExitStack() as stack:
            print("starting direct ...", file=sys.stderr, flush=True)
            targets = [await _direct(stack, options)]
            for count in options.replicas:
                print(f"starting {count} replica(s) behind HAProxy ...", file=sys.stderr, flush=True)
                targets.append(await _replicas(stack, Path(tmp), postgres_url, count, options))
            for target in targets:
                await _each_client(target, WARMUP_CALLS)
            setup_seconds = time.perf_counter() - began
            for round_no in range(options.rounds):
                shift = round_no % len(targets)
                for target in targets[shift:] + targets[:shift]:
                    target.rounds.append(await _measure(target, postgres, options))
                print(f"round {round_no + 1}/{options.rounds} done", file=sys.stderr, flush=True)
            for target in targets:
                if target.state is not None:
                    target.audited = await _audited(target.state)
            print("stopping ...", file=sys.stderr, flush=True)
    one = next((each for each in targets if each.replicas == 1), None)
    base = one.median("calls_per_s") if one else None
    return {
        "benchmark": "replicas",
        "command": "python -m bench.replicas " + " ".join(sys.argv[1:]),
        "options": {
            "replicas": list(options.replicas),
            "calls": options.calls,
            "concurrency": options.concurrency,
            "clients": options.clients,
            "rounds": options.rounds,
            "phase_seconds": options.phase_seconds,
        },
        "git": {"head": git("rev-parse", "--short", "HEAD"), "dirty": bool(git("status", "--porcelain"))},
        "machine": machine,
        "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
        "setup_seconds": round(setup_seconds, 1),
        "total_seconds": round(time.perf_counter() - began, 1),
        "results": [
            {"target": each.name, "replicas": each.replicas, "median": each.summary()}
            | {"calls": each.calls, "audit_records": each.audited}
            | ({"throughput_vs_one_replica": round(each.median("calls_per_s") / base, 3)} if base else {})
            | {"rounds": [_rounded(result) for result in each.rounds]}
            for each in targets
        ],
        "markdown": _markdown(targets, options.concurrency),
    }


def _rounded(result: RoundResult) -> dict[str, Any]:
    rounded: dict[str, Any] = {key: round(value, 3) for key, value in asdict(result).items() if key != "replica_cpu_ms"}
    return rounded | {"replica_cpu_ms": [round(each, 3) for each in result.replica_cpu_ms]}


def _parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--replicas", default="1,2,3", help="replica counts, comma-separated (default 1,2,3)")
    parser.add_argument("--calls", type=int, default=1500, help="calls per target per round (default 1500)")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight (default 32)")
    parser.add_argument("--clients", type=int, default=8, help="SDK clients sharing them (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported (default 3)")
    parser.add_argument(
        "--phase-seconds",
        type=float,
        default=10.0,
        help=f"a phase stops early after this long (but not before {MIN_PHASE_CALLS} calls); default 10",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/replicas.json"), help="JSON results file")
    args = parser.parse_args(argv)
    try:
        replicas = tuple(sorted({int(each) for each in str(args.replicas).split(",") if each.strip()}))
    except ValueError:
        parser.error("--replicas takes whole numbers, e.g. 1,2,3")
    if not replicas or min(replicas) < 1:
        parser.error("--replicas takes positive numbers")
    if args.calls < MIN_PHASE_CALLS or args.concurrency < 1 or args.clients < 1 or args.rounds < 1:
        parser.error(f"--calls must be at least {MIN_PHASE_CALLS}; --concurrency, --clients and --rounds positive")
    return Options(
        replicas=replicas,
        calls=int(args.calls),
        concurrency=int(args.concurrency),
        clients=int(args.clients),
        rounds=int(args.rounds),
        phase_seconds=float(args.phase_seconds),
        out=Path(args.out),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Start PostgreSQL, run the benchmark, print the table, write the JSON results."""
    options = _parse(argv)
    with running_postgres() as postgres_url:
        report = anyio.run(run, options, postgres_url)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    machine = report["machine"]
    print(
        f"\n{machine['cores']} cores ({machine['cpu_model']}), Python {machine['python']}, mcp {machine['mcp']}, "
        f"{machine['haproxy']}; load average {machine['load_average'][0]:g} at the start, "
        f"{report['load_average_at_end'][0]:g} at the end; {options.calls} calls per target per round, "
        f"{options.rounds} rounds (medians), {report['total_seconds']:.0f} s in all\n"
    )
    print(report["markdown"])
    print(f"\nresults: {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
