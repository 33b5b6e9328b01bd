"""Protocol extensions (SEP-2133) in capabilities: which a request's client declared, and declaring ours.

A client names the extensions it handles in its capabilities: the handshake's at 2025-11-25,
each request's ``_meta`` at 2026-07-28; the SDK gives both as the session's client
capabilities. A server lists its own under ``capabilities.extensions`` of its ``initialize``
or ``server/discover`` result. The MCP Apps and tasks extensions both go through here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mcp.server.context import ServerRequestContext

__all__ = ["client_declares", "with_extension"]


def client_declares(ctx: ServerRequestContext[Any, Any], identifier: str) -> bool:
    """Whether the request's client named the extension ``identifier`` in its capabilities."""
    capabilities = ctx.session.client_capabilities
    extensions = capabilities.extensions if capabilities is not None else None
    return extensions is not None and identifier in extensions


def with_extension(
    result: dict[str, Any], identifier: str, settings: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An ``initialize`` or ``server/discover`` result whose capabilities list the extension ``identifier``."""
    capabilities: object = result.get("capabilities")
    if isinstance(capabilities, dict):
        fields = cast("dict[str, Any]", capabilities)
        listed: object = fields.get("extensions")
        extensions = dict(cast("dict[str, Any]", listed)) if isinstance(listed, dict) else {}
        extensions[identifier] = dict(settings or {})
        result["capabilities"] = {**fields, "extensions": extensions}
    return result
