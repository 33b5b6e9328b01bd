"""The SDK client as a downstream connection uses it: over streams it already opened, judged re-listings.

Does not: connect or supervise (``_connection`` does), or list (``_listing``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcp import Client, MCPError
from mcp_types import HEADER_MISMATCH

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["JudgedClient", "StreamsTransport"]


class StreamsTransport:
    """Hands already-open streams to ``Client`` (the transport's lifetime is ours)."""

    def __init__(self, streams: Any) -> None:
        self._streams = streams

    async def __aenter__(self) -> Any:
        return self._streams

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class JudgedClient(Client):
    """A ``Client`` whose recovery from a header mismatch re-lists through this server's own listing.

    At 2026-07-28 a server that refuses a call with ``HEADER_MISMATCH`` is saying the tool's
    listed schema is stale: the SDK re-lists that tool and resends the call at once, so a
    definition that changed silently would be called before anyone judged it. Here the
    re-listing is the server's own (``CatalogueWatch``), which goes through the pool and its
    trust gate, and the call is not resent: it fails with the mismatch, and the caller's next
    call meets the definition as judged (served, or withheld until approved).
    """

    def __init__(self, relisted: Callable[[], Awaitable[None]], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._relisted = relisted

    async def _relist_tool(self, name: str) -> None:
        await self._relisted()
        # Raising here makes the SDK raise the mismatch itself, without a second attempt.
        raise MCPError(code=HEADER_MISMATCH, message=f"tool {name!r} was listed again after a header mismatch")
