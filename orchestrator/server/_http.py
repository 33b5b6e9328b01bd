"""Serving over streamable HTTP, with the security defaults of a local tool.

- Binds 127.0.0.1 unless told otherwise, and refuses a non-loopback address unless
  authentication is configured (static tokens, the embedded OAuth server, or JWTs from an
  identity provider, ``_http_auth``), which it then requires on every request but the OAuth
  endpoints and the consent page. A missing or bad token gets 401 with a ``WWW-Authenticate``
  challenge naming the protected-resource metadata; a token only in the query string is no token.
- Rejects a foreign ``Origin`` with 403 (DNS-rebinding protection); on a loopback bind it
  also rejects a ``Host`` that is not a loopback name. Requests without ``Origin``
  (non-browser clients) are accepted.
- The inbound ``Authorization`` header is checked here and goes no further: downstream
  servers get only their own configured credentials.

Besides the MCP endpoint, ``GET /healthz`` (the process is up) and ``GET /readyz`` (the
readiness rule of ``_status``) answer without a token and without details, for load
balancers and supervisors; ``GET /status`` gives the status document, behind the guard.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import signal
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio
import uvicorn
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.requests import HTTPConnection

from orchestrator._version import NAME
from orchestrator.errors import ConfigError
from orchestrator.server._access import AUTH_REQUIRED_SCOPE_KEY, scope_principal
from orchestrator.server._replicas import ReplicaMark, ReplicaRouting
from orchestrator.server._status import StatusReporter
from orchestrator.server._workers import OwnerRouting, WorkerSeat, owned_id

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Mapping
    from pathlib import Path

    from starlette.types import ASGIApp, Receive, Scope, Send

    from orchestrator.config import ServeSpec
    from orchestrator.server._app import OrchestratorServer
    from orchestrator.server._http_auth import HttpAuth

__all__ = ["PROBE_PATHS", "STATUS_PATH", "HttpSecurity", "bind_socket", "http_app", "serve_http"]

PROBE_PATHS = ("/healthz", "/readyz")
"""Answered without a token: a supervisor or load balancer learns nothing else from them."""
STATUS_PATH = "/status"

logger = logging.getLogger(__name__)

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address) is a loopback address."""
    if host.strip("[]") in _LOOPBACK_NAMES or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class HttpSecurity:
    """What the HTTP guard enforces.

    Attributes:
        bind_host: The address served; a loopback one also restricts the ``Host`` header.
        allowed_origins: Browser origins accepted besides loopback ones (and the public ones of ``auth``).
        auth: How requests authenticate; ``None`` serves the local owner without credentials
            (loopback binds only).
    """

    bind_host: str
    allowed_origins: tuple[str, ...]
    auth: HttpAuth | None = None

    @classmethod
    def from_config(
        cls, serve: ServeSpec, host: str, env: Mapping[str, str], source: str, auth: HttpAuth | None = None
    ) -> HttpSecurity:
        """Check the bind address is allowed with the authentication configured.

        Raises:
            ConfigError: A non-loopback address is requested without any credentials configured.
        """
        if not is_loopback(host) and auth is None and not serve.auth.any_configured(env):
            raise ConfigError(
                source,
                [
                    f"serve.host: refusing to listen on non-loopback address {host!r} without authentication; "
                    f"set {serve.auth.tokens_env} in the environment (comma-separated tokens), or configure "
                    "serve.auth.oauth or serve.auth.jwt"
                ],
            )
        return cls(bind_host=host, allowed_origins=serve.allowed_origins, auth=auth)

    def origin_allowed(self, origin: str) -> bool:
        """Loopback origins, those configured, and the public origin of the issuer are allowed."""
        if origin in self.allowed_origins or (self.auth is not None and origin in self.auth.public_origins):
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and is_loopback(parts.hostname or "")

    def host_allowed(self, host_header: str) -> bool:
        """On a loopback bind only loopback Host names (and the public host of the issuer) are served.

        A tunnel or reverse proxy forwards the public ``Host``; anything else on a loopback
        bind is a DNS-rebinding attempt.
        """
        if not is_loopback(self.bind_host):
            return True
        name = urlsplit(f"//{host_header}").hostname or ""
        if self.auth is not None and any(urlsplit(o).hostname == name for o in self.auth.public_origins):
            return True
        return is_loopback(name)


