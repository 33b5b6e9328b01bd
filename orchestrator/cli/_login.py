"""``orchestrator login SERVER`` and ``logout SERVER``: OAuth sign-in to a remote downstream server.

``login`` runs the authorization code + PKCE flow of the SDK's ``mcp.client.auth`` for a server
with ``auth: oauth``: discovery and registration happen there; here are the user's side of it.
It listens on a loopback port (``http://127.0.0.1:PORT/callback``, RFC 8252), prints the
authorization URL (always, so a headless user or a test can open it) and opens the browser
unless ``--no-browser``, waits a bounded time for the browser to come back, and lists the
server's tools with the new tokens, which the state database keeps sealed (``trust``). A
running ``serve`` picks them up within seconds. ``logout`` deletes the tokens.

Only this command ever opens a browser; a serving process only uses and refreshes tokens.
"""

from __future__ import annotations

import logging
import os
import sys
import webbrowser
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from mcp import Client
from mcp.client.auth import OAuthFlowError
from mcp.shared.auth import AuthorizationCodeResult

from orchestrator import store as state_db
from orchestrator import trust
from orchestrator._egress import EgressRules
from orchestrator.cli._subcommands import add_config_option, config_of, open_state_of
from orchestrator.config import HttpServerSpec, OrchestratorConfig
from orchestrator.downstream import open_transport
from orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Generator

    import httpx2
    from anyio.streams.stapled import MultiListener

    from orchestrator.cli._subcommands import SubcommandAdder

__all__ = ["add_parser", "run"]

DEFAULT_WAIT = 300.0
"""Seconds ``login`` waits for the browser to come back."""
_REQUEST_WAIT = 10.0
_PAGE = (
    "<!doctype html><meta charset=utf-8><title>{title}</title>"
    "<body style='font-family:sans-serif;margin:3em'><h1>{title}</h1><p>{text}</p></body>"
)


class _LoginFailed(Exception):
    """Why a login did not finish, in words for the user (no token, no code)."""


def add_parser(subparsers: SubcommandAdder) -> None:
    """Register ``orchestrator login`` and ``orchestrator logout`` with the CLI's subcommands."""
    login = add_config_option(
        subparsers.add_parser(
            "login",
            help="sign in to a remote server with auth: oauth (opens the browser)",
            description=(
                "Sign in to the HTTP server SERVER (its entry says auth: oauth) with OAuth: the authorization "
                "URL is printed and opened in the browser; after you approve, the tokens are stored encrypted "
                "in the state database, and a running serve uses them within seconds."
            ),
        )
    )
    login.add_argument("server", metavar="SERVER", help="the server's key in the config")
    login.add_argument("--no-browser", action="store_true", help="only print the URL; open it yourself")
    login.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_WAIT,
        metavar="SECONDS",
        help=f"how long to wait for the browser to come back (default {DEFAULT_WAIT:g})",
    )
    logout = add_config_option(
        subparsers.add_parser("logout", help="delete the stored OAuth tokens of a remote server")
    )
    logout.add_argument("server", metavar="SERVER", help="the server's key in the config")


def run(args: argparse.Namespace) -> int:
    """Run ``login`` or ``logout`` as parsed; 0 on success, 1 when the sign-in failed, 2 on a usage error."""
    try:
        config = config_of(args.config)
        spec = _oauth_server(config, args.server)
        if args.command == "logout":
            return anyio.run(_logout, config, args.server)
        if args.timeout <= 0:
            raise _Usage("--timeout must be positive")
        with _quiet_sdk(int(getattr(args, "verbose", 0) or 0)):
            return anyio.run(_login, config, args.server, spec, not args.no_browser, float(args.timeout))
    except (_Usage, OrchestratorError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except _LoginFailed as exc:
        print(f"login to {args.server!r} failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


class _Usage(Exception):
    """A mistake in the command or config the user can fix."""


def _oauth_server(config: OrchestratorConfig, key: str) -> HttpServerSpec:
    spec = config.servers.get(key)
    if spec is None:
        known = ", ".join(k for k, s in config.servers.items() if isinstance(s, HttpServerSpec) and s.auth) or "none"
        raise _Usage(f"no server {key!r} in {config.source or 'the config'} (servers with auth: oauth: {known})")
    if not isinstance(spec, HttpServerSpec) or spec.auth is None:
        raise _Usage(f"server {key!r} does not sign in with OAuth: give its entry 'auth: oauth' (HTTP servers only)")
    return spec


@contextmanager
def _quiet_sdk(verbosity: int) -> Generator[None]:
    """The SDK logs a failed flow with a traceback; the command says why in one line instead."""
    sdk = logging.getLogger("mcp.client.auth")
    level = sdk.level
    if not verbosity:
        sdk.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        sdk.setLevel(level)


async def _logout(config: OrchestratorConfig, key: str) -> int:
    async with open_state_of(config) as store:
        had = await state_db.delete_downstream_tokens(store.engine, key, at=datetime.now(UTC))
    print(f"logged out of {key!r}: its tokens are deleted" if had else f"{key!r} was not logged in")
    return 0


class _Callback:
    """The loopback redirect target: one HTTP GET to /callback, answered with a page, its query handed over."""

    def __init__(self, listener: MultiListener[anyio.abc.SocketStream]) -> None:
        self._listener = listener
        self._send, self._receive = anyio.create_memory_object_stream[dict[str, str]](1)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._listener.extra(SocketAttribute.local_port))

    async def serve(self) -> None:
        """Answer connections until cancelled."""
        await self._listener.serve(self._handle)

    async def wait(self, timeout: float) -> dict[str, str]:
        """The callback's query parameters.

        Raises:
            _LoginFailed: The browser did not come back within ``timeout`` seconds.
        """
        try:
            with anyio.fail_after(timeout):
                return await self._receive.receive()
        except TimeoutError:
            raise _LoginFailed(
                f"the browser did not come back within {timeout:g}s (was the URL opened and approved?)"
            ) from None

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            data = b""
            with anyio.move_on_after(_REQUEST_WAIT):
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    try:
                        data += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
            method, _, rest = data.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
            target = urlsplit(rest.rpartition(" ")[0] or rest)
            if method != "GET" or target.path != "/callback":
                await _answer(stream, "404 Not Found", "Not found", "This is the orchestrator's login callback.")
                return
            params = {name: values[0] for name, values in parse_qs(target.query).items()}
            if "error" in params:
                await _answer(stream, "200 OK", "Login refused", "You may close this window.")
            else:
                await _answer(stream, "200 OK", "Logged in", "You may close this window and return to the terminal.")
            with suppress(anyio.WouldBlock):  # a second callback (a reload): the first one counts
                self._send.send_nowait(params)


async def _answer(stream: anyio.abc.SocketStream, status: str, title: str, text: str) -> None:
    body = _PAGE.format(title=title, text=text).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
    with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):  # the browser went away
        await stream.send(head.encode() + b"Connection: close\r\n\r\n" + body)


