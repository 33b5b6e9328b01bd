"""Per-call latency and throughput, direct vs through the aggregator, over stdio and HTTP.

Run from the repository root::

    python -m bench.proxy_latency [--calls N] [--concurrency 32] [--rounds 3] [--modes auto,legacy]
                                  [--paths ...] [--tcp-nodelay none|fixture|all] [--phase-seconds 4]
                                  [--out bench/results/latest.json]

Every path calls the fault server's ``echo`` tool (``python -m tests.fakes.fault_server``) with the
SDK client (``mcp.Client``):

=====================  =======================================================================
path                   route
=====================  =======================================================================
direct-stdio           client -> fault server (stdio)
proxied-stdio          client -> ``orchestrator serve`` (stdio) -> fault server (stdio)
proxied-stdio-traced   proxied-stdio, with the aggregator exporting spans (OTLP, see below)
proxied-stdio-typed    proxied-stdio with ``serve.pass_through: false`` (every call on the typed path)
direct-http            client -> fault server (streamable HTTP, 127.0.0.1)
proxied-http           client -> ``orchestrator serve --transport http`` -> fault server (stdio)
proxied-http-traced    proxied-http, with the aggregator exporting spans (OTLP, see below)
proxied-http-2w        proxied-http served by ``--workers 2`` (two worker processes on one port)
proxied-http-http      client -> ``orchestrator serve --transport http`` -> fault server (HTTP)
fastmcp-stdio          client -> FastMCP proxy (stdio) -> fault server (stdio)
fastmcp-http           client -> FastMCP proxy (streamable HTTP) -> fault server (stdio)
fastmcp-http-http      client -> FastMCP proxy (streamable HTTP) -> fault server (HTTP)
=====================  =======================================================================

The FastMCP paths run ``bench._fastmcp_proxy`` (FastMCP's ``FastMCPProxy`` with one backend
session, connected first and reused by every request; see that module) in a process of its own,
as the aggregator runs, so its CPU is counted the same way. They need the ``bench`` extra
(``pip install .[bench]``); without FastMCP installed they are left out of the default paths. The
HTTP-to-HTTP paths (``proxied-http-http``, ``fastmcp-http-http``) share direct-http's fault server.

Tracing: the ``-traced`` paths start their aggregator with ``OTEL_EXPORTER_OTLP_ENDPOINT``
pointing at a real OTLP/HTTP receiver (``bench._otlp_sink``, ``tests.otlp_receiver`` in a process
of its own), so it exports http/protobuf through its ``BatchSpanProcessor`` as shipped; every other
server runs with no ``OTEL_*`` variable (tracing off: the API's no-op). The aggregator hands
``OTEL_*`` to its stdio child, but the fault server does not configure OpenTelemetry, so only the
aggregator's spans are exported. The report counts the spans received and compares the
aggregator's ``tools/call`` server spans with the calls made, so the traced figure is known to be
real.

All connections (one per path and client mode) are opened first and warmed up; then every round
measures each of them in turn (the order rotates from round to round, so slow drift on a shared
machine hits every path alike): ``--calls`` sequential calls (latency p50/p99, calls/s) and
``--calls`` calls with ``--concurrency`` in flight (calls/s); a phase stops early once it has run
``--phase-seconds`` and made at least 50 calls, so one pathologically slow path cannot stretch the
run. The reported figure is the median over rounds. CPU time per call of the client, the
aggregator and the downstream server is taken from the sequential phase (psutil): it says where
the time goes, and is less sensitive to scheduling noise than wall time.

The aggregator's own downstream connections always use ``mode="auto"``; ``--modes`` picks the
benchmark client's mode (``legacy`` = the 2025-11-25 handshake era; ``auto+sampling`` = ``auto`` with
a sampling callback, so the client declares the sampling capability as chat clients do).

``--tcp-nodelay`` (default ``none``): a workaround for servers that leave Nagle's algorithm on
their accepted HTTP connections (see ``bench._nodelay``; about 40 ms per 2026-07-28 HTTP call).
Both the fault server and the aggregator now create their listeners with ``IPPROTO_TCP``, so it
is only needed to measure older checkouts: ``fixture`` wraps the fault server, ``all`` also the
aggregators.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

import anyio
import mcp_types as types
import psutil
from mcp import Client, StdioServerParameters, stdio_client

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Sequence

    from anyio.abc import Process
    from mcp.client.session import ClientRequestContext

__all__ = ["main"]

REPO_ROOT = Path(__file__).resolve().parents[1]
FAULT_SERVER = ["-m", "tests.fakes.fault_server"]
FASTMCP_PROXY = ["-m", "bench._fastmcp_proxy"]
ARGUMENTS: dict[str, Any] = {"text": "hello, benchmark"}
WARMUP_CALLS = 100
ROUND_WARMUP_CALLS = 10
MIN_PHASE_CALLS = 50
CALL_TIMEOUT = 30.0
START_TIMEOUT = 60.0

Mode = Literal["auto", "legacy", "auto+sampling"]
MODES: tuple[Mode, ...] = ("auto", "legacy", "auto+sampling")
PATHS = (
    "direct-stdio",
    "proxied-stdio",
    "proxied-stdio-traced",
    "proxied-stdio-typed",
    "direct-http",
    "proxied-http",
    "proxied-http-traced",
    "proxied-http-2w",
    "proxied-http-http",
    "fastmcp-stdio",
    "fastmcp-http",
    "fastmcp-http-http",
)
FASTMCP_PATHS = ("fastmcp-stdio", "fastmcp-http", "fastmcp-http-http")
TRACED_PATHS = ("proxied-stdio-traced", "proxied-http-traced")
NODELAY_CHOICES = ("none", "fixture", "all")
RATIOS = (
    ("proxied-stdio", "direct-stdio"),
    ("proxied-stdio-typed", "direct-stdio"),
    ("proxied-http", "direct-http"),
    ("proxied-http-2w", "direct-http"),
    ("proxied-http-http", "direct-http"),
    ("fastmcp-stdio", "direct-stdio"),
    ("fastmcp-http", "direct-http"),
    ("fastmcp-http-http", "direct-http"),
)
FIELD_RATIOS = (
    ("proxied-stdio", "fastmcp-stdio"),
    ("proxied-http", "fastmcp-http"),
    ("proxied-http-http", "fastmcp-http-http"),
)
"""The aggregator against FastMCP's proxy on the same route."""
TRACE_RATIOS = (("proxied-stdio-traced", "proxied-stdio"), ("proxied-http-traced", "proxied-http"))
WORKER_RATIOS = (("proxied-http-2w", "proxied-http"),)
"""Two worker processes against one, same route."""
AGGREGATOR_STOP = signal.SIGINT
"""How HTTP aggregators are stopped. On SIGTERM uvicorn shuts down and then re-raises the signal,
which kills ``orchestrator serve --transport http`` before it flushes its spans; SIGINT ends it
through ``KeyboardInterrupt``, so the pool closes and the batch processor flushes."""
SERVER_SPAN = "tools/call f__echo"
"""The aggregator's SDK server span of one proxied call (its SDK client span is the other)."""


