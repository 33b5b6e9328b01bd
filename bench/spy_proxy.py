"""Sample the real ``orchestrator serve`` process with py-spy while a client drives calls through it.

Run from the repository root (py-spy is not a project dependency: ``.venv/bin/pip install py-spy``)::

    python -m bench.spy_proxy [--seconds 10] [--rate 250] [--mode auto] [--raw /tmp/orchestrator.raw]

Starts ``orchestrator serve`` over stdio on one fault server (stdio), warms up, then runs
``py-spy record --gil --nonblocking`` on the aggregator process while sequential ``echo`` calls go
through it. The samples (only those holding the GIL, i.e. Python CPU time) are put into buckets by
their innermost frames and printed as a table; ``--raw`` keeps py-spy's collapsed stacks for a
flame graph. ``python -m bench.spy_proxy --summarize FILE`` only summarises an existing raw file.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import psutil
from mcp import Client, StdioServerParameters, stdio_client

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["main", "summarize"]

REPO_ROOT = Path(__file__).resolve().parents[1]
ARGUMENTS: dict[str, Any] = {"text": "hello, benchmark"}

Frames = list[str]

_THREAD_MARKERS = ("WorkerThread", "to_thread", "_fileio.py", "threading.py", "queue.py")
_WAKEUP_LEAVES = ("_read_from_self", "_write_to_self", "call_soon_threadsafe")


def _any(frames: Frames, *needles: str) -> bool:
    return any(needle in frame for frame in frames for needle in needles)


def _leaf(frames: Frames, *needles: str) -> bool:
    return any(needle in frames[-1] for needle in needles)


# First matching rule wins; rules look at the innermost frames first.
RULES: list[tuple[str, Callable[[Frames], bool]]] = [
    (
        "jsonschema: orchestrator argument validation (server/_validate.py)",
        lambda f: _any(f, "jsonschema", "referencing") and _any(f, "server/_validate.py"),
    ),
    (
        "jsonschema: SDK client re-validates the downstream's structuredContent",
        lambda f: _any(f, "jsonschema", "referencing") and _any(f, "validate_tool_result"),
    ),
    (
        "OpenTelemetry API (no SDK configured: no-op spans, propagation)",
        lambda f: _any(f[-4:], "opentelemetry", "_otel.py"),
    ),
    (
        "upstream stdout writer: worker-thread hand-off (SDK stdio_server default stdout)",
        lambda f: _any(f, *_THREAD_MARKERS) or _leaf(f, *_WAKEUP_LEAVES),
    ),
    ("pydantic / mcp_types: validate, serialize, JSON", lambda f: _leaf(f, "pydantic", "mcp_types", "json/")),
    ("stdio pipe I/O and line splitting", lambda f: _any(f[-3:], "_StdinLines", "downstream/_stdio.py")),
    ("anyio: memory streams, cancel scopes, task groups", lambda f: _leaf(f, "anyio/")),
    ("asyncio event loop, selectors, contextvars", lambda f: _leaf(f, "asyncio/", "selectors.py", "contextvars")),
    ("SDK logic: dispatcher, session, server runner", lambda f: _leaf(f, "mcp/")),
    ("orchestrator code (own frames)", lambda f: _leaf(f, "orchestrator/")),
]


def summarize(raw: Path) -> list[tuple[str, float]]:
    """Share of samples per bucket, largest first, from a py-spy ``--format raw`` file."""
    buckets: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [re.sub(r".*site-packages/", "", frame) for frame in stack.split(";")]
        count = int(count_text)
        total += count
        for name, rule in RULES:
            if rule(frames):
                buckets[name] += count
                break
        else:
            buckets["other (stdlib: typing, weakref, contextlib, dataclasses ...)"] += count
    return [(name, 100.0 * count / total) for name, count in buckets.most_common()] if total else []


def _markdown(rows: Sequence[tuple[str, float]]) -> str:
    lines = ["| where the aggregator's CPU goes (py-spy, GIL-holding samples) | share |", "|---|---:|"]
    lines += [f"| {name} | {share:.1f}% |" for name, share in rows]
    return "\n".join(lines)


async def _drive(seconds: float, rate: int, mode: str, raw: Path) -> float:
    """Run the aggregator, sample it with py-spy while calling; returns mean ms per call."""
    spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if spy is None:
        raise SystemExit("py-spy not found: .venv/bin/pip install py-spy")
    with tempfile.TemporaryDirectory(prefix="bench-spy-") as tmp:
        config = Path(tmp) / "orchestrator.yaml"
        entry = {"command": sys.executable, "args": ["-m", "tests.fakes.fault_server"], "cwd": str(REPO_ROOT)}
        config.write_text(json.dumps({"servers": {"f": entry}}), encoding="utf-8")
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "orchestrator", "serve", "-c", str(config)], cwd=str(REPO_ROOT)
        )
        before = {p.pid for p in psutil.Process().children()}
        with (Path(tmp) / "stderr.log").open("w", encoding="utf-8") as errlog:
            async with Client(stdio_client(params, errlog=errlog), mode="legacy" if mode == "legacy" else "auto") as c:
                await c.list_tools()
                for _ in range(300):
                    await c.call_tool("f__echo", ARGUMENTS)
                (aggregator,) = [p for p in psutil.Process().children() if p.pid not in before]
                command = [
                    spy,
                    "record",
                    "--pid",
                    str(aggregator.pid),
                    "--gil",
                    "--nonblocking",
                    "--rate",
                    str(rate),
                    "--duration",
                    str(int(seconds)),
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                ]
                process = await anyio.open_process(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                calls = 0
                started = time.perf_counter()
                while process.returncode is None:
                    await c.call_tool("f__echo", ARGUMENTS)
                    calls += 1
                await process.wait()
                return (time.perf_counter() - started) / max(calls, 1) * 1e3


def main(argv: Sequence[str] | None = None) -> int:
    """Profile (or only summarise) and print the buckets."""
    parser = argparse.ArgumentParser(prog="python -m bench.spy_proxy", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--mode", choices=["auto", "legacy"], default="auto", help="the driving client's mode")
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--summarize", type=Path, metavar="FILE", help="only summarise this raw file")
    args = parser.parse_args(argv)
    if args.summarize is not None:
        print(_markdown(summarize(args.summarize)))
        return 0
    raw: Path = args.raw or Path(tempfile.gettempdir()) / f"orchestrator-{os.getpid()}.raw"
    ms = anyio.run(_drive, float(args.seconds), int(args.rate), str(args.mode), raw)
    print(f"{ms:.2f} ms per call while sampled (sampling slows the process down); stacks: {raw}\n")
    print(_markdown(summarize(raw)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
