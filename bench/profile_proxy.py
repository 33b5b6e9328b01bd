"""Where the aggregator's time goes, measured in-process (no upstream transport).

Run from the repository root::

    python -m bench.profile_proxy [--calls 300] [--rounds 9] [--profile-calls 3000] [--top 25]

Starts a ``DownstreamPool`` on one fault server over stdio and an ``OrchestratorServer`` in this
process, then compares, interleaved over rounds (medians over rounds of per-round p50 and of CPU time per call):

- ``sdk``: the pool's own SDK ``Client`` calling ``echo`` directly (the downstream leg alone);
- ``pool``: ``DownstreamPool.call_tool`` (routing + the per-call ``_request`` wrapper);
- ``server``: ``OrchestratorServer.call`` (everything the aggregator adds but the upstream transport);
- ablations of ``server``, each removing one suspect by monkeypatching this process only (the
  files are not touched): argument validation, ``wait_settled``, the cancel scopes in ``_request``,
  the SDK client's output-schema re-validation, and the SDK's OpenTelemetry client span.

Then runs cProfile over ``--profile-calls`` calls of ``server`` and prints the top functions.
The upstream half (the SDK server, its stdio transport) is profiled on the real process with
py-spy; see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import logging
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import mcp.shared.jsonrpc_dispatcher as sdk_dispatcher
from mcp import Client

from orchestrator.config import load_config
from orchestrator.downstream import DownstreamPool
from orchestrator.server import OrchestratorServer

if TYPE_CHECKING:
    from orchestrator.downstream._connection import DownstreamServer

__all__ = ["main"]

REPO_ROOT = Path(__file__).resolve().parents[1]
ARGUMENTS: dict[str, Any] = {"text": "hello, benchmark"}

Call = Callable[[], Awaitable[Any]]


@contextmanager
def _patched(target: object, name: str, value: object) -> Generator[None]:
    """Set ``target.name`` to ``value`` for the duration (an ablation, this process only)."""
    had = name in vars(target)
    old = vars(target).get(name)
    setattr(target, name, value)
    try:
        yield
    finally:
        if had:
            setattr(target, name, old)
        else:
            delattr(target, name)


async def _noop(*_args: object, **_kwargs: object) -> None:
    return None


def _no_validation(*_args: object) -> list[str]:
    return []


@contextlib.contextmanager
def _null_span(*_args: object, **_kwargs: object) -> Generator[None]:
    yield None


def _bare_request(server: DownstreamServer) -> Callable[..., Awaitable[Any]]:
    """``DownstreamServer._request`` without its cancel scopes (and error mapping)."""

    async def request(what: str, send: Callable[[Client], Awaitable[Any]], limit: float, peer: object) -> Any:
        client = server._client  # pyright: ignore[reportPrivateUsage]
        assert client is not None
        return await send(client)

    return request


async def _time(call: Call, calls: int) -> tuple[float, float, float]:
    """Mean and p50 wall time, and this process's CPU time, of ``calls`` sequential calls (µs/call)."""
    latencies: list[float] = []
    cpu0 = time.process_time()
    for _ in range(calls):
        t0 = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - t0)
    cpu = (time.process_time() - cpu0) / calls
    return statistics.fmean(latencies) * 1e6, statistics.median(latencies) * 1e6, cpu * 1e6


