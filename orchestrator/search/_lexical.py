"""BM25 over a tool catalogue: an in-memory SQLite FTS5 table, one row per tool.

SQLite's FTS5 ranks with Okapi BM25 (``bm25()``, k1 = 1.2, b = 0.75) and takes one weight per
column; the ``porter`` tokenizer stems English words, so "folders" finds "folder". One row per
tool, its rowid the tool's position in the index.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from orchestrator.search._documents import ToolDocument

__all__ = ["FIELD_WEIGHTS", "LexicalIndex", "LexicalOptions"]

_COLUMNS = ("name", "prefix", "title", "description", "parameters", "server")

FIELD_WEIGHTS = {"name": 5.0, "prefix": 1.0, "title": 3.0, "description": 1.0, "parameters": 0.5, "server": 2.0}
"""BM25 column weights: a word in a tool's name says more than one in its prose, and a parameter's
description is the weakest evidence (it says what the tool takes, not what it does)."""


@dataclass(frozen=True, slots=True)
class LexicalOptions:
    """Which lexical signals are on (all, by default; the benchmark turns them off one by one)."""

    stemming: bool = True
    """Porter stemming of documents and queries."""
    parameters: bool = True
    """Index parameter names and descriptions, titles and server keys, not only names and descriptions."""
    field_weights: bool = True
    """Weigh columns by FIELD_WEIGHTS, else all alike."""


class LexicalIndex:
    """An immutable BM25 index of tool documents.

    One SQLite connection, used under a lock: searches come from the event loop, and the index
    may have been built in a worker thread.
    """

    def __init__(self, documents: Sequence[ToolDocument], options: LexicalOptions) -> None:
        """Index the documents.

        Args:
            documents: The tools' documents; a tool's position is its id.
            options: The lexical signals to use.
        """
        tokenizer = "porter unicode61" if options.stemming else "unicode61"
        self._connection = sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        self._connection.execute(
            f"CREATE VIRTUAL TABLE tools USING fts5({', '.join(_COLUMNS)}, tokenize='{tokenizer}')"
        )
        rows = (_row(position, document, options) for position, document in enumerate(documents))
        self._connection.executemany(
            f"INSERT INTO tools(rowid, {', '.join(_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows
        )
        weights = [FIELD_WEIGHTS[column] if options.field_weights else 1.0 for column in _COLUMNS]
        bm25 = f"bm25(tools, {', '.join(map(str, weights))})"
        self._select = f"SELECT rowid, {bm25} FROM tools WHERE tools MATCH ? ORDER BY {bm25}"
        # Without a filter SQLite keeps only the best rows while it sorts (faster on a large catalogue).
        self._select_best = f"{self._select} LIMIT ?"

    def scored(
        self, words: Sequence[str], depth: int, allowed: Callable[[int], bool] | None = None
    ) -> list[tuple[int, float]]:
        """Positions of the tools matching any of the words and their BM25 scores, best first.

        Args:
            words: Query words (already lowercase and free of punctuation).
            depth: How many to return at most.
            allowed: Keeps a position only if true; applied before ``depth``.

        Returns:
            Up to ``depth`` (position, score) pairs; a score is positive, higher is better.
        """
        if not words:
            return []
        expression = " OR ".join(f'"{word}"' for word in words)
        found: list[tuple[int, float]] = []
        with self._lock:
            for position, score in self._matches(expression, depth if allowed is None else None):
                if allowed is None or allowed(position):
                    found.append((position, score))
                    if len(found) >= depth:
                        break
        return found

    def _matches(self, expression: str, limit: int | None) -> Iterator[tuple[int, float]]:
        if limit is None:
            cursor = self._connection.execute(self._select, (expression,))
        else:
            cursor = self._connection.execute(self._select_best, (expression, limit))
        try:
            for position, rank in cursor:
                # FTS5's bm25() is the negated score, so that ascending order is best first.
                yield int(position), -float(rank)
        finally:
            cursor.close()


def _row(position: int, document: ToolDocument, options: LexicalOptions) -> tuple[int, str, str, str, str, str, str]:
    if not options.parameters:
        return (position, document.name, document.prefix, "", document.description, "", "")
    return (
        position,
        document.name,
        document.prefix,
        document.title,
        document.description,
        document.parameters,
        document.server,
    )
