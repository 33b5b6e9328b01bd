"""Each server's last listing in the state database: the ``ManifestCache`` a lazy server is served from.

A listing is kept with the fingerprint of the connection settings it was listed with
(``connection_fingerprint``: the server's identity, its working folder, and the names, never
the values, of its environment variables and headers), and is handed back only while the
server's entry still has that fingerprint: a changed command, argument, URL or folder means
the kept listing is not this server's any more, and the pool starts it once to learn it.
What is handed back is judged against the pins by the ``TrustGate`` like a live listing.

Writes only when the state database is open anyway (the pins of a listing open it), or for
a lazy server; a listing the same as the one kept is not written again. Never raises: a
database that cannot be read or written is logged, and counts as keeping nothing.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import mcp_types as types
from pydantic import ValidationError

from orchestrator import store as state_db
from orchestrator.catalog import ServerManifest, canonical_json
from orchestrator.config import StdioServerSpec
from orchestrator.errors import StoreError
from orchestrator.trust._fingerprint import server_identity

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from orchestrator.config import ServerSpec
    from orchestrator.store import Store

__all__ = ["StoredManifests", "connection_fingerprint"]

logger = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def connection_fingerprint(spec: ServerSpec) -> str:
    """SHA-256 (hex) of the connection settings a listing belongs to; no secret value goes into it."""
    if isinstance(spec, StdioServerSpec):
        settings: dict[str, Any] = {
            "identity": server_identity(spec),
            "cwd": None if spec.cwd is None else str(spec.cwd),
            "env": sorted(spec.env),
            "env_file": None if spec.env_file is None else str(spec.env_file),
        }
    else:
        settings = {"identity": server_identity(spec), "headers": sorted(name.lower() for name in spec.headers)}
    return hashlib.sha256(canonical_json(settings)).hexdigest()


def _wire(item: types.Tool | types.Prompt | types.Resource | types.ResourceTemplate) -> dict[str, Any]:
    return item.model_dump(mode="json", by_alias=True, exclude_none=True)


def _digest(listing: dict[str, Any]) -> str:
    """SHA-256 of a listing's canonical JSON: equal listings, equal digests."""
    return hashlib.sha256(canonical_json(listing)).hexdigest()


def listing_of(manifest: ServerManifest) -> dict[str, Any]:
    """A server's listing as kept: each definition as the wire carries it."""
    return {
        "tools": [_wire(tool) for tool in manifest.tools],
        "prompts": [_wire(prompt) for prompt in manifest.prompts],
        "resources": [_wire(resource) for resource in manifest.resources],
        "resource_templates": [_wire(template) for template in manifest.resource_templates],
    }


def manifest_of(server: str, listing: dict[str, Any]) -> ServerManifest:
    """The manifest of a kept listing (no prefix or tool filter: those are the pool's).

    Raises:
        ValidationError: A definition in it is not a valid MCP definition.
        KeyError: A list is missing.
    """
    return ServerManifest(
        server=server,
        prefix=None,
        tools=tuple(types.Tool.model_validate(item) for item in listing["tools"]),
        prompts=tuple(types.Prompt.model_validate(item) for item in listing["prompts"]),
        resources=tuple(types.Resource.model_validate(item) for item in listing["resources"]),
        resource_templates=tuple(types.ResourceTemplate.model_validate(item) for item in listing["resource_templates"]),
    )


class StoredManifests:
    """Keeps each server's last listing in the state database (a ``ManifestCache``).

    Args:
        open_store: Opens (once) and returns the state database.
        opened: The state database if it is open now, else ``None``; default: never open,
            so only lazy servers' listings are written.
        writes: ``False`` reads only (``doctor`` looks, and leaves the state as it was).
        clock: The current time, aware (tests pass their own).
    """

    def __init__(
        self,
        open_store: Callable[[], Awaitable[Store]],
        *,
        opened: Callable[[], Store | None] = lambda: None,
        writes: bool = True,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._open_store = open_store
        self._opened = opened
        self._writes = writes
        self._clock = clock
        self._kept: dict[str, tuple[str, str]] = {}
        """Server key -> the connection fingerprint and the digest of the listing known to be in the database.

        A digest, not the listing: a server of 10,000 tools would otherwise keep a second copy of them all.
        """

    async def load(self, server: str, spec: ServerSpec) -> ServerManifest | None:
        """``server``'s kept listing, if it was listed with ``spec``'s connection settings."""
        try:
            kept = await state_db.read_manifest((await self._open_store()).engine, server)
        except StoreError as exc:
            logger.warning("server %r: its last listing cannot be read, so it is started to learn it: %s", server, exc)
            return None
        if kept is None:
            return None
        self._kept[server] = (kept.connection, _digest(kept.listing))
        if kept.connection != connection_fingerprint(spec):
            logger.info("server %r: its connection settings changed since its last listing; not used", server)
            return None
        try:
            return manifest_of(server, kept.listing)
        except (ValidationError, KeyError, TypeError) as exc:
            logger.warning("server %r: its kept listing is unreadable (%s); not used", server, type(exc).__name__)
            return None

    async def save(self, manifest: ServerManifest, spec: ServerSpec) -> None:
        """Keep ``manifest`` as its server's last listing (see the class docstring for when it is written)."""
        if not self._writes:
            return
        key = manifest.server
        listing = listing_of(manifest)
        entry = (connection_fingerprint(spec), _digest(listing))
        if self._kept.get(key) == entry:
            return
        try:
            store = self._opened()
            if store is None:
                if spec.start != "lazy":
                    return  # nothing else opened the database: not opened for this alone
                store = await self._open_store()
            await state_db.save_manifest(store.engine, key, entry[0], listing, at=self._clock())
        except StoreError as exc:
            logger.warning("server %r: its listing cannot be kept for a lazy start: %s", key, exc)
            return
        self._kept[key] = entry