async def run(calls: int, rounds: int, profile_calls: int, top: int) -> dict[str, Any]:
    """Measure the variants, profile the full in-process path; return the figures."""
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        config_path = Path(tmp) / "orchestrator.yaml"
        entry = {"command": sys.executable, "args": ["-m", "tests.fakes.fault_server"], "cwd": str(REPO_ROOT)}
        config_path.write_text(json.dumps({"servers": {"f": entry}}), encoding="utf-8")
        config = load_config(config_path)
        async with DownstreamPool.running(config) as pool:
            await pool.wait_settled(60)
            server = OrchestratorServer(pool)
            downstream = pool.servers["f"]
            client = downstream._client  # pyright: ignore[reportPrivateUsage]
            if client is None:
                raise RuntimeError("the fault server did not start")
            session = client.session

            async def sdk() -> Any:
                return await client.call_tool("echo", ARGUMENTS, read_timeout_seconds=60)

            async def via_pool() -> Any:
                return await pool.call_tool("f__echo", ARGUMENTS)

            async def via_server() -> Any:
                result = await server.call("f__echo", ARGUMENTS)
                if result.is_error:
                    raise RuntimeError(f"call failed: {result.content}")
                return result

            validator = server._validator  # pyright: ignore[reportPrivateUsage]
            ablations: dict[str, list[tuple[object, str, object]]] = {
                "server - argument validation": [(validator, "problems", _no_validation)],
                "server - wait_settled": [(pool, "wait_settled", _noop)],
                "server - _request cancel scopes": [(downstream, "_request", _bare_request(downstream))],
                "server - SDK output-schema check": [(session, "validate_tool_result", _noop)],
                "server - SDK client OTel span": [(sdk_dispatcher, "otel_span", _null_span)],
            }
            ablations["server - all five"] = [p for patches in ablations.values() for p in patches]
            variants: dict[str, tuple[Call, list[tuple[object, str, object]]]] = {
                "sdk (downstream leg only)": (sdk, []),
                "pool.call_tool": (via_pool, []),
                "server.call (full, in-process)": (via_server, []),
                **{name: (via_server, patches) for name, patches in ablations.items()},
            }
            for _ in range(200):
                await via_server()
            means: dict[str, list[float]] = {name: [] for name in variants}
            p50s: dict[str, list[float]] = {name: [] for name in variants}
            cpus: dict[str, list[float]] = {name: [] for name in variants}
            for round_no in range(rounds):
                names = list(variants)
                shift = round_no % len(names)
                for name in names[shift:] + names[:shift]:
                    call, patches = variants[name]
                    with contextlib.ExitStack() as stack:
                        for target, attr, value in patches:
                            stack.enter_context(_patched(target, attr, value))
                        await _time(call, 50)  # settle after switching
                        mean, p50, cpu = await _time(call, calls)
                    means[name].append(mean)
                    p50s[name].append(p50)
                    cpus[name].append(cpu)
                print(f"round {round_no + 1}/{rounds} done", file=sys.stderr, flush=True)

            profiler = cProfile.Profile()
            profiler.enable()
            await _time(via_server, profile_calls)
            profiler.disable()

    full = "server.call (full, in-process)"
    base, base_cpu = statistics.median(p50s[full]), statistics.median(cpus[full])
    rows = [
        {
            "variant": name,
            "mean_us": round(statistics.median(means[name]), 1),
            "p50_us": round(statistics.median(p50s[name]), 1),
            "cpu_us": round(statistics.median(cpus[name]), 1),
            "p50_saving_us": round(base - statistics.median(p50s[name]), 1),
            "cpu_saving_us": round(base_cpu - statistics.median(cpus[name]), 1),
        }
        for name in variants
    ]
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return {"rows": rows, "profile": stream.getvalue(), "profile_calls": profile_calls}


def _markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| variant | mean µs/call | p50 µs/call | CPU µs/call (this process) | p50 saving | CPU saving |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['variant']} | {row['mean_us']:.0f} | {row['p50_us']:.0f} | {row['cpu_us']:.0f} "
            f"| {row['p50_saving_us']:.0f} | {row['cpu_saving_us']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the in-process measurements and print them."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile_proxy", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per variant per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--profile-calls", type=int, default=3000)
    parser.add_argument("--top", type=int, default=25, help="functions to list in each cProfile table")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    report = anyio.run(run, int(args.calls), int(args.rounds), int(args.profile_calls), int(args.top))
    print(_markdown(report["rows"]))
    print(f"\ncProfile of {report['profile_calls']} calls of OrchestratorServer.call:\n")
    print(report["profile"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