# --------------------------------------------------------------------------- results


@dataclass(slots=True)
class RoundResult:
    """One round of one connection."""

    p50_ms: float
    p99_ms: float
    mean_ms: float
    seq_calls_per_s: float
    conc_calls_per_s: float
    conc_p50_ms: float
    client_cpu_ms: float
    proxy_cpu_ms: float
    downstream_cpu_ms: float
    seq_calls: int
    conc_calls: int


@dataclass(slots=True)
class TargetResult:
    """All rounds of one path in one client mode, and their medians."""

    path: str
    mode: Mode
    protocol_version: str
    rounds: list[RoundResult] = field(default_factory=list[RoundResult])

    def median(self, attr: str) -> float:
        """The median over rounds of one ``RoundResult`` field."""
        return statistics.median(float(getattr(r, attr)) for r in self.rounds)

    def summary(self) -> dict[str, float]:
        """Medians over rounds of every field."""
        return {name: round(self.median(name), 4) for name in RoundResult.__dataclass_fields__}


# --------------------------------------------------------------------------- processes


class _ProcessGroup:
    """Server-side processes of one connection, for CPU accounting."""

    def __init__(self, processes: Sequence[psutil.Process]) -> None:
        self.downstream = [p for p in processes if "tests.fakes.fault_server" in _cmdline(p)]
        self.proxy = [p for p in processes if p not in self.downstream]

    def cpu(self) -> tuple[float, float]:
        """CPU seconds (user + system) used so far by the proxy and by the downstream."""
        return _cpu_seconds(self.proxy), _cpu_seconds(self.downstream)


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def _cpu_seconds(processes: Sequence[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


async def _wait_for_log(log: Path, pattern: str, process: Process) -> re.Match[str]:
    """Poll a child's stderr log until ``pattern`` shows up."""
    with anyio.fail_after(START_TIMEOUT):
        while True:
            text = await anyio.Path(log).read_text(encoding="utf-8", errors="replace")
            match = re.search(pattern, text)
            if match:
                return match
            if process.returncode is not None:
                raise RuntimeError(f"{process!r} exited early; see {log}")
            await anyio.sleep(0.05)


def _untraced_env() -> dict[str, str]:
    """This process's environment without any ``OTEL_*`` variable (tracing off)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


@asynccontextmanager
async def _background(
    command: list[str], log: Path, env: dict[str, str] | None = None, stop: signal.Signals = signal.SIGTERM
) -> AsyncGenerator[Process]:
    """Run ``command`` from the repo root in its own process group, stderr to ``log``; ``stop`` ends it.

    The environment is this process's without ``OTEL_*``, with ``env`` laid over it.
    """
    with log.open("w", encoding="utf-8") as errlog:
        process = await anyio.open_process(
            command,
            cwd=str(REPO_ROOT),
            env=_untraced_env() | (env or {}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errlog,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            if process.returncode is None:
                process.send_signal(stop)
                with anyio.move_on_after(10, shield=True):
                    await process.wait()
            if process.returncode is None:
                os.killpg(process.pid, signal.SIGKILL)
                with anyio.CancelScope(shield=True):
                    await process.wait()


def _write_config(directory: Path, name: str, downstream: dict[str, Any], serve: dict[str, Any] | None = None) -> Path:
    path = directory / name
    # JSON is valid YAML.
    config: dict[str, Any] = {"servers": {"f": downstream}, **({"serve": serve} if serve else {})}
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- measuring


@dataclass(slots=True)
class _Connection:
    path: str
    mode: Mode
    client: Client
    tool: str
    processes: _ProcessGroup
    result: TargetResult
    calls: int = 0


def _check(result: types.CallToolResult) -> None:
    if result.is_error:
        raise RuntimeError(f"tool call failed: {result.content}")


async def _call(conn: _Connection) -> None:
    conn.calls += 1
    _check(await conn.client.call_tool(conn.tool, ARGUMENTS, read_timeout_seconds=CALL_TIMEOUT))


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


async def _measure_round(conn: _Connection, calls: int, concurrency: int, phase_seconds: float) -> RoundResult:
    for _ in range(ROUND_WARMUP_CALLS):
        await _call(conn)

    # Sequential: per-call latency, and CPU time per call of every process involved. A phase
    # stops early (after at least MIN_PHASE_CALLS) when it runs past `phase_seconds`.
    latencies: list[float] = []
    client_cpu0 = time.process_time()
    proxy_cpu0, downstream_cpu0 = conn.processes.cpu()
    started = time.perf_counter()
    deadline = started + phase_seconds
    for done in range(calls):
        t0 = time.perf_counter()
        if done >= MIN_PHASE_CALLS and t0 > deadline:
            break
        await _call(conn)
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    seq_calls = len(latencies)
    client_cpu = time.process_time() - client_cpu0
    proxy_cpu1, downstream_cpu1 = conn.processes.cpu()

    # Concurrent: `concurrency` workers share `calls` calls.
    remaining = calls
    conc_latencies: list[float] = []
    conc_deadline = time.perf_counter() + phase_seconds

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and (remaining > calls - MIN_PHASE_CALLS or time.perf_counter() < conc_deadline):
            remaining -= 1
            t0 = time.perf_counter()
            await _call(conn)
            conc_latencies.append(time.perf_counter() - t0)

    conc_started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    conc_elapsed = time.perf_counter() - conc_started

    latencies.sort()
    conc_latencies.sort()
    return RoundResult(
        p50_ms=_percentile(latencies, 0.50) * 1e3,
        p99_ms=_percentile(latencies, 0.99) * 1e3,
        mean_ms=statistics.fmean(latencies) * 1e3,
        seq_calls_per_s=seq_calls / elapsed,
        conc_calls_per_s=len(conc_latencies) / conc_elapsed,
        seq_calls=seq_calls,
        conc_calls=len(conc_latencies),
        conc_p50_ms=_percentile(conc_latencies, 0.50) * 1e3,
        client_cpu_ms=client_cpu / seq_calls * 1e3,
        proxy_cpu_ms=(proxy_cpu1 - proxy_cpu0) / seq_calls * 1e3,
        downstream_cpu_ms=(downstream_cpu1 - downstream_cpu0) / seq_calls * 1e3,
    )


# --------------------------------------------------------------------------- setup


@dataclass(slots=True)
class _Endpoints:
    """How to reach each path's server."""

    direct_stdio: StdioServerParameters
    proxied_stdio: StdioServerParameters
    proxied_stdio_traced: StdioServerParameters
    proxied_stdio_typed: StdioServerParameters
    direct_http: str
    proxied_http: str
    proxied_http_traced: str
    proxied_http_workers: str
    proxied_http_http: str
    fastmcp_stdio: StdioServerParameters
    fastmcp_http: str
    fastmcp_http_http: str
    http_processes: dict[str, list[psutil.Process]]
    sink_log: Path | None = None
    """stderr of ``bench._otlp_sink``, where it reports what it received when stopped."""


def _stdio_params(args: list[str], env: dict[str, str] | None = None) -> StdioServerParameters:
    # The SDK lays `env` over a small safe default environment (no OTEL_* from this process).
    return StdioServerParameters(command=sys.executable, args=args, cwd=str(REPO_ROOT), env=env)


def _otel_env(endpoint: str, service: str) -> dict[str, str]:
    """Tracing on: batch OTLP http/protobuf to ``endpoint`` as ``service`` (the SDK's defaults otherwise)."""
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": service}


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _python_m(module: str, nodelay: bool) -> list[str]:
    """``python -m module``, through ``bench._nodelay`` when asked."""
    return [sys.executable, "-m", "bench._nodelay", module] if nodelay else [sys.executable, "-m", module]


async def _start_servers(stack: AsyncExitStack, workdir: Path, paths: Sequence[str], nodelay: str) -> _Endpoints:
    stdio_entry: dict[str, Any] = {"command": sys.executable, "args": FAULT_SERVER, "cwd": str(REPO_ROOT)}
    stdio_config = _write_config(workdir, "stdio-downstream.yaml", stdio_entry)
    serve_stdio = ["-m", "orchestrator", "serve", "-c", str(stdio_config)]
    typed_config = _write_config(workdir, "stdio-typed.yaml", stdio_entry, {"pass_through": False})
    endpoints = _Endpoints(
        direct_stdio=_stdio_params(FAULT_SERVER),
        proxied_stdio=_stdio_params(serve_stdio),
        proxied_stdio_traced=_stdio_params(serve_stdio),
        proxied_stdio_typed=_stdio_params(["-m", "orchestrator", "serve", "-c", str(typed_config)]),
        direct_http="",
        proxied_http="",
        proxied_http_traced="",
        proxied_http_workers="",
        proxied_http_http="",
        fastmcp_stdio=_stdio_params(FASTMCP_PROXY),
        fastmcp_http="",
        fastmcp_http_http="",
        http_processes={},
    )
    receiver_url = ""
    if set(TRACED_PATHS) & set(paths):
        # Entered first, so it is stopped last: after the aggregators have flushed their spans.
        endpoints.sink_log = workdir / "otlp-sink.log"
        sink = await stack.enter_async_context(
            _background([sys.executable, "-m", "bench._otlp_sink"], endpoints.sink_log)
        )
        receiver_url = (await _wait_for_log(endpoints.sink_log, r"LISTENING (\S+)", sink)).group(1)
        service = "bench-proxied-stdio-traced"
        endpoints.proxied_stdio_traced = _stdio_params(serve_stdio, _otel_env(receiver_url, service))
    fault_http = [*_python_m(FAULT_SERVER[1], nodelay in ("fixture", "all")), "--transport", "http", "--port", "0"]
    serve_http = [*_python_m("orchestrator", nodelay == "all"), "serve", "--transport", "http", "--port", "0"]
    if {"direct-http", "proxied-http-http", "fastmcp-http-http"} & set(paths):
        log = workdir / "fault-http.log"
        process = await stack.enter_async_context(_background(fault_http, log))
        port = (await _wait_for_log(log, r"LISTENING (\d+)", process)).group(1)
        endpoints.direct_http = f"http://127.0.0.1:{port}/mcp"
        endpoints.http_processes["direct-http"] = _tree(process.pid)
    for path in ("proxied-http", "proxied-http-traced", "proxied-http-2w"):
        if path not in paths:
            continue
        env = _otel_env(receiver_url, f"bench-{path}") if path in TRACED_PATHS else None
        log = workdir / f"orchestrator-{path}.log"
        workers = ["--workers", "2"] if path == "proxied-http-2w" else []
        process = await stack.enter_async_context(
            _background([*serve_http, "-c", str(stdio_config), *workers], log, env, AGGREGATOR_STOP)
        )
        url = (await _wait_for_log(log, r"listening on (\S+)", process)).group(1)
        if path == "proxied-http":
            endpoints.proxied_http = url
        elif path == "proxied-http-2w":
            endpoints.proxied_http_workers = url
        else:
            endpoints.proxied_http_traced = url
        endpoints.http_processes[path] = _tree(process.pid)  # refreshed once connected
    if "proxied-http-http" in paths:
        http_config = _write_config(workdir, "http-downstream.yaml", {"url": endpoints.direct_http})
        log = workdir / "orchestrator-http-http.log"
        process = await stack.enter_async_context(
            _background([*serve_http, "-c", str(http_config)], log, stop=AGGREGATOR_STOP)
        )
        endpoints.proxied_http_http = (await _wait_for_log(log, r"listening on (\S+)", process)).group(1)
        # Only the aggregator: the downstream is direct-http's server, shared.
        proxy = psutil.Process(process.pid)
        endpoints.http_processes["proxied-http-http"] = [proxy, *endpoints.http_processes["direct-http"]]
    await _start_fastmcp(stack, workdir, paths, endpoints)
    return endpoints


async def _start_fastmcp(stack: AsyncExitStack, workdir: Path, paths: Sequence[str], endpoints: _Endpoints) -> None:
    """The FastMCP proxies over HTTP: in front of a stdio fault server, and of direct-http's."""
    fastmcp_http = [sys.executable, *FASTMCP_PROXY, "--transport", "http", "--port", "0"]
    if "fastmcp-http" in paths:
        log = workdir / "fastmcp-http.log"
        process = await stack.enter_async_context(_background(fastmcp_http, log, stop=AGGREGATOR_STOP))
        port = (await _wait_for_log(log, r"LISTENING (\d+)", process)).group(1)
        endpoints.fastmcp_http = f"http://127.0.0.1:{port}/mcp"
        endpoints.http_processes["fastmcp-http"] = _tree(process.pid)  # refreshed once connected
    if "fastmcp-http-http" in paths:
        log = workdir / "fastmcp-http-http.log"
        command = [*fastmcp_http, "--backend-url", endpoints.direct_http]
        process = await stack.enter_async_context(_background(command, log, stop=AGGREGATOR_STOP))
        port = (await _wait_for_log(log, r"LISTENING (\d+)", process)).group(1)
        endpoints.fastmcp_http_http = f"http://127.0.0.1:{port}/mcp"
        # Only the proxy: the downstream is direct-http's server, shared.
        proxy = psutil.Process(process.pid)
        endpoints.http_processes["fastmcp-http-http"] = [proxy, *endpoints.http_processes["direct-http"]]


async def _refuse_sampling(context: ClientRequestContext, params: types.CreateMessageRequestParams) -> types.ErrorData:
    return types.ErrorData(code=types.INVALID_REQUEST, message="the benchmark client does not sample")


async def _connect(stack: AsyncExitStack, endpoints: _Endpoints, path: str, mode: Mode, errlog: TextIO) -> _Connection:
    before = _descendants()
    target: Any
    if path == "direct-stdio":
        target = stdio_client(endpoints.direct_stdio, errlog=errlog)
    elif path == "proxied-stdio":
        target = stdio_client(endpoints.proxied_stdio, errlog=errlog)
    elif path == "proxied-stdio-traced":
        target = stdio_client(endpoints.proxied_stdio_traced, errlog=errlog)
    elif path == "proxied-stdio-typed":
        target = stdio_client(endpoints.proxied_stdio_typed, errlog=errlog)
    elif path == "fastmcp-stdio":
        target = stdio_client(endpoints.fastmcp_stdio, errlog=errlog)
    else:
        target = {
            "direct-http": endpoints.direct_http,
            "proxied-http": endpoints.proxied_http,
            "proxied-http-traced": endpoints.proxied_http_traced,
            "proxied-http-2w": endpoints.proxied_http_workers,
            "proxied-http-http": endpoints.proxied_http_http,
            "fastmcp-http": endpoints.fastmcp_http,
            "fastmcp-http-http": endpoints.fastmcp_http_http,
        }[path]
    if mode == "auto+sampling":
        # Declares the sampling capability, as chat clients do (the aggregator may route such calls
        # through its input-required machinery); echo never asks, so the callback never runs.
        client = Client(target, mode="auto", read_timeout_seconds=CALL_TIMEOUT, sampling_callback=_refuse_sampling)
    else:
        client = Client(target, mode=mode, read_timeout_seconds=CALL_TIMEOUT)
    # The client's read timeout bounds the connection's requests (a cancel scope around
    # entering it would wrap the client's own task group).
    await stack.enter_async_context(client)
    with anyio.fail_after(START_TIMEOUT):
        tools = {tool.name for tool in (await client.list_tools()).tools}
    tool = "f__echo" if path.startswith("proxied") else "echo"  # FastMCP's proxy keeps the names
    if tool not in tools:
        raise RuntimeError(f"{path}: no tool {tool!r} among {sorted(tools)}")
    if path in endpoints.http_processes:
        processes = endpoints.http_processes[path]
        processes = [*processes, *(c for p in processes[:1] for c in p.children(recursive=True))]
    else:
        processes = [psutil.Process(pid) for pid in _descendants() - before]
    conn = _Connection(
        path=path,
        mode=mode,
        client=client,
        tool=tool,
        processes=_ProcessGroup(list({p.pid: p for p in processes}.values())),
        result=TargetResult(path=path, mode=mode, protocol_version=str(client.protocol_version)),
    )
    for _ in range(WARMUP_CALLS):
        await _call(conn)
    return conn


# --------------------------------------------------------------------------- report


def _pair_rows(
    results: Sequence[TargetResult], pairs: Sequence[tuple[str, str]], labels: tuple[str, str]
) -> list[dict[str, Any]]:
    """``numerator / denominator`` medians of each pair of paths present, per client mode."""
    by_key = {(r.path, r.mode): r for r in results}
    rows: list[dict[str, Any]] = []
    for mode in dict.fromkeys(r.mode for r in results):
        for top, bottom in pairs:
            p, d = by_key.get((top, mode)), by_key.get((bottom, mode))
            if p is None or d is None:
                continue
            per_round = [pr.p50_ms / dr.p50_ms for pr, dr in zip(p.rounds, d.rounds, strict=True)]
            rows.append(
                {
                    labels[0]: top,
                    labels[1]: bottom,
                    "mode": mode,
                    "p50_ratio": round(p.median("p50_ms") / d.median("p50_ms"), 3),
                    "p50_ratio_per_round": [round(x, 3) for x in per_round],
                    "p99_ratio": round(p.median("p99_ms") / d.median("p99_ms"), 3),
                    "seq_throughput_ratio": round(p.median("seq_calls_per_s") / d.median("seq_calls_per_s"), 3),
                    "conc_throughput_ratio": round(p.median("conc_calls_per_s") / d.median("conc_calls_per_s"), 3),
                    "proxy_cpu_ms": [round(d.median("proxy_cpu_ms"), 3), round(p.median("proxy_cpu_ms"), 3)],
                }
            )
    return rows


def _ratios(results: Sequence[TargetResult]) -> list[dict[str, Any]]:
    return _pair_rows(results, RATIOS, ("proxied", "direct"))


def _field_ratios(results: Sequence[TargetResult]) -> list[dict[str, Any]]:
    return _pair_rows(results, FIELD_RATIOS, ("orchestrator", "fastmcp"))


def _tracing_ratios(results: Sequence[TargetResult]) -> list[dict[str, Any]]:
    return _pair_rows(results, TRACE_RATIOS, ("traced", "untraced"))


def _worker_ratios(results: Sequence[TargetResult]) -> list[dict[str, Any]]:
    return _pair_rows(results, WORKER_RATIOS, ("workers", "one"))


def _received(sink_log: Path | None) -> dict[str, Any] | None:
    """What ``bench._otlp_sink`` reported when it was stopped (None without traced paths)."""
    if sink_log is None:
        return None
    match = re.search(r"^RECEIVED (.+)$", sink_log.read_text(encoding="utf-8", errors="replace"), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"the OTLP receiver did not report; see {sink_log}")
    received: dict[str, Any] = json.loads(match.group(1))
    return received


def _tracing_check(received: dict[str, Any] | None, connections: Sequence[_Connection]) -> list[dict[str, Any]]:
    """Per traced path: calls made, the aggregator's ``tools/call`` server spans received, all its spans."""
    if received is None:
        return []
    rows: list[dict[str, Any]] = []
    by_name: dict[str, int] = received["by_name"]
    by_service: dict[str, int] = received["by_service"]
    for path in TRACED_PATHS:
        calls = sum(conn.calls for conn in connections if conn.path == path)
        if not calls:
            continue
        service = f"bench-{path}"
        rows.append(
            {
                "path": path,
                "service": service,
                "calls": calls,
                "call_server_spans": by_name.get(f"{service}: {SERVER_SPAN} (SERVER)", 0),
                "spans": by_service.get(service, 0),
            }
        )
    return rows


def _markdown(
    results: Sequence[TargetResult],
    ratios: Sequence[dict[str, Any]],
    field: Sequence[dict[str, Any]],
    tracing: Sequence[dict[str, Any]],
    check: Sequence[dict[str, Any]],
    received: dict[str, Any] | None,
    concurrency: int,
) -> str:
    lines = [
        f"| path | client mode | p50 ms | p99 ms | sequential calls/s | calls/s, {concurrency} in flight "
        "| CPU ms/call: client | proxy | downstream |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        s = r.summary()
        proxy = "-" if r.path.startswith("direct") else f"{s['proxy_cpu_ms']:.2f}"
        lines.append(
            f"| {r.path} | {r.mode} ({r.protocol_version}) | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} "
            f"| {s['seq_calls_per_s']:.0f} | {s['conc_calls_per_s']:.0f} "
            f"| {s['client_cpu_ms']:.2f} | {proxy} | {s['downstream_cpu_ms']:.2f} |"
        )
    lines += [
        "",
        "| proxied / direct | client mode | p50 | p50 per round | p99 | sequential calls/s | calls/s in flight |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for row in ratios:
        lines.append(
            f"| {row['proxied']} / {row['direct']} | {row['mode']} | {row['p50_ratio']:.2f}x "
            f"| {' / '.join(f'{x:.2f}' for x in row['p50_ratio_per_round'])} "
            f"| {row['p99_ratio']:.2f}x | {row['seq_throughput_ratio']:.2f}x | {row['conc_throughput_ratio']:.2f}x |"
        )
    if field:
        lines += [
            "",
            "| orchestrator / FastMCP | client mode | p50 | p50 per round | p99 | sequential calls/s "
            "| calls/s in flight | proxy CPU ms/call, FastMCP → orchestrator |",
            "|---|---|---:|---|---:|---:|---:|---:|",
        ]
        for row in field:
            theirs, ours = row["proxy_cpu_ms"]
            lines.append(
                f"| {row['orchestrator']} / {row['fastmcp']} | {row['mode']} | {row['p50_ratio']:.2f}x "
                f"| {' / '.join(f'{x:.2f}' for x in row['p50_ratio_per_round'])} "
                f"| {row['p99_ratio']:.2f}x | {row['seq_throughput_ratio']:.2f}x "
                f"| {row['conc_throughput_ratio']:.2f}x | {theirs:.2f} → {ours:.2f} |"
            )
    if tracing:
        lines += [
            "",
            "| tracing on / off | client mode | p50 | p50 per round | p99 | calls/s in flight "
            "| aggregator CPU ms/call, off → on |",
            "|---|---|---:|---|---:|---:|---:|",
        ]
        for row in tracing:
            off, on = row["proxy_cpu_ms"]
            lines.append(
                f"| {row['traced']} / {row['untraced']} | {row['mode']} | {row['p50_ratio']:.2f}x "
                f"| {' / '.join(f'{x:.2f}' for x in row['p50_ratio_per_round'])} "
                f"| {row['p99_ratio']:.2f}x | {row['conc_throughput_ratio']:.2f}x | {off:.2f} → {on:.2f} |"
            )
    if received is not None:
        lines += ["", f"OTLP receiver: {received['spans']} spans in {received['requests']} export requests."]
        for row in check:
            lines.append(
                f"{row['path']}: {row['calls']} calls (warm-up included), {row['call_server_spans']} "
                f"`{SERVER_SPAN}` server spans received, {row['spans']} spans in all from {row['service']}."
            )
        others = {k: v for k, v in received["by_service"].items() if k not in {r["service"] for r in check}}
        lines.append(f"Spans from other services: {others or 'none'}.")
    return "\n".join(lines)


def _workers_markdown(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return ""
    lines = [
        "",
        "",
        "| 2 workers / 1 | client mode | p50 | p99 | sequential calls/s | calls/s in flight "
        "| aggregator CPU ms/call, 1 → 2 workers |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        one, two = row["proxy_cpu_ms"]
        lines.append(
            f"| {row['workers']} / {row['one']} | {row['mode']} | {row['p50_ratio']:.2f}x | {row['p99_ratio']:.2f}x "
            f"| {row['seq_throughput_ratio']:.2f}x | {row['conc_throughput_ratio']:.2f}x | {one:.2f} → {two:.2f} |"
        )
    return "\n".join(lines)


def _git() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except OSError:
            return ""
        return done.stdout.strip()

    return {"head": git("rev-parse", "--short", "HEAD"), "dirty": sorted(git("status", "--porcelain").splitlines())}


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _machine() -> dict[str, Any]:
    load1, load5, _ = os.getloadavg()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "mcp": metadata.version("mcp"),
        "anyio": metadata.version("anyio"),
        "fastmcp": _version("fastmcp"),
        "loadavg_at_start": [round(load1, 2), round(load5, 2)],
    }


# --------------------------------------------------------------------------- main


@dataclass(frozen=True, slots=True)
class Options:
    """Command-line options."""

    calls: int
    concurrency: int
    rounds: int
    modes: tuple[Mode, ...]
    paths: tuple[str, ...]
    tcp_nodelay: str
    phase_seconds: float
    out: Path


async def run(options: Options) -> dict[str, Any]:
    """Run the benchmark and return the JSON-ready results."""
    machine = _machine()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        workdir = Path(tmp)
        async with AsyncExitStack() as stack:
            errlog = stack.enter_context((workdir / "stdio-children.log").open("w", encoding="utf-8"))
            endpoints = await _start_servers(stack, workdir, options.paths, options.tcp_nodelay)
            connections: list[_Connection] = []
            for mode in options.modes:
                for path in options.paths:
                    print(f"connecting {path} ({mode}) ...", file=sys.stderr, flush=True)
                    connections.append(await _connect(stack, endpoints, path, mode, errlog))
            setup_seconds = time.perf_counter() - began
            for round_no in range(options.rounds):
                shift = round_no % len(connections)
                for conn in connections[shift:] + connections[:shift]:
                    conn.result.rounds.append(
                        await _measure_round(conn, options.calls, options.concurrency, options.phase_seconds)
                    )
                print(f"round {round_no + 1}/{options.rounds} done", file=sys.stderr, flush=True)
            results = [conn.result for conn in connections]
            print("closing connections ...", file=sys.stderr, flush=True)
        # Every server has stopped (the aggregators flushed their spans first), so the receiver has reported.
        received = _received(endpoints.sink_log)
    ratios = _ratios(results)
    field = _field_ratios(results)
    tracing = _tracing_ratios(results)
    workers = _worker_ratios(results)
    check = _tracing_check(received, connections)
    return {
        "benchmark": "proxy_latency",
        "command": "python -m bench.proxy_latency " + " ".join(sys.argv[1:]),
        "options": {
            "calls": options.calls,
            "concurrency": options.concurrency,
            "rounds": options.rounds,
            "modes": list(options.modes),
            "paths": list(options.paths),
            "tcp_nodelay": options.tcp_nodelay,
            "phase_seconds": options.phase_seconds,
        },
        "git": _git(),
        "machine": machine,
        "setup_seconds": round(setup_seconds, 2),
        "total_seconds": round(time.perf_counter() - began, 2),
        "results": [
            {"path": r.path, "mode": r.mode, "protocol_version": r.protocol_version, "median": r.summary()}
            | {"rounds": [{k: round(v, 4) for k, v in asdict(x).items()} for x in r.rounds]}
            for r in results
        ],
        "ratios": ratios,
        "field_ratios": field,
        "tracing_ratios": tracing,
        "worker_ratios": workers,
        "tracing_received": received,
        "tracing_check": check,
        "markdown": _markdown(results, ratios, field, tracing, check, received, options.concurrency)
        + _workers_markdown(workers),
    }


def _default_paths() -> tuple[str, ...]:
    """Every path; the FastMCP ones only when FastMCP is installed (the ``bench`` extra)."""
    if importlib.util.find_spec("fastmcp") is not None:
        return PATHS
    return tuple(path for path in PATHS if path not in FASTMCP_PATHS)


def _parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy_latency", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per phase per round (default 300)")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight in the throughput phase")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported (default 3)")
    parser.add_argument(
        "--modes",
        default="auto,legacy",
        help="client modes, comma-separated: auto, legacy, auto+sampling (auto, declaring sampling)",
    )
    parser.add_argument(
        "--phase-seconds",
        type=float,
        default=4.0,
        help=f"a phase stops early after this long (but not before {MIN_PHASE_CALLS} calls); default 4",
    )
    parser.add_argument(
        "--paths",
        default=",".join(_default_paths()),
        help=f"paths to measure (default: {','.join(PATHS)}; the fastmcp-* paths only when FastMCP is installed)",
    )
    parser.add_argument(
        "--tcp-nodelay",
        choices=NODELAY_CHOICES,
        default="none",
        help="HTTP servers to run through bench._nodelay, a Nagle workaround for older checkouts whose "
        "listeners lack IPPROTO_TCP: none (default; both are fixed), fixture (the fault server), "
        "all (also the aggregators)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"), help="JSON results file")
    args = parser.parse_args(argv)
    modes = tuple(m.strip() for m in str(args.modes).split(",") if m.strip())
    paths = tuple(p.strip() for p in str(args.paths).split(",") if p.strip())
    for mode in modes:
        if mode not in MODES:
            parser.error(f"unknown mode {mode!r}")
    for path in paths:
        if path not in PATHS:
            parser.error(f"unknown path {path!r}; choose from {', '.join(PATHS)}")
    if set(FASTMCP_PATHS) & set(paths) and importlib.util.find_spec("fastmcp") is None:
        parser.error("the fastmcp-* paths need FastMCP: pip install -e '.[bench]'")
    if args.calls < 1 or args.concurrency < 1 or args.rounds < 1:
        parser.error("--calls, --concurrency and --rounds must be positive")
    return Options(
        calls=int(args.calls),
        concurrency=int(args.concurrency),
        rounds=int(args.rounds),
        modes=tuple(m for m in MODES if m in modes),
        paths=tuple(p for p in PATHS if p in paths),
        tcp_nodelay=str(args.tcp_nodelay),
        phase_seconds=float(args.phase_seconds),
        out=Path(args.out),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the tables, write the JSON results."""
    options = _parse(argv)
    report = anyio.run(run, options)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    machine = report["machine"]
    print(
        f"\n{machine['nproc']} CPUs, Python {machine['python']}, mcp {machine['mcp']}; "
        f"{options.calls} calls per phase, {options.rounds} rounds (medians), "
        f"--tcp-nodelay {options.tcp_nodelay}, "
        f"{report['total_seconds']:.0f}s in all\n"
    )
    print(report["markdown"])
    print(f"\nresults: {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
