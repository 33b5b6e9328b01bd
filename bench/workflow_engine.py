"""What the workflow executor costs above the calls it makes.

Run from the repository root::

    python -m bench.workflow_engine [--rounds 9] [--chain 200] [--width 20] [--depth 5]
                                    [--step-ms 50] [--items 1000] [--traced]
                                    [--out bench/results/workflow_engine.json]

Every call goes to an in-process invoker (no transport), so the figures are the executor's:

- **chain**: ``--chain`` steps, each needing the one before and passing its result on
  (``previous: ${{ steps.<before>.result.n }}``), whose calls return at once; against the same
  calls awaited in a plain loop. The difference divided by the steps is the executor's cost
  per step.
- **dag**: ``--depth`` layers of ``--width`` steps, each needing two steps of the layer before,
  each call sleeping ``--step-ms``; through the executor, and through a direct scheduler (plain
  anyio tasks with the same sleeps and the same dependencies, each started when its last need
  ends). The critical path is ``depth * step-ms``; the direct scheduler's makespan is what this
  machine can do at all.
- **for_each**: one step fanning out over ``--items`` items (``max_parallel`` 8, the default
  limit) whose calls return at once; against the same calls in a plain loop: cost per item.

Rounds run every measurement in turn, the order rotating each round; the report gives medians.
``--traced`` installs an OpenTelemetry SDK ``TracerProvider`` (spans made and ended, exported
nowhere), so the figures include making every span; without it the API is a no-op.
``--profile chain|dag|for_each`` runs that part through the executor under cProfile instead and
prints where its time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.metadata
import json
import os
import platform
import pstats
import statistics
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from bench._invokers import InstantInvoker, SleepingInvoker
from orchestrator.workflow import WorkflowSpec, compile_workflow, execute

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from orchestrator.workflow import ToolInvoker, WorkflowPlan

_BUDGET_MS_PER_STEP = 0.2
_BUDGET_RATIO = 0.9
"""Critical path / makespan: at least 0.9 (the makespan at most 1/0.9 of the critical path)."""


def _compile(name: str, steps: dict[str, Any], **extra: Any) -> WorkflowPlan:
    spec = WorkflowSpec.model_validate(
        {"version": 1, "name": name, "description": f"bench: {name}", "steps": steps, **extra}
    )
    return compile_workflow(spec, name)


def chain_plan(length: int) -> WorkflowPlan:
    """``length`` steps in a line, each passing the result of the one before on."""
    steps: dict[str, Any] = {"c0": {"tool": "bench.noop", "with": {"n": 0}}}
    for index in range(1, length):
        steps[f"c{index}"] = {
            "tool": "bench.noop",
            "needs": [f"c{index - 1}"],
            "with": {"n": index, "previous": f"${{{{ steps.c{index - 1}.result.n }}}}"},
        }
    return _compile("bench_chain", steps)


def dag_needs(width: int, depth: int) -> dict[str, list[str]]:
    """Step id -> its needs: ``depth`` layers of ``width``; step i needs steps i and i+1 of the layer before."""
    needs: dict[str, list[str]] = {}
    for layer in range(depth):
        for index in range(width):
            parents = sorted({index, (index + 1) % width}) if layer else []
            needs[f"s{layer}_{index}"] = [f"s{layer - 1}_{parent}" for parent in parents]
    return needs


def dag_plan(needs: dict[str, list[str]], width: int) -> WorkflowPlan:
    """The DAG of ``needs`` as a workflow whose calls run ``width`` at a time."""
    steps: dict[str, Any] = {}
    for number, (step_id, parents) in enumerate(needs.items()):
        step: dict[str, Any] = {"tool": "bench.sleep", "with": {"n": number}}
        if parents:
            step["needs"] = parents
        steps[step_id] = step
    return _compile("bench_dag", steps, limits={"max_parallel": width})


def for_each_plan() -> WorkflowPlan:
    """One step calling its tool once per item of ``input.items``."""
    steps = {
        "each": {"tool": "bench.noop", "for_each": "${{ input.items }}", "as": "item", "with": {"n": "${{ item }}"}}
    }
    schema = {"type": "object", "properties": {"items": {"type": "array"}}}
    return _compile("bench_for_each", steps, input=schema)


async def direct_schedule(needs: dict[str, list[str]], invoker: ToolInvoker) -> None:
    """Run the DAG with plain anyio tasks: each step's call starts when its last need ends."""
    waiting = {step_id: len(parents) for step_id, parents in needs.items()}
    dependents: dict[str, list[str]] = {step_id: [] for step_id in needs}
    for step_id, parents in needs.items():
        for parent in parents:
            dependents[parent].append(step_id)

    async with anyio.create_task_group() as task_group:

        async def step(step_id: str) -> None:
            await invoker.call_tool("bench", "sleep", {"n": step_id}, timeout=None, meta=None)
            for dependent in dependents[step_id]:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    task_group.start_soon(step, dependent)

        for step_id, count in waiting.items():
            if count == 0:
                task_group.start_soon(step, step_id)


