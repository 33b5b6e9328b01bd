"""The consent page served for real: an honest in-memory backend, uvicorn on 127.0.0.1, a client's callback.

The backend keeps pending requests in a dict, checks one password, counts failures and locks
sign-in after too many; it records every call so tests can tell whether the page reached it.
The callback endpoint stands for the connecting app's redirect URI and records what arrives.
"""

from __future__ import annotations

import hmac
import secrets
import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Mount, Route

from orchestrator.auth._consent import consent_routes
from orchestrator.auth._consent_types import ConsentGroup, ConsentTool, PendingAuthorization, SignInResult

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Sequence

    from starlette.requests import Request

    from orchestrator.auth._principal import Grant

__all__ = ["CATALOGUE", "PASSWORD", "ConsentSite", "MemoryConsentBackend", "serving_consent"]

PASSWORD = "correct horse battery staple"

CATALOGUE = (
    ConsentGroup(
        kind="server",
        key="clock",
        title="clock",
        tools=(
            ConsentTool(
                "clock__now", "Current time", "The time now in a time zone.", read_only=True, destructive=False
            ),
            ConsentTool("clock__convert", None, "Convert a time between zones.", read_only=True, destructive=False),
        ),
    ),
    ConsentGroup(
        kind="server",
        key="tickets",
        title="tickets",
        tools=(
            ConsentTool(
                "tickets__list", "List tickets", "Open tickets, newest first.", read_only=True, destructive=False
            ),
            ConsentTool("tickets__create", "Create a ticket", "File a new ticket.", read_only=False, destructive=False),
            ConsentTool(
                "tickets__delete", "Delete a ticket", "Remove a ticket for good.", read_only=False, destructive=True
            ),
        ),
    ),
    ConsentGroup(
        kind="composites",
        key="composites",
        title="workflows",
        tools=(
            ConsentTool(
                "triage", "Triage", "Read the open tickets and stamp them.", read_only=False, destructive=False
            ),
        ),
    ),
)


@dataclass
class MemoryConsentBackend:
    """A small, honest ``ConsentBackend``: what the embedded authorization server does, in a dict."""

    password: str | None = PASSWORD
    groups: Sequence[ConsentGroup] = CATALOGUE
    max_failures: int = 3
    lockout: timedelta = timedelta(minutes=15)
    requests: dict[str, PendingAuthorization] = field(default_factory=dict[str, PendingAuthorization])
    failures: int = 0
    locked_until: datetime | None = None
    grants: dict[str, Grant] = field(default_factory=dict[str, "Grant"])
    codes: dict[str, str] = field(default_factory=dict[str, str])
    calls: list[str] = field(default_factory=list[str])

    def add_request(
        self, *, redirect_uri: str, client_name: str = "Example Assistant", current_grant: Grant | None = None
    ) -> PendingAuthorization:
        """A new pending request of a client, as ``/authorize`` would make it."""
        pending = PendingAuthorization(
            request_id=secrets.token_urlsafe(24),
            client_id=f"client-{secrets.token_hex(4)}",
            client_name=client_name,
            redirect_uri=redirect_uri,
            scopes=("mcp",),
            expires_at=datetime.now(UTC) + timedelta(minutes=10),
            current_grant=current_grant,
        )
        self.requests[pending.request_id] = pending
        return pending

    async def pending(self, request_id: str) -> PendingAuthorization | None:
        self.calls.append("pending")
        found = self.requests.get(request_id)
        return found if found is not None and found.expires_at > datetime.now(UTC) else None

    async def sign_in(self, password: str) -> SignInResult:
        self.calls.append("sign_in")
        now = datetime.now(UTC)
        if self.locked_until is not None:
            if now < self.locked_until:
                return SignInResult(ok=False, locked_until=self.locked_until)
            self.locked_until, self.failures = None, 0
        if self.password is None:
            return SignInResult(ok=False, no_password_set=True)
        if hmac.compare_digest(password.encode(), self.password.encode()):
            self.failures = 0
            return SignInResult(ok=True)
        self.failures += 1
        if self.failures >= self.max_failures:
            self.locked_until = now + self.lockout
        return SignInResult(ok=False, locked_until=self.locked_until)

    async def approve(self, request_id: str, grant: Grant) -> str:
        self.calls.append("approve")
        pending = self.requests.pop(request_id)
        self.grants[pending.client_id] = grant
        code = secrets.token_urlsafe(16)
        self.codes[code] = pending.client_id
        return f"{pending.redirect_uri}?{urlencode({'code': code, 'state': 'st-1'})}"

    async def deny(self, request_id: str) -> str:
        self.calls.append("deny")
        pending = self.requests.pop(request_id)
        return f"{pending.redirect_uri}?{urlencode({'error': 'access_denied', 'state': 'st-1'})}"

    def catalogue(self) -> Sequence[ConsentGroup]:
        self.calls.append("catalogue")
        return self.groups


@dataclass
class ConsentSite:
    """The running site: its base URL, the client's callback URL and what reached the callback."""

    base: str
    consent: str
    callback: str
    arrivals: list[dict[str, str]]
    arrived: anyio.Event

    def consent_url(self, pending: PendingAuthorization) -> str:
        return f"{self.consent}?request={pending.request_id}"


@asynccontextmanager
async def serving_consent(
    backend: MemoryConsentBackend, *, secure_cookies: bool = False, mount: str = ""
) -> AsyncGenerator[ConsentSite, None]:
    """Serve ``consent_routes(backend)`` (under ``mount``, if given) and a callback with uvicorn on 127.0.0.1."""
    # Listening before uvicorn starts: connections wait in the backlog, no need to poll for "started".
    sock = socket.create_server(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    site = ConsentSite(
        base=base, consent=f"{base}{mount}/consent", callback=f"{base}/callback", arrivals=[], arrived=anyio.Event()
    )

    async def callback(request: Request) -> PlainTextResponse:
        site.arrivals.append(dict(request.query_params))
        site.arrived.set()
        return PlainTextResponse("back at the app")

    consent = consent_routes(backend, secure_cookies=secure_cookies)
    mounted: list[BaseRoute] = [Mount(mount, routes=consent)] if mount else [*consent]
    app = Starlette(routes=[*mounted, Route("/callback", callback)])
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: server.serve(sockets=[sock]))
        try:
            yield site
        finally:
            server.should_exit = True