class _Guard:
    """ASGI middleware enforcing ``HttpSecurity`` before any MCP handling.

    Every path needs a valid token, except the OAuth endpoints and metadata (public, and
    called cross-origin by OAuth clients, so not Origin-checked) and the consent page (a
    person's browser: Origin-checked, its own sign-in). A request that passes carries the
    SDK's ``AuthenticatedUser`` in its scope, as the SDK's own bearer middleware leaves it.
    """

    def __init__(self, app: ASGIApp, security: HttpSecurity) -> None:
        auth = security.auth
        self._app = app if auth is None else AuthContextMiddleware(app)
        self._security = security
        self._backend = (
            None
            if auth is None
            else BearerAuthBackend(
                auth.verifier,
                resource_server_url=AnyHttpUrl(auth.resource_url) if auth.resource_url else None,
            )
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path: str = scope.get("path", "")
        auth = self._security.auth
        public = auth is not None and path in auth.public_paths
        browser = auth is not None and any(
            path == prefix or path.startswith(f"{prefix}/") for prefix in auth.browser_prefixes
        )
        origin = headers.get("origin")
        if not self._security.host_allowed(headers.get("host", "")):
            await self._refuse(scope, send, 403, "Forbidden: Host not allowed")
            return
        if origin and not public and not self._security.origin_allowed(origin):
            await self._refuse(scope, send, 403, "Forbidden: Origin not allowed")
            return
        if self._backend is not None and auth is not None:
            scope[AUTH_REQUIRED_SCOPE_KEY] = True
            result = await self._backend.authenticate(HTTPConnection(scope))
            if result is not None:
                scope["auth"], scope["user"] = result
            elif not (public or browser):
                await self._challenge(scope, send, auth, 401, "invalid_token", "A valid bearer token is required")
                return
            if result is not None and not (public or browser):
                missing = [needed for needed in auth.required_scopes if needed not in result[0].scopes]
                if missing:
                    await self._challenge(
                        scope, send, auth, 403, "insufficient_scope", f"Required scope: {' '.join(missing)}"
                    )
                    return
        await self._app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, status: int, reason: str) -> None:
        logger.warning("HTTP %d for %s %s: %s", status, scope.get("method"), scope.get("path"), reason)
        await _respond(send, status, reason.encode())

    async def _challenge(
        self, scope: Scope, send: Send, auth: HttpAuth, status: int, error: str, description: str
    ) -> None:
        """401/403 with the ``WWW-Authenticate`` challenge of RFC 6750 and RFC 9728 (never echoing the token)."""
        parts = [f'realm="{NAME}"', f'error="{error}"', f'error_description="{description}"']
        if auth.resource_metadata_url:
            parts.append(f'resource_metadata="{auth.resource_metadata_url}"')
        if auth.challenge_scopes:
            parts.append(f'scope="{" ".join(auth.challenge_scopes)}"')
        logger.warning("HTTP %d for %s %s: %s", status, scope.get("method"), scope.get("path"), error)
        body = json.dumps({"error": error, "error_description": description}).encode()
        challenge = ("Bearer " + ", ".join(parts)).encode()
        await _respond(send, status, body, b"application/json", [(b"www-authenticate", challenge)])


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = b"text/plain",
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *(extra_headers or [])]})
    await send({"type": "http.response.body", "body": body})


