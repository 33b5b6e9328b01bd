"""The tool index: lexical BM25 and (when installed) embeddings, fused into one ranking."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator.search._documents import document_of
from orchestrator.search._embeddings import VectorIndex, default_embedder, embed_texts
from orchestrator.search._lexical import LexicalIndex, LexicalOptions
from orchestrator.search._words import name_words, query_words

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import mcp_types
    import numpy as np
    from numpy.typing import NDArray

    from orchestrator.search._embeddings import Embedder

__all__ = ["IndexedTool", "RankingOptions", "SearchHit", "ToolIndex"]

FUSION_K = 60
"""Reciprocal-rank fusion's constant (Cormack et al. 2009): a tool's score is the sum over the
signals of 1 / (FUSION_K + its rank there)."""
CANDIDATES = 50
"""How deep each signal's list goes into the fusion."""
SERVER_BOOST = 1.0 / (FUSION_K + 1)
"""Added to the tools of a server the query names ("in notion ..."): as much as a first place in one more list."""
COMPOSITE_BOOST = 0.25 / (FUSION_K + 1)
"""Added to composite tools: a workflow the operator wrote for a job is a good first answer, but a modest one."""


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
    """Use BM25 at all (off: embeddings alone)."""
    boosts: bool = True
    """Server-name and composite boosts."""
    embeddings: bool = True
    """Fuse in the embedding model's ranking, when the model is installed."""


class ToolIndex:
    """An immutable search index over a catalogue of tools; build it once per catalogue change."""

    def __init__(
        self,
        tools: list[IndexedTool],
        lexical: LexicalIndex | None,
        vectors: VectorIndex | None,
        embeddings: dict[str, NDArray[np.float32]],
        options: RankingOptions,
    ) -> None:
        """Use ``ToolIndex.build``."""
        self._tools = tools
        self._names = [entry.tool.name for entry in tools]
        self._server_words = [
            frozenset(name_words(entry.server)) if entry.server else frozenset[str]() for entry in tools
        ]
        self._lexical = lexical
        self._vectors = vectors
        self._embeddings = embeddings
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
                did not change are taken from it, not computed again.
            options: The signals to use (default: all that are installed).

        Returns:
            The index.
        """
        options = options or RankingOptions()
        unique = list({entry.tool.name: entry for entry in reversed(list(tools))}.values())[::-1]
        documents = [document_of(entry.tool, entry.server) for entry in unique]
        lexical = LexicalIndex(documents, options.lexical) if options.lexical_on else None
        embedder: Embedder | None = default_embedder() if options.embeddings else None
        known: dict[str, NDArray[np.float32]] = {}
        vectors = None
        if embedder is not None:
            texts = [document.embedding_text() for document in documents]
            reusable = previous._embeddings if previous is not None else {}
            known = {text: reusable[text] for text in texts if text in reusable}
            vectors = VectorIndex(embedder, embed_texts(embedder, texts, known))
        return cls(unique, lexical, vectors, known, options)

    def __len__(self) -> int:
        """How many tools are indexed."""
        return len(self._tools)

    @property
    def uses_embeddings(self) -> bool:
        """Whether the embedding model ranks too (the ``search`` extra is installed and on)."""
        return self._vectors is not None

    def reused_embeddings(self, previous: ToolIndex) -> int:
        """How many of this index's embeddings are the very ones of ``previous`` (not recomputed)."""
        old = {id(vector) for vector in previous._embeddings.values()}
        return sum(1 for vector in self._embeddings.values() if id(vector) in old)

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
        words = query_words(query)
        depth = max(CANDIDATES, limit)
        scores: dict[int, float] = {}
        rankings: list[list[int]] = []
        if self._lexical is not None:
            rankings.append(self._lexical.ranked(words, depth, keep))
        if self._vectors is not None:
            rankings.append(self._vectors.ranked(query, depth, keep))
        for ranking in rankings:
            for rank, position in enumerate(ranking, start=1):
                scores[position] = scores.get(position, 0.0) + 1.0 / (FUSION_K + rank)
        if self._options.boosts:
            self._boost(scores, frozenset(words))
        best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [SearchHit(self._names[position], score) for position, score in best]

    def _boost(self, scores: dict[int, float], words: frozenset[str]) -> None:
        for position in scores:
            if self._server_words[position] and self._server_words[position] <= words:
                scores[position] += SERVER_BOOST
            if self._tools[position].composite:
                scores[position] += COMPOSITE_BOOST
