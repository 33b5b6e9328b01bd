"""The tool index: lexical BM25 and (when installed) embeddings, fused into one ranking."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from orchestrator.search._documents import document_of
from orchestrator.search._embeddings import QueryVectors, VectorIndex, default_embedder, embed_texts
from orchestrator.search._fusion import best_positions, fused
from orchestrator.search._lexical import LexicalIndex, LexicalOptions
from orchestrator.search._overlap import in_background
from orchestrator.search._words import name_words, query_words
from orchestrator.search._wordvectors import default_word_vectors

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    import mcp_types
    import numpy as np
    from numpy.typing import NDArray

    from orchestrator.search._embeddings import Embedder
    from orchestrator.search._wordvectors import WordVectors

__all__ = ["IndexedTool", "RankingOptions", "SearchHit", "ToolIndex"]

LEXICAL_WEIGHT = 0.4
"""A signal's weight in the fusion: each signal's scores are scaled to [0, 1] over the catalogue
(BM25 by its best score, similarities from the lowest to the highest), then summed with these
weights. Chosen on the 60 tasks of bench/data/catalogue_tasks.yaml (docs/search-mode.md)."""
EMBEDDING_WEIGHT = 1.0
"""The transformer's similarity: the strongest single signal."""
WORD_VECTORS_WEIGHT = 0.5
"""The static word vectors' similarity."""
LEXICAL_DEPTH = 50
"""How many BM25 matches are scored; the others count as no match (0). Deeper (200, 1000) ranks
the task sets alike and costs more at 10,000 tools."""
SERVER_BOOST = 0.1
"""Added to the tools of a server the query names ("in notion ..."), in the same units. Modest:
some server keys are common words ("everything", "time", "memory")."""
SERVER_BOOST_LEXICAL = 0.2
"""The same without a dense signal (half the best BM25 match's score): the server's name is then
the strongest hint there is."""
COMPOSITE_BOOST = 0.25
"""Added to composite tools, as a share of the server boost: a workflow the operator wrote for a
job is a good first answer, but a modest one."""
QUERY_CACHE = 256
"""How many recent queries' embeddings an index keeps (a repeated search skips the model)."""