class _Probes:
    """``/healthz`` and ``/readyz`` before the guard; everything else goes through it."""

    def __init__(self, guarded: ASGIApp, reporter: StatusReporter) -> None:
        self._guarded = guarded
        self._reporter = reporter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in PROBE_PATHS:
            await self._guarded(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"Method Not Allowed\n")
        elif scope["path"] == "/healthz":
            await _respond(send, 200, b"ok\n")
        elif self._reporter.ready():
            await _respond(send, 200, b"ready\n")
        else:
            await _respond(send, 503, b"not ready\n")


class _StatusRoute:
    """``GET /status`` (behind the guard): the status document as JSON."""

    def __init__(self, app: ASGIApp, reporter: StatusReporter) -> None:
        self._app = app
        self._reporter = reporter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != STATUS_PATH:
            await self._app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"Method Not Allowed\n")
            return
        if not scope_principal(scope).grant.everything:
            # Every server's name and state: for principals granted everything only.
            await _respond(send, 403, b"Forbidden: /status needs a grant of everything\n")
            return
        body = json.dumps(self._reporter.document(), indent=2).encode() + b"\n"
        await _respond(send, 200, body, b"application/json")


class _Uvicorn(uvicorn.Server):
    """uvicorn, except that it does not re-raise the stop signal after shutting down, or takes no signals.

    The caller still has to stop the downstream children and flush spans before the process
    exits; a re-raised SIGTERM would kill it first. An embedding application owns its
    process's signals, so then none are taken.
    """

    def __init__(self, config: uvicorn.Config, *, handle_signals: bool) -> None:
        super().__init__(config)
        self._handle_signals = handle_signals

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if not self._handle_signals:
            yield
            return
        with super().capture_signals():
            yield
            # Logged here, not in the signal handler, where taking the logging lock could deadlock.
            for signum in self._captured_signals[:1]:
                logger.info("received %s; stopped serving HTTP, shutting down", signal.Signals(signum).name)
            self._captured_signals.clear()


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket (port 0 picks a free port)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio enables TCP_NODELAY on accepted connections only then;
    # with Nagle on, a response's body waits ~40 ms behind its headers.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def http_app(
    server: OrchestratorServer,
    security: HttpSecurity,
    *,
    path: str,
    reporter: StatusReporter | None = None,
) -> ASGIApp:
    """The ASGI app serving ``server``: the MCP endpoint at ``path``, the probes, ``/status``, the guard.

    Its lifespan runs the MCP session manager, so the ASGI server that runs it must run
    lifespan events (uvicorn and hypercorn do by default).

    Args:
        server: What to serve.
        security: The guard's rules.
        path: The MCP endpoint's path.
        reporter: Answers ``/healthz``, ``/readyz`` and ``/status``; default one for ``server``.
    """
    app = server.lowlevel.streamable_http_app(
        streamable_http_path=path,
        host=security.bind_host,
        # Our guard does Origin/Host checks for every bind address, so the SDK's are off.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        custom_starlette_routes=list(security.auth.routes) if security.auth is not None else None,  # type: ignore[arg-type]
    )
    reporter = reporter or StatusReporter(server)
    return _Probes(_Guard(_StatusRoute(app, reporter), security), reporter)


