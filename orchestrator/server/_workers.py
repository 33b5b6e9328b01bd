"""One worker of ``serve --transport http --workers N``: its seat, and requests sent to their owner.

N worker processes accept connections from one listening socket, which the supervisor
(``orchestrator.cli._workers``) binds and hands down. The kernel gives each new connection to
any of them, so a client's next connection may reach another worker than its last. Requests
served by any worker alike (2026-07-28 calls, lists, OAuth, the consent page: their state is in
the store) are served where they land. What lives in one worker's memory is reached through
that worker:

- a 2025-11-25 session (``Mcp-Session-Id``): the SDK keeps it in the process that answered
  ``initialize``, with its streams;
- an input-required round (``requestState``): the downstream call waiting for the answer runs
  in the process that started it.

Each worker marks the ids it hands out with its index (``w1.<id>``), and a worker given another
worker's id passes the request, unparsed, to that worker's private Unix socket (in a directory
only the owner's user can enter), streaming the answer back. The owner runs the full guard
again: forwarding adds no trust.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
import httpx2
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "OwnerRouting",
    "Peers",
    "WorkerSeat",
    "owned_id",
    "owner_of",
    "pass_on",
    "read_body",
    "replay",
    "request_states",
    "respond",
    "write_consent_key",
]

logger = logging.getLogger(__name__)

SESSION_HEADER = b"mcp-session-id"

_MARK = re.compile(r"^w(\d{1,4})\.(.+)$", re.DOTALL)

_BODY_LIMIT = DEFAULT_MAX_REQUEST_BODY_SIZE
"""A request body read before routing is at most this big: the SDK's own limit."""


_CONSENT_KEY_FILE = "consent-session.key"
"""In the workers' directory: the key every worker signs the consent page's cookies with, so a
person's browser may reach any of them between two steps of a sign-in."""


def write_consent_key(directory: Path) -> None:
    """Make the workers' shared consent-session key (owner-only, like its directory)."""
    path = directory / _CONSENT_KEY_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(secrets.token_bytes(32))


def owned_id(index: int, plain: str) -> str:
    """``plain`` marked as handed out by worker ``index``."""
    return f"w{index}.{plain}"


def owner_of(marked: str) -> tuple[int, str] | None:
    """The worker that handed out ``marked``, and the id as it knows it; ``None`` if unmarked."""
    found = _MARK.match(marked)
    return (int(found.group(1)), found.group(2)) if found else None


@dataclass(frozen=True, slots=True)
class WorkerSeat:
    """Where one worker sits among its siblings.

    Attributes:
        index: This worker's number, from 0.
        count: How many workers serve the socket.
        directory: The private directory holding every worker's Unix socket.
        listener_fd: The shared listening socket, inherited from the supervisor.
        lifeline_fd: The read end of a pipe the supervisor holds open: its end of file asks the
            worker to stop (and comes by itself when the supervisor dies).
        ready_fd: The write end of a pipe on which the worker says it is listening.
    """

    index: int
    count: int
    directory: Path
    listener_fd: int
    lifeline_fd: int
    ready_fd: int

    def socket_of(self, index: int) -> Path:
        """The private Unix socket of worker ``index``."""
        return self.directory / f"worker-{index}.sock"

    @property
    def own_socket(self) -> Path:
        """This worker's private Unix socket."""
        return self.socket_of(self.index)

    def encode(self) -> str:
        """The seat as one command-line value (``parse`` reads it back)."""
        return f"{self.index}/{self.count}:{self.listener_fd}:{self.lifeline_fd}:{self.ready_fd}:{self.directory}"

    def consent_key(self) -> bytes:
        """The key all workers sign the consent page's cookies with (``write_consent_key``)."""
        return (self.directory / _CONSENT_KEY_FILE).read_bytes()

    @classmethod
    def parse(cls, text: str) -> WorkerSeat:
        """Read ``encode``'s form.

        Raises:
            ValueError: ``text`` is not a seat.
        """
        found = re.fullmatch(r"(\d+)/(\d+):(\d+):(\d+):(\d+):(.+)", text)
        if found is None:
            raise ValueError(f"not a worker seat: {text!r}")
        index, count, listener, lifeline, ready = (int(found.group(n)) for n in range(1, 6))
        if not 0 <= index < count:
            raise ValueError(f"worker {index} of {count}")
        return cls(index, count, Path(found.group(6)), listener, lifeline, ready)


