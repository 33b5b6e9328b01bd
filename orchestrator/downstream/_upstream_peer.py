"""The upstream side of a call, as the downstream layer sees it.

A downstream server may, during a call, ask for sampling, elicitation or the client's roots,
and send log messages. Those belong to the upstream client that made the call, and to no
other: the server layer hands an ``UpstreamPeer`` to each call, and ``caller_of`` picks the
one a server-initiated request belongs to, or refuses when that cannot be told for sure.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Hashable, Sequence

    import mcp_types as types

__all__ = ["UpstreamPeer", "caller_of", "current_peer"]


class UpstreamPeer(Protocol):
    """What a downstream call may ask of the upstream client that made it."""

    @property
    def client_identity(self) -> Hashable:
        """Equal for every call of one upstream client connection, different across clients."""
        ...

    def supports_sampling(self) -> bool:
        """Whether the upstream client declared the sampling capability."""
        ...

    def supports_elicitation(self) -> bool:
        """Whether the upstream client declared the elicitation capability."""
        ...

    def supports_roots(self) -> bool:
        """Whether the upstream client declared the roots capability."""
        ...

    async def create_message(
        self, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        """Forward a sampling request upstream."""
        ...

    async def elicit(self, params: types.ElicitRequestParams) -> types.ElicitResult | types.ErrorData:
        """Forward an elicitation request upstream."""
        ...

    async def list_roots(self) -> types.ListRootsResult | types.ErrorData:
        """Ask the upstream client for its roots."""
        ...

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        """Forward a log message upstream."""
        ...


current_peer: ContextVar[UpstreamPeer | None] = ContextVar("orchestrator_upstream_peer", default=None)
"""The peer of the call running in this task (set around every downstream call).

A server-initiated request is handled in the context of the message that carried it: on
2026-07-28 connections that is the calling task (input rounds are driven from it), and over
streamable HTTP the task that posted the call (its response stream carries the request).
"""


def caller_of(server: str, what: str, in_flight: Sequence[UpstreamPeer]) -> UpstreamPeer | str:
    """The upstream peer a server-initiated request belongs to, or why none can be named.

    The context variable names the caller exactly where the transport links the request to
    its call. Where it does not (a 2025-11-25 server over stdio sends requests with no link
    to the call that caused them), the request can only belong to a call in flight on that
    server: when those calls all come from one upstream client, that client is asked; when
    they come from several, nobody is, since asking the wrong one would hand it another
    user's data.

    Args:
        server: The downstream server's key, for the refusal's wording.
        what: What the server asked for ("sampling", "elicitation", "roots").
        in_flight: The peers of the calls in flight on that server, oldest first.

    Returns:
        The peer to ask, or a sentence saying why the request is refused.
    """
    peer = current_peer.get()
    if peer is not None:
        return peer
    if not in_flight:
        return f"server {server!r} asked for {what} outside any call, so there is no client to ask"
    clients = {peer.client_identity for peer in in_flight}
    if len(clients) > 1:
        return (
            f"server {server!r} asked for {what} while calls from {len(clients)} clients were in flight; "
            "its transport does not say which call the request belongs to, so it is refused rather than "
            "risk asking the wrong client"
        )
    return in_flight[-1]
