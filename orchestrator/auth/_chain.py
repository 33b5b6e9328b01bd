"""Several token verifiers as one: the first that recognises a token wins.

Put the cheap ones first (static tokens, a hash and a compare) before those that may fetch
keys or touch the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcp.server.auth.provider import AccessToken, TokenVerifier

__all__ = ["VerifierChain"]


class VerifierChain:
    """Asks each verifier in turn (the SDK's ``TokenVerifier``)."""

    def __init__(self, *verifiers: TokenVerifier) -> None:
        self._verifiers = verifiers

    async def verify_token(self, token: str) -> AccessToken | None:
        """What the first verifier that accepts ``token`` makes of it, or ``None`` if none does."""
        for verifier in self._verifiers:
            if (access := await verifier.verify_token(token)) is not None:
                return access
        return None
