"""Properties over random graphs: topological order respects every edge, cycles are always
rejected (and named with real edges), and random DAGs run every step exactly once, after its needs."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import WorkflowDefinitionError
from orchestrator.workflow import WorkflowSpec, compile_workflow, execute
from tests.workflow.helpers import Call, FunctionInvoker

PROPERTY = settings(max_examples=150, deadline=None, derandomize=True)


@dataclass(frozen=True)
class Graph:
    """Steps in file order, and what each needs."""

    needs: dict[str, list[str]]

    def spec(self, max_parallel: int = 8) -> WorkflowSpec:
        steps = {step: {"tool": f"s.{step}", "needs": needs} for step, needs in self.needs.items()}
        document = {
            "version": 1,
            "name": "random",
            "description": "A random graph.",
            "limits": {"max_parallel": max_parallel},
            "steps": steps,
        }
        return WorkflowSpec.model_validate(document)

    def has_cycle(self) -> bool:
        state: dict[str, str] = {}

        def visit(node: str) -> bool:
            state[node] = "open"
            for need in self.needs[node]:
                if state.get(need) == "open" or (need not in state and visit(need)):
                    return True
            state[node] = "done"
            return False

        return any(node not in state and visit(node) for node in self.needs)


@st.composite
def dags(draw: st.DrawFn) -> Graph:
    """Acyclic: step i may only need steps with a lower rank; file order is shuffled."""
    size = draw(st.integers(min_value=1, max_value=12))
    names = [f"s{i}" for i in range(size)]
    needs = {
        name: draw(st.lists(st.sampled_from(names[:rank]), unique=True, max_size=4)) if rank else []
        for rank, name in enumerate(names)
    }
    order = draw(st.permutations(names))
    return Graph({name: needs[name] for name in order})


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    """Any directed graph, self-loops included."""
    size = draw(st.integers(min_value=1, max_value=8))
    names = [f"s{i}" for i in range(size)]
    return Graph({name: draw(st.lists(st.sampled_from(names), unique=True, max_size=3)) for name in names})


@PROPERTY
@given(dags())
def test_topological_order_respects_every_edge(graph: Graph) -> None:
    plan = compile_workflow(graph.spec(), "random.yaml")
    position = {step: index for index, step in enumerate(plan.order)}

    assert sorted(plan.order) == sorted(graph.needs)
    for step, needs in graph.needs.items():
        assert all(position[need] < position[step] for need in needs)
        assert set(plan.steps[step].needs) == set(needs)
        assert all(step in plan.steps[need].dependents for need in needs)


@PROPERTY
@given(graphs())
def test_a_graph_compiles_exactly_when_it_has_no_cycle_and_each_named_cycle_is_real(graph: Graph) -> None:
    try:
        compile_workflow(graph.spec(), "random.yaml")
    except WorkflowDefinitionError as exc:
        assert graph.has_cycle()
        cycles = [p.split("needs form a cycle: ")[1] for p in exc.problems if "needs form a cycle" in p]
        assert cycles
        for cycle in cycles:
            nodes = cycle.split(" -> ")
            assert nodes[0] == nodes[-1]
            assert all(after in graph.needs[before] for before, after in itertools.pairwise(nodes))
    else:
        assert not graph.has_cycle()


@PROPERTY
@given(dags(), st.integers(min_value=1, max_value=4))
def test_random_dags_run_every_step_exactly_once_and_after_its_needs(graph: Graph, max_parallel: int) -> None:
    plan = compile_workflow(graph.spec(max_parallel), "random.yaml")
    log: list[tuple[str, str]] = []
    in_flight = 0
    peak = 0

    async def handler(call: Call) -> Any:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        log.append(("start", call.tool))
        await anyio.lowlevel.checkpoint()  # let other ready steps interleave
        log.append(("end", call.tool))
        in_flight -= 1
        return {}

    async def main() -> str:
        with anyio.fail_after(10):
            return (await execute(plan, {}, FunctionInvoker(handler))).status

    assert anyio.run(main) == "succeeded"
    starts = [tool for kind, tool in log if kind == "start"]
    assert sorted(starts) == sorted(graph.needs)
    for step, needs in graph.needs.items():
        assert all(log.index(("end", need)) < log.index(("start", step)) for need in needs)
    assert peak <= max_parallel
