"""Static word vectors of tools and queries, when the ``search`` extra is installed.

WordLlama's ``l2_supercat`` model (256 dimensions), as the PyPI package ``wordllama`` ships it
inside its wheel: a text's vector is the mean of its tokens' vectors, learned from a large language
model's token embeddings. No network runs, so a query costs a few hundredths of a millisecond:
it is a second, cheap dense signal beside the transformer's (it finds other tools than e5 does,
and the fusion gains from both; docs/search-mode.md, "Measured").

The model files are read from the installed package directly: ``WordLlama.load`` looks for the
tokenizer in a directory the wheel does not have and would then download it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import wordllama  # pyright: ignore[reportMissingTypeStubs] -- ships no types
    from safetensors.numpy import load_file  # pyright: ignore[reportMissingTypeStubs, reportUnknownVariableType]
    from wordllama.inference import WordLlamaInference  # pyright: ignore[reportMissingTypeStubs]
    from wordllama.tokenizers import tokenizer_from_file  # pyright: ignore[reportMissingTypeStubs]
else:
    # wordllama configures the root logger when imported (logging.basicConfig): undone, since
    # how this process logs is its entry point's to say.
    _root_logger = logging.getLogger()
    _root_state = (list(_root_logger.handlers), _root_logger.level)
    try:
        import numpy as np
        import wordllama
        from safetensors.numpy import load_file
        from wordllama.inference import WordLlamaInference
        from wordllama.tokenizers import tokenizer_from_file
    except ImportError:  # the search extra is optional: search goes on without this signal
        wordllama = None
    finally:
        _root_logger.handlers[:] = _root_state[0]
        _root_logger.setLevel(_root_state[1])

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

__all__ = ["WORD_VECTORS_MODEL", "WordVectors", "default_word_vectors"]

WORD_VECTORS_MODEL = "WordLlama l2_supercat, 256 dimensions (wordllama)"

_WEIGHTS = "weights/l2_supercat_256.safetensors"
_TOKENIZER = "l2_supercat_tokenizer_config.json"


class WordVectors:
    """Texts to unit vectors by averaging token vectors (the same for queries and passages)."""

    def __init__(self) -> None:
        """Load the bundled model (about 0.3 s)."""
        assert wordllama is not None
        weights: dict[str, Any] = load_file(str(Path(wordllama.__file__).parent / _WEIGHTS))
        self._model: Any = WordLlamaInference(weights["embedding.weight"], tokenizer_from_file(_TOKENIZER))
        # The tokenizer pads in place: one caller at a time.
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The model, for reports."""
        return WORD_VECTORS_MODEL

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """One unit row per text.

        Args:
            texts: Queries or passages.

        Returns:
            A (len(texts), 256) matrix.
        """
        if not texts:
            return np.zeros((0, 256), dtype=np.float32)
        with self._lock:
            vectors = self._model.embed(list(texts), norm=True)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


_default: WordVectors | None = None
_default_lock = threading.Lock()


def default_word_vectors() -> WordVectors | None:
    """The bundled model, loaded once per process on first use; None without the extra.

    Returns:
        The shared model, or None when ``wordllama`` is not installed.
    """
    global _default
    if wordllama is None:
        return None
    with _default_lock:
        if _default is None:
            _default = WordVectors()
        return _default
