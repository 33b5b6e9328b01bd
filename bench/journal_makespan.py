"""What the run journal costs: the makespan of a 100-step DAG, journalled and not.

Run from the repository root::

    python -m bench.journal_makespan [--rounds 9] [--width 20] [--depth 5] [--step-ms 50]
                                     [--state-url sqlite:///path.db | postgresql://...]
                                     [--out bench/results/journal.json]

The workflow has ``depth`` layers of ``width`` steps (100 by default); every step after the
first layer needs two steps of the layer before, and each step's call sleeps ``step-ms``
(an in-process invoker: the figure is the executor's and the journal's, not a transport's).
The critical path is ``depth * step-ms``. Steps are idempotent (as read-only tools are), so
only their outcomes are waited for; ``--not-idempotent`` makes every step wait for its start
to be durable too, before its call.

Each round runs the workflow twice, in alternating order: once with ``execute`` alone (as a
composite ran before runs were durable) and once through ``RunManager.run``, which creates the
run row, journals every step's start and outcome (group commit: one transaction per burst) and
writes the run's end. The report gives the median makespan of each and their ratio; the
journal's budget is at most 1.10.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
from sqlalchemy.engine import make_url

from bench._invokers import SleepingInvoker
from orchestrator.runs import RunManager, RunRequest
from orchestrator.store import RunPrincipal, open_store
from orchestrator.workflow import WorkflowSpec, compile_workflow, execute

if TYPE_CHECKING:
    from orchestrator.store import RunRecord
    from orchestrator.workflow import RunResult, ToolInvoker, WorkflowPlan

BUDGET = 1.10


class _Hooks:
    """The bench resumes nothing: only ``outcome`` is used."""

    def __init__(self, plan: WorkflowPlan, invoker: ToolInvoker) -> None:
        self._plan = plan
        self._invoker = invoker

    async def resumable_plan(self, record: RunRecord) -> WorkflowPlan:
        return self._plan

    def resumed_invoker(self, record: RunRecord) -> ToolInvoker:
        return self._invoker

    def outcome(self, result: RunResult) -> types.CallToolResult:
        return types.CallToolResult(content=[], structured_content={"status": result.status})


def dag_plan(width: int, depth: int, *, idempotent: bool) -> WorkflowPlan:
    """``depth`` layers of ``width`` steps; each step needs two of the layer before."""
    steps: dict[str, Any] = {}
    for layer in range(depth):
        for index in range(width):
            step: dict[str, Any] = {
                "tool": "bench.sleep",
                "with": {"n": layer * width + index},
                "idempotent": idempotent,
            }
            if layer:
                parents = {index, (index + 1) % width}
                step["needs"] = [f"s{layer - 1}_{parent}" for parent in sorted(parents)]
            steps[f"s{layer}_{index}"] = step
    spec = WorkflowSpec.model_validate(
        {
            "version": 1,
            "name": "bench_dag",
            "description": "a wide DAG of sleeps",
            "limits": {"max_parallel": width},
            "steps": steps,
        }
    )
    return compile_workflow(spec, "bench_dag")


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
    plan = dag_plan(args.width, args.depth, idempotent=not args.not_idempotent)
    invoker = SleepingInvoker(args.step_ms / 1000)
    plain: list[float] = []
    journalled: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        url = args.state_url or f"sqlite:///{Path(folder) / 'state.db'}"
        url = url.replace("sqlite:", "sqlite+aiosqlite:", 1).replace("postgresql:", "postgresql+asyncpg:", 1)
        async with open_store(make_url(url)) as store, anyio.create_task_group() as tg:
            manager = RunManager(store, _Hooks(plan, invoker), lease=30.0)
            await tg.start(manager.serve)

            async def run_plain() -> None:
                started = time.perf_counter()
                result = await execute(plan, {}, invoker)
                plain.append(time.perf_counter() - started)
                assert result.status == "succeeded", result.error

            async def run_journalled() -> None:
                started = time.perf_counter()
                result = await manager.run(RunRequest(plan, {}, RunPrincipal(None), invoker))
                journalled.append(time.perf_counter() - started)
                assert result.status == "succeeded", result.error

            await run_plain()  # warm-up, not counted
            await run_journalled()
            plain.clear()
            journalled.clear()
            for round_ in range(args.rounds):
                first, second = (run_plain, run_journalled) if round_ % 2 == 0 else (run_journalled, run_plain)
                await first()
                await second()
            tg.cancel_scope.cancel()
    plain_ms, journal_ms = statistics.median(plain) * 1000, statistics.median(journalled) * 1000
    return {
        "steps": len(plan.steps),
        "width": args.width,
        "depth": args.depth,
        "step_ms": args.step_ms,
        "critical_path_ms": args.depth * args.step_ms,
        "rounds": args.rounds,
        "state": "postgresql" if args.state_url and args.state_url.startswith("postgresql") else "sqlite",
        "idempotent_steps": not args.not_idempotent,
        "plain_ms": round(plain_ms, 1),
        "journalled_ms": round(journal_ms, 1),
        "ratio": round(journal_ms / plain_ms, 3),
        "budget": BUDGET,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="What the run journal costs: a 100-step DAG's makespan.")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--width", type=int, default=20)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--step-ms", type=float, default=50.0)
    parser.add_argument("--state-url", help="the state database (default: a temporary SQLite file)")
    parser.add_argument(
        "--not-idempotent",
        action="store_true",
        help="steps that may not be repeated: each waits for its start to be durable before calling",
    )
    parser.add_argument("--out", type=Path, help="also write the report here as JSON")
    args = parser.parse_args()
    report = anyio.run(_measure, args)
    print(
        f"{report['steps']} {'idempotent' if report['idempotent_steps'] else 'non-idempotent'} steps, "
        f"critical path {report['critical_path_ms']:g} ms, {report['state']}: "
        f"plain {report['plain_ms']:g} ms, journalled {report['journalled_ms']:g} ms, "
        f"ratio {report['ratio']:.3f} (budget {BUDGET:.2f})"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
