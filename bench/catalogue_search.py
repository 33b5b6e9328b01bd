"""Search mode, measured: manifest tokens, recall of ``search_tools``, and search latency.

Run from the repository root (after ``make setup``; offline)::

    python -m bench.catalogue_search [--searches 400] [--large 10000] [--latency-only]
        [--out bench/results/catalogue_search.json]

The catalogue is real: ``bench/data/tool_catalogue.json`` holds the ``tools/list`` responses of
13 real MCP servers (made by ``python -m bench.snapshot_tools``; each list names its package and
version), exposed as ``{server key}__{tool name}`` as the aggregator's default naming does. The task
set, ``bench/data/catalogue_tasks.yaml``, is 60 requests phrased as users phrase them, each with
the tool(s) that satisfy it; ``bench/data/catalogue_tasks_heldout.yaml`` is 25 more, written before
the ranking was tuned on the 60 and never tuned on (its recall is reported beside theirs).

Reported:

* tokens of the initial manifest (``count_tokens``: o200k_base with the ``search`` extra), full
  mode (the JSON of every tool as ``tools/list`` carries them) against search mode (the
  meta-tools as ``orchestrator serve`` lists them with ``catalog.plans`` on:
  ``search_mode_tools``), for the whole real catalogue and for its first 150 tools;
* recall@1 and recall@5 of ``ToolIndex.search`` over both task sets (a task counts when one of its
  tools is among the first k hits), for each signal combination from plain BM25 over names and
  descriptions up to the full hybrid;
* index build time at 150 tools and at ``--large`` tools, and search latency p50/p95 at
  ``--large`` tools: cold (the index keeps no query embedding, so every search embeds its query)
  and warm (``--searches`` searches cycling through the task sets' queries, whose embeddings the
  index keeps after their first search). The large
  catalogue replicates the real tools under distinct server keys (``github`` -> ``github7``, so
  ``github7__create_issue``): every exposed name and server key differs, as in a real large
  catalogue, while the descriptions (and so the embedder's texts, which leave the server prefix
  out) repeat. Its build time therefore counts each distinct text's embedding once; the cost of
  one embedding is reported separately (a catalogue of 10,000 distinct tools costs that times
  10,000, once, in the background; later builds reuse them).

``--latency-only`` measures the search latencies at ``--large`` tools alone (no tokens, recall or
small builds): a quicker run when only the search path changed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mcp_types as types
import yaml

from orchestrator.config import CatalogSpec
from orchestrator.search import (
    EMBEDDING_MODEL,
    TOKEN_COUNT_METHOD,
    WORD_VECTORS_MODEL,
    IndexedTool,
    LexicalOptions,
    RankingOptions,
    ToolIndex,
    count_tokens,
    estimate_tokens,
)
from orchestrator.server._plans import run_plan_tool
from orchestrator.server._search_mode import SearchMode

if TYPE_CHECKING:
    from collections.abc import Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO_ROOT / "bench" / "data" / "tool_catalogue.json"
TASKS = REPO_ROOT / "bench" / "data" / "catalogue_tasks.yaml"
HELDOUT_TASKS = REPO_ROOT / "bench" / "data" / "catalogue_tasks_heldout.yaml"
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "catalogue_search.json"

MANIFEST_RATIO_TARGET = 0.05
RECALL_AT_5_TARGET = 0.9
LATENCY_P50_TARGET_MS = 20.0


def search_mode_tools() -> list[dict[str, Any]]:
    """The manifest of search mode as served, with plans on: search_tools, call_tool and run_plan."""
    spec = CatalogSpec(mode="search", plans=True)
    listed = [*SearchMode(lambda: spec).listed(()), run_plan_tool(spec.plan_limits)]
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in listed]


@dataclass(frozen=True, slots=True)
class Task:
    """A request and the tools that satisfy it."""

    query: str
    tools: frozenset[str]


COLD = RankingOptions(query_cache=0)
"""The shipped signals, with no query embedding kept."""


def _lexical_only(*, stemming: bool, parameters: bool) -> RankingOptions:
    """BM25 alone, without field weights or boosts: the first lines of the signal table."""
    lexical = LexicalOptions(stemming=stemming, parameters=parameters, field_weights=False)
    return RankingOptions(lexical, boosts=False, embeddings=False, word_vectors=False)


SIGNALS: list[tuple[str, RankingOptions]] = [
    ("BM25, names + descriptions", _lexical_only(stemming=False, parameters=False)),
    ("+ stemming", _lexical_only(stemming=True, parameters=False)),
    ("+ parameters, titles, server keys", _lexical_only(stemming=True, parameters=True)),
    ("+ field weights", RankingOptions(LexicalOptions(), boosts=False, embeddings=False, word_vectors=False)),
    (
        "+ server/composite boosts (lexical, as shipped without the extra)",
        RankingOptions(embeddings=False, word_vectors=False),
    ),
    ("embeddings alone (e5)", RankingOptions(lexical_on=False, boosts=False, word_vectors=False)),
    ("word vectors alone (WordLlama)", RankingOptions(lexical_on=False, boosts=False, embeddings=False)),
    ("BM25 + boosts + word vectors", RankingOptions(embeddings=False)),
    ("BM25 + boosts + embeddings", RankingOptions(word_vectors=False)),
    ("BM25 + boosts + embeddings + word vectors (as shipped)", RankingOptions()),
]
"""Signal combinations: the lexical ones each add one to the line before; then the dense ones alone and fused."""


def load_catalogue(path: Path = SNAPSHOT) -> list[IndexedTool]:
    """The snapshot's tools under their exposed names (``{server key}__{tool}``)."""
    snapshot = json.loads(path.read_text(encoding="utf-8"))
    return [
        IndexedTool(types.Tool.model_validate({**tool, "name": f"{server['key']}__{tool['name']}"}), server["key"])
        for server in snapshot["servers"]
        for tool in server["tools"]
    ]