async def _listen(preferred: int | None) -> MultiListener[anyio.abc.SocketStream]:
    """A listener on 127.0.0.1: the port a registration names when it is free, else any free one."""
    if preferred is not None:
        try:
            return await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=preferred)
        except OSError:
            pass  # taken: register again with the new port
    return await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)


def _registered_port(redirect_uris: list[str]) -> int | None:
    for uri in redirect_uris:
        parts = urlsplit(uri)
        if parts.hostname == "127.0.0.1" and parts.port is not None and parts.path == "/callback":
            return parts.port
    return None


async def _login(config: OrchestratorConfig, key: str, spec: HttpServerSpec, browser: bool, timeout: float) -> int:
    url = state_db.state_url(config.state, os.environ, str(config.source or "<config>"))
    async with state_db.open_store(url) as store:
        box = trust.open_secret_box(url, os.environ)
        stored = await trust.DownstreamAuthFactory(store.engine, box).storage(key, spec).get_client_info()
        registered = [str(uri) for uri in (stored.redirect_uris or [])] if stored is not None else []
        listener = await _listen(_registered_port(registered))
        callback = _Callback(listener)
        redirect_uri = trust.loopback_redirect_uri(callback.port)
        assert spec.auth is not None
        # A registration made for another port would be refused at /authorize: register again.
        dynamic = (
            stored is not None and spec.auth.client_id is None and stored.client_id != spec.auth.client_metadata_url
        )
        storage = trust.EncryptedTokenStorage(
            store.engine,
            key,
            box,
            preregistered=trust.preregistered_client(spec.auth, redirect_uri),
            ignore_stored_client=dynamic and redirect_uri not in registered,
            ignore_stored_tokens=True,  # a login starts afresh; the old tokens stay until new ones replace them
        )

        async def show(authorization_url: str) -> None:
            print(f"Open this URL to sign in to {key!r}:\n\n  {authorization_url}\n", flush=True)
            if browser:
                await anyio.to_thread.run_sync(webbrowser.open, authorization_url)
            print(f"Waiting for the browser at {redirect_uri} ...", flush=True)

        async def came_back() -> AuthorizationCodeResult:
            params = await callback.wait(timeout)
            if "error" in params:
                raise _LoginFailed(f"the authorization server said {params['error']!r} (was it denied?)")
            if "code" not in params:
                raise _LoginFailed("the browser came back without an authorization code")
            return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))

        provider = trust.login_provider(spec.url, spec.auth, storage, redirect_uri, show, came_back)
        egress = EgressRules.from_allow(config.egress.allow)
        tool_count = await _with_callback(callback, listener, _list_tools(spec, provider, egress))
    print(f"Logged in to {key!r}: {tool_count} tools. The tokens are stored encrypted in {store.url}.")
    return 0


async def _with_callback(
    callback: _Callback, listener: MultiListener[anyio.abc.SocketStream], work: Awaitable[int]
) -> int:
    """Await ``work`` while ``callback`` answers the browser; the port is closed after."""
    result = 0
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(callback.serve)
        try:
            result = await work
        finally:
            tg.cancel_scope.cancel()
    return result


async def _list_tools(spec: HttpServerSpec, provider: httpx2.Auth, egress: EgressRules) -> int:
    """Connect with ``provider`` (which runs the flow on the server's 401) and count the tools.

    Discovery, registration and token requests go over the same egress-guarded client as the
    serving process's, under the config's ``egress.allow``.

    Raises:
        _LoginFailed: The flow or the connection failed; the reason in one line.
    """
    try:
        async with Client(
            open_transport(spec, anyio.Event(), None, egress=egress, auth=provider),
            mode="auto",
            read_timeout_seconds=spec.timeout,
        ) as client:
            return len((await client.list_tools()).tools)
    # Boundary: whatever the flow or the server did, the user gets one line, not a traceback.
    except Exception as exc:
        raise _LoginFailed(_reason(exc)) from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        inner = cast("tuple[BaseException, ...]", exc.exceptions)  # pyright: ignore[reportUnknownMemberType]
        return "; ".join(_reason(e) for e in inner)
    if isinstance(exc, _LoginFailed):
        return str(exc)
    if isinstance(exc, OAuthFlowError):
        text = str(exc)
        if text.startswith("State parameter mismatch"):
            return "the browser came back with another login's state (a stale or forged redirect); try again"
        return f"{type(exc).__name__}: {text.splitlines()[0][:300]}"
    return f"{type(exc).__name__}: {str(exc)[:300]}"