class OwnerRouting:
    """ASGI middleware: requests about another worker's session or round go to that worker.

    Outermost, so a forwarded request is parsed and guarded once, by its owner. The SDK's
    session ids are marked with this worker's index in the ``Mcp-Session-Id`` response header
    and unmarked on the way in, so the app inside sees its own ids. A round's ``requestState``
    is made marked (``InputRounds.token_prefix``) and kept as it is.
    """

    def __init__(self, app: ASGIApp, seat: WorkerSeat) -> None:
        self._app = app
        self._seat = seat
        self._peers = Peers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        owner: int | None = None
        body: bytes | None = None
        for position, (name, value) in enumerate(headers):
            if name == SESSION_HEADER:
                marked = owner_of(value.decode("latin-1"))
                if marked is not None:
                    owner = marked[0]
                    headers[position] = (name, marked[1].encode("latin-1"))
                break
        if owner is None and scope.get("method") == "POST":
            body = await read_body(receive)
            if body is None:
                await respond(send, 413, b"Request body too large\n")
                return
            owner = _round_owner(body)
        if owner is not None and owner != self._seat.index:
            if not 0 <= owner < self._seat.count:
                await respond(send, 404, b"Not Found: no such session or round\n")
                return
            await self._forward(owner, scope, receive if body is None else replay(body, receive), send)
            return
        inner_scope = {**scope, "headers": headers}
        inner_receive = receive if body is None else replay(body, receive)
        await self._app(inner_scope, inner_receive, self._marking(send))

    def _marking(self, send: Send) -> Send:
        """``send``, with the session id this worker hands out marked as its own."""
        index = self._seat.index

        async def marked_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, owned_id(index, value.decode("latin-1")).encode("latin-1"))
                    if name.lower() == SESSION_HEADER
                    else (name, value)
                    for name, value in message.get("headers", [])
                ]
                message = {**message, "headers": headers}
            await send(message)

        return marked_send

    async def _forward(self, owner: int, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request to worker ``owner`` as it came, and its answer back as it streams."""
        client = self._peers.client(str(owner), uds=str(self._seat.socket_of(owner)))
        await pass_on(client, "http://worker", scope, receive, send, f"worker {owner}")

    async def aclose(self) -> None:
        """Close the connections to the other workers."""
        await self._peers.aclose()


class Peers:
    """One connection pool per sibling process that requests are passed on to, made on first use."""

    def __init__(self) -> None:
        self._clients: dict[str, httpx2.AsyncClient] = {}

    def client(self, peer: str, *, uds: str | None = None) -> httpx2.AsyncClient:
        """The pool for ``peer`` (over the Unix socket ``uds``, if given); no timeout: answers stream."""
        client = self._clients.get(peer)
        if client is None:
            transport = httpx2.AsyncHTTPTransport(uds=uds)
            client = httpx2.AsyncClient(transport=transport, timeout=httpx2.Timeout(None), trust_env=False)
            self._clients[peer] = client
        return client

    async def aclose(self) -> None:
        """Close every pool."""
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


async def pass_on(
    client: httpx2.AsyncClient, base_url: str, scope: Scope, receive: Receive, send: Send, holder: str
) -> None:
    """Send the request to ``base_url`` (same path and query) as it came; stream the answer back.

    Args:
        client: The connection pool to the process that holds what the request is about.
        base_url: Its scheme and authority.
        scope: The request.
        receive: Its body and then its disconnect.
        send: Where the answer goes.
        holder: The process, for the log.
    """
    body = await read_body(receive)
    if body is None:
        await respond(send, 413, b"Request body too large\n")
        return
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    url = base_url + path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
    headers = [(name, value) for name, value in scope.get("headers", []) if name not in _HOP_HEADERS]
    request = client.build_request(scope["method"], url, headers=headers, content=body)
    try:
        response = await client.send(request, stream=True)
    except httpx2.TransportError as exc:
        logger.warning("%s did not take a request for its session or round: %s", holder, exc)
        await respond(send, 503, b"Service Unavailable: the process holding this session or round is gone\n")
        return
    try:
        async with anyio.create_task_group() as tg:
            # A client that goes away ends the passing on, so the holder's stream (a legacy
            # GET stream may last for hours) is closed too.
            tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (name, value) for name, value in response.headers.raw if name.lower() not in _HOP_HEADERS
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            tg.cancel_scope.cancel()
    finally:
        await response.aclose()


_HOP_HEADERS = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"upgrade", b"te"})
"""Headers of one HTTP hop, not of the request (httpx and uvicorn set their own)."""


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


def _round_owner(body: bytes) -> int | None:
    """The worker holding the round a ``tools/call`` answers (its ``requestState``), if any.

    A replica's mark before the worker's (``_replicas``) has been dealt with by then: a round
    sealed by another replica went there, so what reaches the workers is this replica's.
    """
    for state in request_states(body):
        if (marked := owner_of(_REPLICA_MARK.sub("", state, count=1))) is not None:
            return marked[0]
    return None


_REPLICA_MARK = re.compile(r"^r\.[A-Za-z0-9_-]+\.")
"""A replica's mark (``_replicas.ReplicaMark.prefix``): each worker of a replica seals its own."""


def request_states(body: bytes) -> list[str]:
    """The ``requestState`` of each JSON-RPC message of a request body (most bodies: none, unparsed)."""
    if b'"requestState"' not in body:
        return []
    try:
        message: Any = json.loads(body)
    except ValueError:
        return []
    items: list[object] = cast("list[object]", message) if isinstance(message, list) else [message]
    return [state for item in items if (state := _request_state(item)) is not None]


def _request_state(message: object) -> str | None:
    """``params.requestState`` of one JSON-RPC message, if it is a string."""
    if not isinstance(message, dict):
        return None
    params = cast("dict[str, object]", message).get("params")
    if not isinstance(params, dict):
        return None
    state = cast("dict[str, object]", params).get("requestState")
    return state if isinstance(state, str) else None


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or ``None`` past ``_BODY_LIMIT``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > _BODY_LIMIT:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` with the body already read given once more, then the client's own messages.

    After its body the app only learns of a disconnect, which still comes from the client.
    """
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def respond(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