def load_tasks(catalogue: Sequence[IndexedTool], path: Path = TASKS) -> list[Task]:
    """The task set, checked against the catalogue.

    Raises:
        ValueError: A task names a tool the catalogue does not have.
    """
    names = {entry.tool.name for entry in catalogue}
    tasks = [
        Task(item["query"], frozenset(item["tools"]))
        for item in yaml.safe_load(path.read_text(encoding="utf-8"))["tasks"]
    ]
    unknown = sorted(name for task in tasks for name in task.tools - names)
    if unknown:
        raise ValueError(f"{path.name}: tools not in the catalogue: {', '.join(unknown)}")
    return tasks


def recall(index: ToolIndex, tasks: Sequence[Task], k: int) -> float:
    """Share of tasks with one of their tools among the first k hits."""
    found = sum(1 for task in tasks if task.tools & {hit.name for hit in index.search(task.query, limit=k)})
    return found / len(tasks)


def misses(index: ToolIndex, tasks: Sequence[Task], k: int) -> list[dict[str, Any]]:
    """Tasks none of whose tools is among the first k hits, with what came instead."""
    missed: list[dict[str, Any]] = []
    for task in tasks:
        hits = [hit.name for hit in index.search(task.query, limit=k)]
        if not task.tools & set(hits):
            missed.append({"query": task.query, "wanted": sorted(task.tools), "got": hits})
    return missed


def manifest_json(tools: Sequence[dict[str, Any]]) -> str:
    """A tools/list result as it goes on the wire (compact JSON)."""
    return json.dumps({"tools": list(tools)}, separators=(",", ":"), ensure_ascii=False)


def _wire(entry: IndexedTool) -> dict[str, Any]:
    return entry.tool.model_dump(by_alias=True, mode="json", exclude_none=True)


def manifest_tokens(catalogue: Sequence[IndexedTool]) -> dict[str, Any]:
    """Tokens of the full manifest and of the search-mode one, and their ratio."""
    full_text = manifest_json([_wire(entry) for entry in catalogue])
    search_text = manifest_json(search_mode_tools())
    started = time.perf_counter()
    full = count_tokens(full_text)
    elapsed_ms = (time.perf_counter() - started) * 1000
    search = count_tokens(search_text)
    return {
        "tools": len(catalogue),
        "full_tokens": full,
        "search_tokens": search,
        "ratio": search / full,
        "full_estimate": estimate_tokens(full_text),
        "count_ms": round(elapsed_ms, 2),
    }


