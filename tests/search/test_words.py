"""Tool names and queries in words."""

from __future__ import annotations

import pytest

from orchestrator.search import name_words, query_words


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("git__git_status", ["git", "git", "status"]),
        ("filesystem__create_directory", ["filesystem", "create", "directory"]),
        ("everything__get-sum", ["everything", "get", "sum"]),
        ("notion__API-post-search", ["notion", "api", "post", "search"]),
        ("getHTTPResponseCode", ["get", "http", "response", "code"]),
        ("s3.listBuckets2", ["s", "3", "list", "buckets", "2"]),
    ],
)
def test_exposed_names_split_into_their_words(name: str, words: list[str]) -> None:
    assert name_words(name) == words


def test_queries_lose_function_words_and_duplicates_only() -> None:
    assert query_words("Make a folder called Reports, a folder!") == ["make", "folder", "called", "reports"]


def test_a_query_of_function_words_only_keeps_them() -> None:
    assert query_words("what is this") == ["what", "is", "this"]