async def _timed(run: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await run()
    return (time.perf_counter() - started) * 1000


def _measurements(args: argparse.Namespace) -> dict[str, Callable[[], Awaitable[None]]]:
    """Each measurement by name: ``<part>_executor`` and its baseline (``<part>_loop``, ``dag_direct``)."""
    instant = InstantInvoker()
    sleeping = SleepingInvoker(args.step_ms / 1000)
    chain = chain_plan(args.chain)
    needs = dag_needs(args.width, args.depth)
    dag = dag_plan(needs, args.width)
    fan = for_each_plan()
    items = list(range(args.items))

    async def chain_executor() -> None:
        result = await execute(chain, {}, instant)
        assert result.status == "succeeded", result.error

    async def chain_loop() -> None:
        for index in range(args.chain):
            arguments: dict[str, Any] = {"n": index, "previous": index - 1}
            await instant.call_tool("bench", "noop", arguments, timeout=None, meta=None)

    async def dag_executor() -> None:
        result = await execute(dag, {}, sleeping)
        assert result.status == "succeeded", result.error

    async def dag_direct() -> None:
        await direct_schedule(needs, sleeping)

    async def for_each_executor() -> None:
        result = await execute(fan, {"items": items}, instant)
        assert result.status == "succeeded", result.error
        assert len(result.steps["each"].result) == len(items)

    async def for_each_loop() -> None:
        for item in items:
            await instant.call_tool("bench", "noop", {"n": item}, timeout=None, meta=None)

    return {
        "chain_executor": chain_executor,
        "chain_loop": chain_loop,
        "dag_executor": dag_executor,
        "dag_direct": dag_direct,
        "for_each_executor": for_each_executor,
        "for_each_loop": for_each_loop,
    }


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
    measurements = _measurements(args)
    for run in measurements.values():  # warm-up, not counted
        await run()
    times: dict[str, list[float]] = {name: [] for name in measurements}
    names = list(measurements)
    for round_ in range(args.rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(await _timed(measurements[name]))
    medians = {name: statistics.median(values) for name, values in times.items()}

    critical_ms = args.depth * args.step_ms
    per_step = (medians["chain_executor"] - medians["chain_loop"]) / args.chain
    per_item = (medians["for_each_executor"] - medians["for_each_loop"]) / args.items
    return {
        "traced": args.traced,
        "rounds": args.rounds,
        "chain": {
            "steps": args.chain,
            "executor_ms": round(medians["chain_executor"], 2),
            "loop_ms": round(medians["chain_loop"], 2),
            "overhead_ms_per_step": round(per_step, 4),
            "budget_ms_per_step": _BUDGET_MS_PER_STEP,
        },
        "dag": {
            "steps": args.width * args.depth,
            "width": args.width,
            "depth": args.depth,
            "step_ms": args.step_ms,
            "critical_path_ms": critical_ms,
            "executor_ms": round(medians["dag_executor"], 1),
            "direct_ms": round(medians["dag_direct"], 1),
            "critical_path_over_executor": round(critical_ms / medians["dag_executor"], 3),
            "critical_path_over_direct": round(critical_ms / medians["dag_direct"], 3),
            "direct_over_executor": round(medians["dag_direct"] / medians["dag_executor"], 3),
            "budget_ratio": _BUDGET_RATIO,
        },
        "for_each": {
            "items": args.items,
            "executor_ms": round(medians["for_each_executor"], 2),
            "loop_ms": round(medians["for_each_loop"], 2),
            "overhead_ms_per_item": round(per_item, 4),
        },
        "rounds_ms": {name: [round(value, 2) for value in values] for name, values in times.items()},
        "machine": _machine(),
    }


async def _profile(args: argparse.Namespace) -> None:
    """Run ``<args.profile>_executor`` ``args.rounds`` times under cProfile and print where the time went."""
    run = _measurements(args)[f"{args.profile}_executor"]
    await run()  # warm-up, not profiled
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.rounds):
        await run()
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)


def _machine() -> dict[str, Any]:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = bool(
            subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, check=False).stdout
        )
    except OSError:
        head, dirty = "", False
    return {
        "cpus": os.cpu_count(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "python": platform.python_version(),
        "anyio": importlib.metadata.version("anyio"),
        "git_head": head,
        "git_dirty": dirty,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="What the workflow executor costs above the calls it makes.")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--chain", type=int, default=200, help="steps of the sequential chain")
    parser.add_argument("--width", type=int, default=20)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--step-ms", type=float, default=50.0)
    parser.add_argument("--items", type=int, default=1000, help="items of the for_each step")
    parser.add_argument("--traced", action="store_true", help="make every span (an SDK provider, no exporter)")
    parser.add_argument("--out", type=Path, help="also write the report here as JSON")
    parser.add_argument(
        "--profile",
        choices=["chain", "dag", "for_each"],
        help="instead: profile that part through the executor (cProfile, --rounds runs) and print the top functions",
    )
    args = parser.parse_args()
    if args.traced:
        trace.set_tracer_provider(TracerProvider())
    if args.profile is not None:
        anyio.run(_profile, args)
        return
    report = anyio.run(_measure, args)
    chain, dag, fan = report["chain"], report["dag"], report["for_each"]
    print(
        f"chain of {chain['steps']}: executor {chain['executor_ms']:g} ms, loop {chain['loop_ms']:g} ms, "
        f"{chain['overhead_ms_per_step']:.3f} ms per step (budget {_BUDGET_MS_PER_STEP:g})"
    )
    print(
        f"dag {dag['width']}x{dag['depth']} of {dag['step_ms']:g} ms: critical path {dag['critical_path_ms']:g} ms, "
        f"executor {dag['executor_ms']:g} ms ({dag['critical_path_over_executor']:.3f}), "
        f"direct {dag['direct_ms']:g} ms ({dag['critical_path_over_direct']:.3f}), "
        f"direct/executor {dag['direct_over_executor']:.3f} (budget {_BUDGET_RATIO:g})"
    )
    print(
        f"for_each of {fan['items']}: executor {fan['executor_ms']:g} ms, loop {fan['loop_ms']:g} ms, "
        f"{fan['overhead_ms_per_item']:.3f} ms per item"
    )
    print(f"traced: {report['traced']}, load average {report['machine']['load_average']}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
