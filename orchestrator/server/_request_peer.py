"""The upstream client of one request, as an ``UpstreamPeer`` the downstream layer can use."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from orchestrator._sdk_internals import request_connection

if TYPE_CHECKING:
    from collections.abc import Hashable

    from mcp.server.context import ServerRequestContext

__all__ = ["LOG_SEVERITY", "RequestPeer", "client_identity"]

logger = logging.getLogger(__name__)

LOG_SEVERITY = {
    level: rank
    for rank, level in enumerate(["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"])
}
"""RFC 5424 severities of MCP log levels, least severe first."""


_SAMPLING = types.ClientCapabilities(sampling=types.SamplingCapability())
_ELICITATION = types.ClientCapabilities(elicitation=types.ElicitationCapability())
_ROOTS = types.ClientCapabilities(roots=types.RootsCapability())


_STDIO_CLIENT = object()
"""The one client of a server serving stdio: whoever holds the other end of the pipes."""


def client_identity(ctx: ServerRequestContext[Any, Any]) -> Hashable:
    """Who sent a request, as far as the transport tells: equal for every request of one client.

    Over stdio there is one client. Over HTTP a handshake-era session is one client; a
    2026-07-28 request carries no session, so each one stands for itself.
    """
    if ctx.request is None:
        return _STDIO_CLIENT
    return request_connection(ctx)


class RequestPeer:
    """Forwards a downstream's server-initiated requests to the client of one upstream request.

    Requests ride the upstream request's own channel (``related_request_id``), so over
    streamable HTTP they reach the client on the stream that awaits the call's result.
    """

    def __init__(self, ctx: ServerRequestContext[Any, Any], min_log_level: str = "debug") -> None:
        self._ctx = ctx
        self._min_log_severity = LOG_SEVERITY.get(min_log_level, 0)

    @property
    def client_identity(self) -> Hashable:
        """Shared by every call of one client, never across clients (see ``client_identity``)."""
        return client_identity(self._ctx)

    def _can_ask(self, capability: types.ClientCapabilities) -> bool:
        session = self._ctx.session
        # 2026-07-28 clients answer server requests only through input_required rounds.
        if self._ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return False
        return session.can_send_request and session.check_client_capability(capability)

    def supports_sampling(self) -> bool:
        """Whether the upstream client accepts ``sampling/createMessage`` now."""
        return self._can_ask(_SAMPLING)

    def supports_elicitation(self) -> bool:
        """Whether the upstream client accepts ``elicitation/create`` now."""
        return self._can_ask(_ELICITATION)

    def supports_roots(self) -> bool:
        """Whether the upstream client answers ``roots/list`` now."""
        return self._can_ask(_ROOTS)

    def _metadata(self) -> ServerMessageMetadata:
        return ServerMessageMetadata(related_request_id=self._ctx.request_id)

    async def create_message(
        self, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        """Ask the upstream client to sample; its error comes back as ``ErrorData``."""
        try:
            return await self._ctx.session.send_request(
                types.CreateMessageRequest(params=params), types.CreateMessageResult, metadata=self._metadata()
            )
        except MCPError as exc:
            return types.ErrorData(code=exc.code, message=exc.message)

    async def elicit(self, params: types.ElicitRequestParams) -> types.ElicitResult | types.ErrorData:
        """Ask the upstream client to elicit input; its error comes back as ``ErrorData``."""
        try:
            return await self._ctx.session.send_request(
                types.ElicitRequest(params=params), types.ElicitResult, metadata=self._metadata()
            )
        except MCPError as exc:
            return types.ErrorData(code=exc.code, message=exc.message)

    async def list_roots(self) -> types.ListRootsResult | types.ErrorData:
        """Ask the upstream client for its roots; its error comes back as ``ErrorData``."""
        try:
            return await self._ctx.session.send_request(
                types.ListRootsRequest(), types.ListRootsResult, metadata=self._metadata()
            )
        except MCPError as exc:
            return types.ErrorData(code=exc.code, message=exc.message)

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        """Pass a downstream log message to the upstream client (where it opted in)."""
        if LOG_SEVERITY.get(params.level, 0) < self._min_log_severity:
            return
        await self._ctx.session.send_log_message(  # pyright: ignore[reportDeprecated]
            params.level, params.data, params.logger, related_request_id=self._ctx.request_id
        )