async def serve_http(
    server: OrchestratorServer,
    security: HttpSecurity,
    *,
    port: int,
    path: str,
    on_listening: Callable[[str], None] | None = None,
    reporter: StatusReporter | None = None,
    handle_signals: bool = False,
    seat: WorkerSeat | None = None,
    replica: ReplicaMark | None = None,
) -> None:
    """Serve streamable HTTP until cancelled (or, with ``handle_signals``, until SIGINT/SIGTERM).

    Either way the stop is graceful: no new connections, open requests drained, then return
    (a cancellation is re-raised after that).

    Args:
        server: What to serve.
        security: The guard's rules.
        port: TCP port (0 picks a free one).
        path: The MCP endpoint's path.
        on_listening: Told the endpoint URL once the socket is bound.
        reporter: Answers ``/healthz``, ``/readyz`` and ``/status``; default one for ``server``.
        handle_signals: Stop on SIGINT and SIGTERM (process-wide handlers, for a process whose
            main job this is); off for an application that embeds the aggregator.
        seat: Serve as one worker of several (``serve --workers``): on the supervisor's socket
            (``port`` unused) and a private one for the requests the others pass on; stop when
            the supervisor asks or goes.
        replica: Serve as one replica of several (``serve.advertise_url``): the answers to this
            replica's input rounds that reach another replica are passed here, and the other way
            round.
    """
    app = http_app(server, security, path=path, reporter=reporter)
    routers: list[OwnerRouting | ReplicaRouting] = []
    replica_prefix = replica.prefix if replica is not None else ""
    if seat is None:
        sockets = [bind_socket(security.bind_host, port)]
    else:
        app = OwnerRouting(app, seat)
        routers.append(app)
        sockets = [socket.socket(fileno=seat.listener_fd), _bind_private(seat.own_socket)]
    if replica is not None:
        app = ReplicaRouting(app, replica)
        routers.append(app)
    if seat is not None or replica is not None:
        server.mark_ids(replica_prefix + (owned_id(seat.index, "") if seat is not None else ""))
    actual_port = sockets[0].getsockname()[1]
    shown_host = f"[{security.bind_host}]" if ":" in security.bind_host else security.bind_host
    url = f"http://{shown_host}:{actual_port}{path}"
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn_server = _Uvicorn(config, handle_signals=handle_signals)
    if on_listening is not None:
        on_listening(url)
    stopped = anyio.Event()

    async def run() -> None:
        # Shielded, so a cancellation becomes uvicorn's own graceful stop instead of an
        # abandoned socket and session manager.
        with anyio.CancelScope(shield=True):
            try:
                await uvicorn_server.serve(sockets=sockets)
            finally:
                stopped.set()

    async def stop_when_asked(lifeline: int) -> None:
        # The supervisor closes its end to stop this worker; the kernel does if it dies.
        while True:
            await anyio.wait_readable(lifeline)
            if not os.read(lifeline, 64):
                break
        logger.info("the supervisor asked this worker to stop")
        _exit_after(_ORPHAN_GRACE)
        uvicorn_server.should_exit = True

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            if seat is not None:
                tg.start_soon(stop_when_asked, seat.lifeline_fd)
                _say_ready(seat.ready_fd, url)
            try:
                await stopped.wait()
            finally:
                uvicorn_server.should_exit = True
                tg.cancel_scope.cancel()
    finally:
        for router in routers:
            await router.aclose()
        if seat is not None:
            with contextlib.suppress(OSError):
                seat.own_socket.unlink()


_ORPHAN_GRACE = 45.0
"""Seconds a worker told to stop may take to drain and exit before it exits regardless.

A supervisor that stops its workers kills any still there after its own grace (30 s); one that
died cannot, and a worker must never outlive it for good (a request or a task that ignores
its cancellation would otherwise hold it forever)."""


def _exit_after(seconds: float) -> None:
    """End this process in ``seconds``, from a thread of its own, whatever its event loop does."""

    def exit_now() -> None:
        logger.warning("this worker did not stop within %.0f s of being asked; exiting now", seconds)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(seconds, exit_now)
    timer.daemon = True  # a process that stops in time is not kept waiting for it
    timer.start()


def _bind_private(path: Path) -> socket.socket:
    """A listening Unix socket at ``path`` (in the workers' owner-only directory)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a dead predecessor's
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(128)
    return sock


def _say_ready(ready_fd: int, url: str) -> None:
    """Tell the supervisor this worker listens (one line, then the pipe closes)."""
    try:
        os.write(ready_fd, f"{url}\n".encode())
    except OSError:  # the supervisor is gone; the lifeline stops us
        pass
    finally:
        os.close(ready_fd)
