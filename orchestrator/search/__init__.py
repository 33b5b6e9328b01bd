"""Search over the tool catalogue: which tools best answer a request in natural language.

Pure: no I/O but reading the model files that an installed package ships. Ranks with BM25 (SQLite
FTS5, stemmed, over tool names in words, titles, descriptions, parameter names and descriptions and
server keys, with per-field weights) and, when the ``search`` extra is installed, a small
transformer embedding model and static word vectors, their scores scaled and summed with weights;
tools of a server the request names, and composite tools, are boosted. It does not decide who may
see what (the caller passes ``allowed``) nor what the meta-tools look like.

Names load on first use (PEP 562): the models' packages cost most of a second to import, which a
server in ``full`` mode never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator._lazy import lazy_names

if TYPE_CHECKING:
    from orchestrator.search._embeddings import EMBEDDING_MODEL
    from orchestrator.search._index import IndexedTool, RankingOptions, SearchHit, ToolIndex
    from orchestrator.search._lexical import LexicalOptions
    from orchestrator.search._tokens import TOKEN_COUNT_METHOD, count_tokens, estimate_tokens
    from orchestrator.search._words import name_words, query_words
    from orchestrator.search._wordvectors import WORD_VECTORS_MODEL

__all__ = [
    "EMBEDDING_MODEL",
    "TOKEN_COUNT_METHOD",
    "WORD_VECTORS_MODEL",
    "IndexedTool",
    "LexicalOptions",
    "RankingOptions",
    "SearchHit",
    "ToolIndex",
    "count_tokens",
    "estimate_tokens",
    "name_words",
    "query_words",
]

_HOMES = {
    "EMBEDDING_MODEL": "orchestrator.search._embeddings",
    **dict.fromkeys(("IndexedTool", "RankingOptions", "SearchHit", "ToolIndex"), "orchestrator.search._index"),
    "LexicalOptions": "orchestrator.search._lexical",
    **dict.fromkeys(("TOKEN_COUNT_METHOD", "count_tokens", "estimate_tokens"), "orchestrator.search._tokens"),
    **dict.fromkeys(("name_words", "query_words"), "orchestrator.search._words"),
    "WORD_VECTORS_MODEL": "orchestrator.search._wordvectors",
}

__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__, globals())
