"""Where a server's last listing is kept between runs: the seam that lets a lazy server stay stopped.

The pool hands every listing a server makes to a ``ManifestCache`` (``save``), and asks it for
a lazy server's last listing at start-up (``load``) instead of starting the server. The
cache decides whether a kept listing still belongs to the server as configured now (the
connection settings it was listed with are the same) and answers ``None`` when it does not.
A listing loaded from the cache is judged by the ``ManifestGate`` exactly like a live one.

Does not: keep anything itself (the aggregator plugs in one backed by the state database;
this layer never imports the store).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from orchestrator.catalog import ServerManifest
    from orchestrator.config import ServerSpec

__all__ = ["ManifestCache"]


class ManifestCache(Protocol):
    """Keeps each server's last listing. Never raises: a cache it cannot read holds nothing."""

    async def load(self, server: str, spec: ServerSpec) -> ServerManifest | None:
        """``server``'s last listing, if one is kept that was listed with ``spec``'s connection settings.

        Args:
            server: The server's key.
            spec: Its entry as configured now.

        Returns:
            The listing as the server sent it (its ``prefix`` and ``tool_filter`` are the
            pool's to set), or ``None``.
        """
        ...

    async def save(self, manifest: ServerManifest, spec: ServerSpec) -> None:
        """Keep ``manifest`` as its server's last listing, made with ``spec``'s connection settings."""
        ...
