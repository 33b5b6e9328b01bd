"""Input rounds between replicas: the answer to a round reaches the replica whose call waits for it.

A 2026-07-28 call that needs input (a downstream server's sampling or elicitation) returns a
``requestState``; the client's retry carries the answer, and a load balancer may send that
retry to any replica. The downstream call waiting for the answer runs in one replica's memory,
so the retry must reach that one.

A replica with ``serve.advertise_url`` (the URL its siblings reach it at) begins every round
state it hands out with ``r.<sealed URL>.``: its own URL, encrypted and authenticated with a key
derived from the secrets key the replicas share, so a client can neither read the topology
from it nor point a replica anywhere else. A replica given a round state sealed by another
replica passes the request, as it came, to that URL and streams the answer back; the holder runs
the whole guard (token, grants) again. A state that does not open is left to the app, which
answers that the round expired or is unknown, as for any state it does not hold.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from orchestrator.errors import SecretKeyError
from orchestrator.server._workers import Peers, pass_on, read_body, replay, request_states, respond

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from orchestrator.trust import SecretBox

__all__ = ["ROUND_OWNER_PURPOSE", "ReplicaMark", "ReplicaRouting"]

logger = logging.getLogger(__name__)

ROUND_OWNER_PURPOSE = "input round owners"
"""What the key derived from the secrets key seals: the replica URLs in round states."""

_CONTEXT = "round owner"
_PREFIX = "r."


class ReplicaMark:
    """This replica's mark on the round states it hands out, and reading other replicas' marks."""

    def __init__(self, box: SecretBox, advertise_url: str) -> None:
        """Mark rounds as this replica's, reachable at ``advertise_url``.

        Args:
            box: Seals with the key the replicas share (``SecretBox.derived_key(ROUND_OWNER_PURPOSE)``).
            advertise_url: Where the siblings reach this replica: scheme and authority (a path
                is ignored; a request keeps its own).
        """
        parts = urlsplit(advertise_url)
        self._box = box
        self.base_url = f"{parts.scheme}://{parts.netloc}"
        sealed = box.seal(self.base_url.encode(), _CONTEXT)
        self.prefix = f"{_PREFIX}{base64.urlsafe_b64encode(sealed).decode().rstrip('=')}."
        """Begins every round state this replica hands out."""

    def holder_of(self, state: str) -> str | None:
        """The base URL of the replica that sealed ``state``; ``None`` if not a replica's mark."""
        if not state.startswith(_PREFIX):
            return None
        sealed, dot, _rest = state.removeprefix(_PREFIX).partition(".")
        if not dot:
            return None
        try:
            blob = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
            return self._box.open(blob, _CONTEXT).decode()
        except (binascii.Error, ValueError, SecretKeyError):
            return None


class ReplicaRouting:
    """ASGI middleware: a round's answer sealed by another replica goes to that replica."""

    def __init__(self, app: ASGIApp, mark: ReplicaMark) -> None:
        self._app = app
        self._mark = mark
        self._peers = Peers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self._app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            await respond(send, 413, b"Request body too large\n")
            return
        holder = next(
            (
                url
                for state in request_states(body)
                if not state.startswith(self._mark.prefix) and (url := self._mark.holder_of(state)) is not None
            ),
            None,
        )
        if holder is None or holder == self._mark.base_url:
            await self._app(scope, replay(body, receive), send)
            return
        await pass_on(self._peers.client(holder), holder, scope, replay(body, receive), send, f"replica {holder}")

    async def aclose(self) -> None:
        """Close the connections to the other replicas."""
        await self._peers.aclose()
