"""The one way a secret is masked: one mask string, known secrets replaced longest first.

Every place that must keep a secret out of what it shows uses this module: a downstream's
stderr lines and error results (its configured ``env`` and ``headers`` values), config
problems (a rejected value under ``env`` or ``headers``), the client files ``install`` shows
(every value under ``env`` and ``headers``), and payloads recorded on spans
(``orchestrator.tracing.Redactor``, which adds key names and token shapes of its own).

Pure module: no I/O; it imports nothing of the orchestrator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["MASK", "MIN_SECRET_LENGTH", "SECRET_MAPS", "SecretMasker"]

MASK: Final = "***"
"""What stands where a secret was."""

MIN_SECRET_LENGTH: Final = 4
"""Shorter configured values are not masked in free text: too common to mask without
destroying the text, too short to be a credential."""

SECRET_MAPS: Final = frozenset({"env", "headers"})
"""The keys of a server entry whose values are secrets."""


class SecretMasker:
    """Replaces known secret values in text by ``MASK``.

    Longest first, so a secret that contains another is masked whole rather than leaving
    the rest of it readable around the shorter one's mask.
    """

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str], *, min_length: int = MIN_SECRET_LENGTH) -> None:
        """Mask ``secrets``, except those shorter than ``min_length`` (and empty ones).

        Args:
            secrets: Exact values to mask.
            min_length: Values shorter than this are left alone; 1 masks every non-empty value
                (for a value known to be the one at fault).
        """
        usable = {secret for secret in secrets if len(secret) >= max(min_length, 1)}
        self._secrets = tuple(sorted(usable, key=lambda secret: (-len(secret), secret)))

    def __bool__(self) -> bool:
        """Whether there is anything to mask."""
        return bool(self._secrets)

    def mask(self, text: str) -> str:
        """``text`` with every secret replaced by ``MASK``."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text
