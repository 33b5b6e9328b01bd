"""Token counts of manifests."""

from __future__ import annotations

import json

from orchestrator.search import TOKEN_COUNT_METHOD, count_tokens, estimate_tokens


def test_counts_with_o200k_base_offline() -> None:
    assert TOKEN_COUNT_METHOD == "o200k_base", "the search extra (bpe-openai) is not installed: run `make setup`"
    # Known o200k_base encodings: "hello world" is two tokens, "tiktoken is great!" six.
    assert count_tokens("hello world") == 2
    assert count_tokens("tiktoken is great!") == 6
    assert count_tokens("") == 0


def test_the_estimate_is_near_the_real_count_on_tool_json() -> None:
    schema = {
        "name": "filesystem__create_directory",
        "description": "Create a new directory or ensure a directory exists. Can create multiple nested directories.",
        "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    }
    text = json.dumps({"tools": [schema] * 20})
    assert 0.7 < estimate_tokens(text) / count_tokens(text) < 1.4