@dataclass(frozen=True, slots=True)
class IndexedTool:
    """A tool to index."""

    tool: mcp_types.Tool
    """The tool as exposed (exposed name, title, description, inputSchema)."""
    server: str | None
    """The server key it comes from; None for a composite tool."""
    composite: bool = False


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One match."""

    name: str
    """The exposed tool name."""
    score: float
    """Higher is better; comparable within one search only."""


@dataclass(frozen=True, slots=True)
class RankingOptions:
    """Which signals rank (all, by default; the catalogue benchmark measures each one's share)."""

    lexical: LexicalOptions = field(default_factory=LexicalOptions)
    lexical_on: bool = True
    """Use BM25 at all (off: dense signals alone)."""
    boosts: bool = True
    """Server-name and composite boosts."""
    embeddings: bool = True
    """Fuse in the embedding model's similarity, when the model is installed."""
    word_vectors: bool = True
    """Fuse in the static word vectors' similarity, when they are installed."""
    query_cache: int = QUERY_CACHE
    """How many recent queries' embeddings to keep (0: embed every query; the benchmark's cold runs)."""


@dataclass(frozen=True, slots=True)
class _Dense:
    """A dense signal: its tool vectors, by text, and how much it weighs."""

    weight: float
    vectors: VectorIndex
    known: dict[str, NDArray[np.float32]]


class ToolIndex:
    """An immutable search index over a catalogue of tools; build it once per catalogue change."""

    def __init__(
        self,
        tools: list[IndexedTool],
        lexical: LexicalIndex | None,
        embeddings: _Dense | None,
        word_vectors: _Dense | None,
        queries: QueryVectors | None,
        options: RankingOptions,
    ) -> None:
        """Use ``ToolIndex.build``."""
        self._tools = tools
        self._names = [entry.tool.name for entry in tools]
        self._by_server_words: dict[frozenset[str], list[int]] = {}
        for position, entry in enumerate(tools):
            if entry.server:
                self._by_server_words.setdefault(frozenset(name_words(entry.server)), []).append(position)
        self._composites = [position for position, entry in enumerate(tools) if entry.composite]
        self._lexical = lexical
        self._embeddings = embeddings
        self._word_vectors = word_vectors
        self._queries = queries
        self._options = options

    @classmethod
    def build(
        cls,
        tools: Iterable[IndexedTool],
        *,
        previous: ToolIndex | None = None,
        options: RankingOptions | None = None,
    ) -> ToolIndex:
        """Index a catalogue (synchronous: call it in a worker thread for a large one).

        Args:
            tools: The catalogue as exposed; a name given twice keeps its first tool.
            previous: The index of the catalogue before a change: embeddings of tools whose text
                did not change are taken from it, not computed again, and so are its recent queries'.
            options: The signals to use (default: all that are installed).

        Returns:
            The index.
        """
        options = options or RankingOptions()
        unique = list({entry.tool.name: entry for entry in reversed(list(tools))}.values())[::-1]
        documents = [document_of(entry.tool, entry.server) for entry in unique]
        lexical = LexicalIndex(documents, options.lexical) if options.lexical_on else None
        embedder: Embedder | None = default_embedder() if options.embeddings else None
        embeddings = queries = None
        if embedder is not None:
            queries = cls._queries_of(embedder, previous, options.query_cache)
            texts = [document.embedding_text() for document in documents]
            embeddings = _dense(
                EMBEDDING_WEIGHT, texts, embedder.passages, queries.of, previous._embeddings if previous else None
            )
        model: WordVectors | None = default_word_vectors() if options.word_vectors else None
        word_vectors = None
        if model is not None:
            word_vectors = _dense(
                WORD_VECTORS_WEIGHT,
                [document.word_vector_text() for document in documents],
                model.embed,
                lambda query: model.embed([query])[0],
                previous._word_vectors if previous else None,
            )
        return cls(unique, lexical, embeddings, word_vectors, queries, options)

    def __len__(self) -> int:
        """How many tools are indexed."""
        return len(self._tools)

    @property
    def uses_embeddings(self) -> bool:
        """Whether the embedding model ranks too (the ``search`` extra is installed and on)."""
        return self._embeddings is not None

    @property
    def uses_word_vectors(self) -> bool:
        """Whether the static word vectors rank too (the ``search`` extra is installed and on)."""
        return self._word_vectors is not None

    def reused_embeddings(self, previous: ToolIndex) -> int:
        """How many of this index's embeddings are the very ones of ``previous`` (not recomputed)."""
        if self._embeddings is None or previous._embeddings is None:
            return 0
        old = {id(vector) for vector in previous._embeddings.known.values()}
        return sum(1 for vector in self._embeddings.known.values() if id(vector) in old)

    def search(self, query: str, *, limit: int = 5, allowed: Callable[[str], bool] | None = None) -> list[SearchHit]:
        """The tools that best match a request.

        Args:
            query: What the user wants done, in natural language.
            limit: How many hits at most.
            allowed: Whether the caller may use a tool (by exposed name); tools it refuses are left
                out before ``limit`` applies, so the caller gets up to ``limit`` tools it may use.

        Returns:
            Hits, best first.
        """
        if limit <= 0 or not self._tools:
            return []
        keep: Callable[[int], bool] | None = None
        if allowed is not None:
            names, allowed_name = self._names, allowed
            keep = lambda position: allowed_name(names[position])  # noqa: E731 -- a closure over the caller's filter
        # The transformer's similarities (its query embedding: most of a cold search) are computed
        # on another core, where there is one, while BM25 and the word vectors run here.
        embedded = None
        if self._embeddings is not None:
            embedded = in_background(partial(self._embeddings.vectors.similarities, query))
        words = query_words(query)
        sparse: dict[int, float] = {}
        if self._lexical is not None:
            matches = self._lexical.scored(words, max(LEXICAL_DEPTH, limit), keep)
            best = matches[0][1] if matches else 0.0
            for position, score in matches:
                sparse[position] = LEXICAL_WEIGHT * score / best if best > 0 else LEXICAL_WEIGHT
        dense_on = self._embeddings is not None or self._word_vectors is not None
        if self._options.boosts:
            # Without a dense signal only BM25's matches are candidates, and only they are boosted.
            self._boost(sparse, frozenset(words), everyone=dense_on)
        if not dense_on:
            kept = sorted(sparse.items(), key=lambda item: (-item[1], item[0]))[:limit]
            return [SearchHit(self._names[position], score) for position, score in kept]
        dense: list[tuple[float, NDArray[np.float32]]] = []
        if self._word_vectors is not None:
            word_similarities = self._word_vectors.vectors.similarities(query)
            dense.append((self._word_vectors.weight, word_similarities))
        if self._embeddings is not None and embedded is not None:
            # The embeddings' similarities come first in the sum, as they always have (float32
            # sums in another order could break a tie differently).
            dense.insert(0, (self._embeddings.weight, embedded()))
        total = fused(dense, sparse, len(self._tools))
        return [
            SearchHit(self._names[position], float(total[position])) for position in best_positions(total, limit, keep)
        ]

    @staticmethod
    def _queries_of(embedder: Embedder, previous: ToolIndex | None, size: int) -> QueryVectors:
        kept = previous._queries if previous is not None else None
        if kept is not None and kept.embedder is embedder and kept.size == size:
            return kept
        return QueryVectors(embedder, size)

    def _boost(self, scores: dict[int, float], words: frozenset[str], *, everyone: bool) -> None:
        boost = SERVER_BOOST if everyone else SERVER_BOOST_LEXICAL
        boosts: dict[int, float] = {}
        for server_words, positions in self._by_server_words.items():
            if server_words <= words:
                boosts.update(dict.fromkeys(positions, boost))
        for position in self._composites:
            boosts[position] = boosts.get(position, 0.0) + COMPOSITE_BOOST * boost
        for position, boost in boosts.items():
            if everyone or position in scores:
                scores[position] = scores.get(position, 0.0) + boost


def _dense(
    weight: float,
    texts: list[str],
    embed: Callable[[Sequence[str]], NDArray[np.float32]],
    query: Callable[[str], NDArray[np.float32]],
    previous: _Dense | None,
) -> _Dense:
    reusable = previous.known if previous is not None else {}
    known = {text: reusable[text] for text in texts if text in reusable}
    return _Dense(weight, VectorIndex(query, embed_texts(embed, texts, known)), known)
