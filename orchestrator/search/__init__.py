"""Search over the tool catalogue: which tools best answer a request in natural language.

Pure: no I/O but reading the model files that an installed package ships. Ranks with BM25 (SQLite
FTS5, stemmed, over tool names in words, titles, descriptions, parameter names and descriptions and
server keys, with per-field weights), fused by reciprocal rank with a small embedding model when the
``search`` extra is installed; tools of a server the request names, and composite tools, are boosted.
It does not decide who may see what (the caller passes ``allowed``) nor what the meta-tools look like.
"""

from __future__ import annotations

from orchestrator.search._embeddings import MODEL_NAME as EMBEDDING_MODEL
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
