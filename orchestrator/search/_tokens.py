"""Counting tokens of a manifest: OpenAI's o200k_base when installed, else an estimate.

``tiktoken`` fetches its BPE file from the internet on first use; the PyPI package ``bpe-openai``
(the ``search`` extra) ships o200k_base inside its wheel and counts with the same merges, offline.
Without it, the count is an estimate: one token per 4.5 characters, rounded up. On the compact
JSON of real ``tools/list`` responses (bench/data/tool_catalogue.json, 184 tools) o200k_base
averages 4.6 characters per token, so the estimate is about 2 % high there (docs/search-mode.md,
"Measured"); prose and other languages differ more.
"""

from __future__ import annotations

import math
from typing import Any

try:
    import bpe_openai  # pyright: ignore[reportMissingTypeStubs] -- ships partial types
except ImportError:  # the search extra is optional: estimate instead
    bpe_openai = None

__all__ = ["CHARS_PER_TOKEN", "TOKEN_COUNT_METHOD", "count_tokens", "estimate_tokens"]

CHARS_PER_TOKEN = 4.5
"""The estimate's ratio (o200k_base averages 4.6 characters per token on compact tool-list JSON)."""

_encoding: Any = bpe_openai.get_encoding("o200k_base") if bpe_openai is not None else None

TOKEN_COUNT_METHOD = (
    "o200k_base" if _encoding is not None else f"estimate: characters / {CHARS_PER_TOKEN:g}, rounded up"
)
"""How ``count_tokens`` counts."""


def estimate_tokens(text: str) -> int:
    """The estimate: characters divided by CHARS_PER_TOKEN, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def count_tokens(text: str) -> int:
    """Tokens of ``text``: o200k_base if ``bpe-openai`` is installed, else ``estimate_tokens``.

    Args:
        text: Any text, typically the JSON of a tools/list result.

    Returns:
        The token count.
    """
    if _encoding is None:
        return estimate_tokens(text)
    return len(_encoding.encode_ordinary(text))
