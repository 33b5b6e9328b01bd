"""The upstream side of a call, as the downstream layer sees it.

A downstream server may, during a call, ask for sampling or elicitation or send log
messages. Those belong to the upstream client that made the call; the server layer hands
an ``UpstreamPeer`` to each call so this layer can forward them without importing it.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol

import mcp_types as types

__all__ = ["UpstreamPeer", "current_peer"]


class UpstreamPeer(Protocol):
    """What a downstream call may ask of the upstream client that made it."""

    def supports_sampling(self) -> bool:
        """Whether the upstream client declared the sampling capability."""
        ...

    def supports_elicitation(self) -> bool:
        """Whether the upstream client declared the elicitation capability."""
        ...

    async def create_message(
        self, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        """Forward a sampling request upstream."""
        ...

    async def elicit(self, params: types.ElicitRequestParams) -> types.ElicitResult | types.ErrorData:
        """Forward an elicitation request upstream."""
        ...

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        """Forward a log message upstream."""
        ...


current_peer: ContextVar[UpstreamPeer | None] = ContextVar("orchestrator_upstream_peer", default=None)
"""The peer of the call running in this task (set around every downstream call)."""
