"""The whole comparison in one go (``make bench``): the hop against a direct call and FastMCP's proxy,
start-up with many stdio servers, a big catalogue, workflow shapes, tracing on and off.

Run from the repository root::

    python -m bench [--quick] [--out bench/results/field.json]

Each part is its own benchmark, run as it is from the command line, one after another, each in a
process of its own (a part that sets a global, as ``--traced`` sets OpenTelemetry's tracer
provider, cannot leak into the next); each part interleaves its own rounds:

==========================================  ===============================================
part                                        command
==========================================  ===============================================
per call: direct, orchestrator, FastMCP     ``python -m bench.proxy_latency`` (every path, both
proxy over stdio and HTTP, tracing on/off   client modes: p50, p99, calls/s, CPU per call)
start-up with 10 stdio servers              ``python -m bench.startup --servers 10``
a 10,000-tool catalogue                     ``python -m bench.big_catalogue --tools 10000``
workflow shapes: chain, layered DAG,        ``python -m bench.workflow_engine``, then again
for-each of 1,000; tracing off and on       with ``--traced``
==========================================  ===============================================

The parts' own output goes to stderr as they run; at the end the tables go to stdout and every
part's JSON, the machine and the commands go to ``--out``. ``--quick`` runs every part small (a
smoke test of the harness, not figures to quote).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._machine import git, machine, version
from bench.big_catalogue import fastmcp_installed

if TYPE_CHECKING:
    from collections.abc import Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Part:
    """One benchmark of the run: its module, its arguments (``--out`` is added), and its full and quick sizes."""

    name: str
    module: str
    full: tuple[str, ...]
    quick: tuple[str, ...]


PARTS = (
    Part(
        "per_call", "bench.proxy_latency", ("--rounds", "5"), ("--rounds", "1", "--calls", "60", "--phase-seconds", "1")
    ),
    Part("startup", "bench.startup", ("--servers", "10", "--rounds", "5"), ("--servers", "3", "--rounds", "1")),
    Part(
        "catalogue", "bench.big_catalogue", ("--tools", "10000", "--rounds", "5"), ("--tools", "500", "--rounds", "1")
    ),
    Part("workflow", "bench.workflow_engine", ("--rounds", "15"), ("--rounds", "1", "--chain", "20", "--items", "50")),
    Part(
        "workflow_traced",
        "bench.workflow_engine",
        ("--rounds", "15", "--traced"),
        ("--rounds", "1", "--chain", "20", "--items", "50", "--traced"),
    ),
)


def _machine() -> dict[str, Any]:
    return machine(fastmcp=version("fastmcp"))


def _run_part(part: Part, quick: bool, folder: Path) -> tuple[list[str], dict[str, Any], float]:
    """Run one part with its output to stderr; its command line, JSON report and seconds."""
    out = folder / f"{part.name}.json"
    command = [sys.executable, "-m", part.module, *(part.quick if quick else part.full), "--out", str(out)]
    print(f"\n== {part.name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO_ROOT, stdout=sys.stderr, check=True)
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return command, report, time.perf_counter() - started


def _startup_table(report: dict[str, Any]) -> list[str]:
    fleet = report["fleet"]
    return [
        f"| {fleet['servers']} stdio servers, {fleet['cores']} cores | ms | / floor |",
        "|---|---:|---:|",
        f"| one server alone: CPU to its `tools/list` answer | {fleet['single_server_cpu_ms']:.0f} | |",
        f"| floor: {fleet['servers']} x that CPU / {fleet['cores']} cores | {fleet['floor_ms']:.0f} | 1.00x |",
        f"| floor with `serve`'s own CPU added | {fleet['floor_with_serve_cpu_ms']:.0f} "
        f"| {fleet['floor_with_serve_cpu_ms'] / fleet['floor_ms']:.2f}x |",
        f"| direct: the {fleet['servers']} started and listed by the client itself | {fleet['direct_wall_ms']:.0f} "
        f"| {fleet['direct_over_floor']:.2f}x |",
        f"| `orchestrator serve`: launch to all {fleet['tools_listed']} tools listed | {fleet['serve_wall_ms']:.0f} "
        f"| **{fleet['serve_over_floor']:.2f}x** |",
        "",
        f"`serve` / direct: {fleet['serve_over_direct']:.2f}x. CPU to that answer: "
        f"`serve` {fleet['serve_cpu_ms']:.0f} ms, its servers {fleet['serve_servers_cpu_ms']:.0f} ms "
        f"(direct: {fleet['direct_servers_cpu_ms']:.0f} ms). "
        f"One server alone: {fleet['single_server_wall_ms']:.0f} ms wall. `serve` with one server: "
        f"{report['serve_cpu_ms']:.0f} ms CPU, {report['serve_wall_ms']:.0f} ms wall; "
        f"`import orchestrator.cli` {report['import_cli_ms']:.0f} ms (`-X importtime`).",
    ]


def _catalogue_table(report: dict[str, Any]) -> list[str]:
    rows = [
        ("direct (SDK server)", report["direct_p50_s"], 1.0, report["server_cpu_per_list_s"], report["server_rss_mb"]),
        (
            "orchestrator",
            report["proxied_p50_s"],
            report["ratio"],
            report["aggregator_cpu_per_list_s"],
            report["aggregator_rss_mb"],
        ),
    ]
    if "fastmcp_p50_s" in report:
        rows.append(
            (
                "FastMCP proxy",
                report["fastmcp_p50_s"],
                report["fastmcp_ratio"],
                report["fastmcp_cpu_per_list_s"],
                report["fastmcp_rss_mb"],
            )
        )
    lines = [
        f"| {report['tools']:,} tools, stdio | `tools/list` p50 s | / direct | CPU s per list | RSS MB |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {name} | {p50:.3f} | {ratio:.2f}x | {cpu:.3f} | {rss:.0f} |" for name, p50, ratio, cpu, rss in rows]
    return lines


def _workflow_table(plain: dict[str, Any], traced: dict[str, Any]) -> list[str]:
    chain, dag, fan = plain["chain"], plain["dag"], plain["for_each"]
    traced_chain, traced_dag, traced_fan = traced["chain"], traced["dag"], traced["for_each"]
    return [
        "| shape | executor ms | baseline ms | the executor's cost | traced: executor ms | traced: cost "
        "| tracing on / off, executor |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| chain of {chain['steps']} no-op steps (baseline: a plain loop) | {chain['executor_ms']:.2f} "
        f"| {chain['loop_ms']:.2f} | {chain['overhead_ms_per_step']:.3f} ms per step "
        f"| {traced_chain['executor_ms']:.2f} | {traced_chain['overhead_ms_per_step']:.3f} ms per step "
        f"| {traced_chain['executor_ms'] / chain['executor_ms']:.2f}x |",
        f"| layered DAG, {dag['depth']} layers of {dag['width']}, {dag['step_ms']:g} ms calls (baseline: a direct "
        f"scheduler) | {dag['executor_ms']:.1f} | {dag['direct_ms']:.1f} "
        f"| critical path / makespan {dag['critical_path_over_executor']:.3f} "
        f"(direct {dag['critical_path_over_direct']:.3f}) "
        f"| {traced_dag['executor_ms']:.1f} | {traced_dag['critical_path_over_executor']:.3f} "
        f"| {traced_dag['executor_ms'] / dag['executor_ms']:.2f}x |",
        f"| for-each of {fan['items']:,} no-op calls (baseline: a plain loop) | {fan['executor_ms']:.2f} "
        f"| {fan['loop_ms']:.2f} | {fan['overhead_ms_per_item']:.3f} ms per item "
        f"| {traced_fan['executor_ms']:.2f} | {traced_fan['overhead_ms_per_item']:.3f} ms per item "
        f"| {traced_fan['executor_ms'] / fan['executor_ms']:.2f}x |",
        "",
        f"Budgets: at most {chain['budget_ms_per_step']:g} ms per chain step; critical path / makespan at least "
        f"{dag['budget_ratio']:g} (critical path {dag['critical_path_ms']:g} ms). Traced: an OpenTelemetry SDK "
        "tracer provider makes every span, exporting nowhere; each is a run of its own, the rounds rotating inside it.",
    ]


def _markdown(machine: dict[str, Any], reports: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"Machine: {machine['cores']} cores ({machine['cpu_model'] or 'unknown CPU'}), {machine['platform']}, "
        f"CPython {machine['python']}, mcp {machine['mcp']}, anyio {machine['anyio']}, FastMCP {machine['fastmcp']}; "
        f"load average {machine['load_average'][0]:g} at the start.",
        "",
        "### Per call: direct, orchestrator, FastMCP proxy",
        "",
        reports["per_call"]["markdown"],
        "",
        "### Start-up with many stdio servers",
        "",
        *_startup_table(reports["startup"]),
        "",
        "### A big catalogue",
        "",
        *_catalogue_table(reports["catalogue"]),
        "",
        "### Workflow shapes, tracing off and on",
        "",
        *_workflow_table(reports["workflow"], reports["workflow_traced"]),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every part, write the JSON, print the tables."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="every part small: a smoke test, not figures")
    parser.add_argument("--out", type=Path, default=Path("bench/results/field.json"), help="the JSON results file")
    args = parser.parse_args(argv)
    if not fastmcp_installed():
        parser.error("the comparison needs FastMCP: pip install -e '.[bench]' (make bench does)")
    machine = _machine()
    began = time.perf_counter()
    reports: dict[str, dict[str, Any]] = {}
    commands: dict[str, str] = {}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        for part in PARTS:
            command, reports[part.name], seconds[part.name] = _run_part(part, args.quick, Path(folder))
            commands[part.name] = "python " + " ".join(command[1:-2])
    markdown = _markdown(machine, reports)
    total = time.perf_counter() - began
    result: dict[str, Any] = {
        "benchmark": "field",
        "quick": args.quick,
        "git": {"head": git("rev-parse", "--short", "HEAD"), "dirty": bool(git("status", "--porcelain"))},
        "machine": machine,
        "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
        "seconds": {name: round(value, 1) for name, value in seconds.items()} | {"total": round(total, 1)},
        "commands": commands,
        "parts": reports,
        "markdown": markdown,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown)
    print(f"\n{total:.0f} s in all; results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