def large_catalogue(catalogue: Sequence[IndexedTool], size: int) -> list[IndexedTool]:
    """``size`` tools: the real ones replicated under distinct server keys with varied names."""
    tools: list[IndexedTool] = []
    copy = 0
    while len(tools) < size:
        for entry in catalogue:
            if len(tools) == size:
                break
            server = entry.server or "composite"
            own = entry.tool.name.split("__", 1)[-1]
            key = f"{server}{copy}" if copy else server
            name = f"{key}__{own}"
            tools.append(IndexedTool(entry.tool.model_copy(update={"name": name}), key))
        copy += 1
    return tools


def _timed_build(tools: Sequence[IndexedTool], options: RankingOptions | None = None) -> tuple[ToolIndex, float]:
    started = time.perf_counter()
    index = ToolIndex.build(tools, options=options)
    return index, time.perf_counter() - started


def _latencies_ms(index: ToolIndex, queries: Sequence[str], searches: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU times of ``searches`` searches, in milliseconds.

    The CPU time is the process's, all its threads (the query's embedding runs on a worker thread
    where there are two cores): what the search costs in cores, without the waits for a core that
    a loaded machine adds.
    """
    for query in queries[:5]:
        index.search(query)
    wall: list[float] = []
    cpu: list[float] = []
    for number in range(searches):
        query = queries[number % len(queries)]
        started, started_cpu = time.perf_counter(), time.process_time()
        index.search(query, limit=5)
        cpu.append((time.process_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return wall, cpu


def _summary(samples: tuple[list[float], list[float]]) -> dict[str, float]:
    wall, cpu = samples
    return {
        "p50": _percentile(wall, 0.5),
        "p95": _percentile(wall, 0.95),
        "cpu p50": _percentile(cpu, 0.5),
        "cpu p95": _percentile(cpu, 0.95),
    }


def _percentile(samples: Sequence[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(searches: int, large: int, *, latency_only: bool = False) -> dict[str, Any]:
    """Measure everything (or the latencies at ``large`` tools alone); returns the report."""
    catalogue = load_catalogue()
    tasks = load_tasks(catalogue)
    heldout = load_tasks(catalogue, HELDOUT_TASKS)
    if latency_only:
        return {"machine": _machine(), "search_ms": large_latencies(catalogue, [*tasks, *heldout], searches, large)}
    signals: list[dict[str, Any]] = []
    for label, options in SIGNALS:
        index = ToolIndex.build(catalogue, options=options)
        dense_wanted = (options.embeddings, options.word_vectors)
        if dense_wanted != (index.uses_embeddings, index.uses_word_vectors):
            continue  # a signal of the search extra, which is not installed
        signals.append(
            {
                "signals": label,
                "recall@1": recall(index, tasks, 1),
                "recall@5": recall(index, tasks, 5),
                "heldout recall@1": recall(index, heldout, 1),
                "heldout recall@5": recall(index, heldout, 5),
            }
        )
    shipped, build_real_s = _timed_build(catalogue)
    small, build_150_s = _timed_build(catalogue[:150])
    lexical_large, build_large_lexical_s = _timed_build(
        large_catalogue(catalogue, large), RankingOptions(embeddings=False, word_vectors=False)
    )
    hybrid_large, build_large_s = _timed_build(large_catalogue(catalogue, large))
    # The same vectors, but no query embedding kept: every search embeds its query (cold).
    cold_large = ToolIndex.build(large_catalogue(catalogue, large), previous=hybrid_large, options=COLD)
    queries = [task.query for task in [*tasks, *heldout]]
    lexical_ms = _latencies_ms(lexical_large, queries, searches)
    cold_ms = _latencies_ms(cold_large, queries, searches)
    hybrid_ms = _latencies_ms(hybrid_large, queries, searches)
    small_ms = _latencies_ms(small, queries, searches)
    texts = len({entry.tool.name.split("__", 1)[-1] + (entry.tool.description or "") for entry in catalogue})
    return {
        "machine": _machine(),
        "catalogue": {
            "servers": len({entry.server for entry in catalogue}),
            "tools": len(catalogue),
            "tasks": len(tasks),
        },
        "token_count_method": TOKEN_COUNT_METHOD,
        "embedding_model": EMBEDDING_MODEL if shipped.uses_embeddings else None,
        "word_vectors_model": WORD_VECTORS_MODEL if shipped.uses_word_vectors else None,
        "manifest": {"real": manifest_tokens(catalogue), "150": manifest_tokens(catalogue[:150])},
        "signals": signals,
        "misses@5": misses(shipped, tasks, 5),
        "heldout misses@5": misses(shipped, heldout, 5),
        "build_s": {
            "real": round(build_real_s, 3),
            "150": round(build_150_s, 3),
            f"{large}, lexical": round(build_large_lexical_s, 3),
            f"{large}, hybrid": round(build_large_s, 3),
            "embedding per distinct text": round(build_real_s / max(texts, 1), 4),
        },
        "search_ms": {
            "150, hybrid, warm": _summary(small_ms),
            f"{large}, lexical": _summary(lexical_ms),
            f"{large}, hybrid, cold": _summary(cold_ms),
            f"{large}, hybrid, warm": _summary(hybrid_ms),
        },
        "targets": {
            "manifest_ratio_150": MANIFEST_RATIO_TARGET,
            "recall@5": RECALL_AT_5_TARGET,
            "search_p50_ms_large": LATENCY_P50_TARGET_MS,
        },
    }


def large_latencies(
    catalogue: Sequence[IndexedTool], tasks: Sequence[Task], searches: int, large: int
) -> dict[str, Any]:
    """Search latencies at ``large`` tools alone: lexical, shipped cold and shipped warm."""
    tools = large_catalogue(catalogue, large)
    lexical = ToolIndex.build(tools, options=RankingOptions(embeddings=False, word_vectors=False))
    hybrid = ToolIndex.build(tools)
    cold = ToolIndex.build(tools, previous=hybrid, options=COLD)
    queries = [task.query for task in tasks]
    return {
        f"{large}, lexical": _summary(_latencies_ms(lexical, queries, searches)),
        f"{large}, hybrid, cold": _summary(_latencies_ms(cold, queries, searches)),
        f"{large}, hybrid, warm": _summary(_latencies_ms(hybrid, queries, searches)),
    }


def _machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cores usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load average": [round(value, 2) for value in os.getloadavg()],
    }


def _print(report: dict[str, Any]) -> None:
    if "catalogue" not in report:
        _print_latencies(report)
        return
    catalogue = report["catalogue"]
    print(f"catalogue: {catalogue['tools']} real tools from {catalogue['servers']} servers; {catalogue['tasks']} tasks")
    print(
        f"tokens: {report['token_count_method']}; embeddings: {report['embedding_model']}; "
        f"word vectors: {report['word_vectors_model']}"
    )
    for label, manifest in report["manifest"].items():
        print(
            f"  manifest ({label}: {manifest['tools']} tools): full {manifest['full_tokens']} tokens "
            f"(estimate {manifest['full_estimate']}), search mode {manifest['search_tokens']} "
            f"= {manifest['ratio']:.1%}; counted in {manifest['count_ms']} ms"
        )
    print(f"  {'signals':<66} {'recall@1':>8} {'recall@5':>8} {'held-out @1':>11} {'@5':>5}")
    for line in report["signals"]:
        print(
            f"  {line['signals']:<66} {line['recall@1']:>8.2f} {line['recall@5']:>8.2f}"
            f" {line['heldout recall@1']:>11.2f} {line['heldout recall@5']:>5.2f}"
        )
    for miss in report["misses@5"]:
        print(f"  miss@5: {miss['query']!r} wanted {miss['wanted']} got {miss['got']}")
    for miss in report["heldout misses@5"]:
        print(f"  held-out miss@5: {miss['query']!r} wanted {miss['wanted']} got {miss['got']}")
    print("  build (s): " + ", ".join(f"{key} {value}" for key, value in report["build_s"].items()))
    _print_latencies(report)


def _print_latencies(report: dict[str, Any]) -> None:
    for label, latency in report["search_ms"].items():
        print(
            f"  search ({label}): p50 {latency['p50']:.2f} ms, p95 {latency['p95']:.2f} ms; "
            f"CPU p50 {latency['cpu p50']:.2f} ms, p95 {latency['cpu p95']:.2f} ms"
        )
    machine = report["machine"]
    print(f"  cores usable: {machine['cores usable']}; load average at the end: {machine['load average']}")


def main() -> None:
    """Run the benchmark and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--searches", type=int, default=400)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--latency-only", action="store_true", help="measure the search latencies alone")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    options = parser.parse_args()
    report = run(options.searches, options.large, latency_only=options.latency_only)
    _print(report)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"-> {options.out}")


if __name__ == "__main__":
    main()
