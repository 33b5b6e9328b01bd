"""The orchestrator as an OAuth client of remote downstream servers: stored tokens, used and refreshed.

Built on the SDK's ``mcp.client.auth``: its ``OAuthClientProvider`` discovers the authorization
server (RFC 9728, RFC 8414), registers (a Client ID Metadata Document, else dynamic
registration, unless a ``client_id`` is configured), runs authorization code + PKCE, and
refreshes. Here are what it leaves to its user:

- ``EncryptedTokenStorage``, its ``TokenStorage``: tokens and client registration sealed with
  the ``SecretBox`` key and kept in the store, with the access token's expiry time;
- ``StoredTokenAuth``, the provider a serving process uses: it refreshes shortly before the
  stored expiry (the SDK alone would trust a stored token until a 401), refreshes once more
  when the server refuses a token early, and never starts the interactive flow: when only a
  login can help it raises ``DownstreamLoginRequired`` instead (and records a refused
  refresh, so ``doctor`` can say so), before any request when nothing usable is stored.

``orchestrator login`` (``cli``) runs the interactive flow with ``login_provider``.
Tokens are never logged, put in errors or spans, or sent anywhere but the server's own
authorization server and MCP endpoint.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, cast

from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl, ValidationError

from orchestrator._version import NAME
from orchestrator.errors import DownstreamLoginRequired
from orchestrator.store import (
    read_downstream_credentials,
    record_downstream_refresh_failure,
    save_downstream_client,
    save_downstream_tokens,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping

    import httpx2
    from mcp.shared.auth import AuthorizationCodeResult
    from sqlalchemy.ext.asyncio import AsyncEngine

    from orchestrator.config import DownstreamOAuthSpec, HttpServerSpec
    from orchestrator.trust._secrets import SecretBox

__all__ = [
    "DownstreamAuthFactory",
    "EncryptedTokenStorage",
    "LoginState",
    "StoredTokenAuth",
    "login_hint",
    "login_provider",
    "login_state",
    "loopback_redirect_uri",
    "preregistered_client",
]

logger = logging.getLogger(__name__)

REFRESH_MARGIN: Final = 60.0
"""Refresh this long before the access token expires (at most a tenth of its lifetime)."""
_GRANT_TYPES: Final = ["authorization_code", "refresh_token"]
_PLACEHOLDER_REDIRECT: Final = "http://127.0.0.1/callback"
"""A serving process never redirects a browser; the SDK's metadata model needs some URI."""


def loopback_redirect_uri(port: int) -> str:
    """The redirect URI ``orchestrator login`` listens on (RFC 8252 loopback redirect)."""
    return f"http://127.0.0.1:{port}/callback"


def login_hint(server: str) -> str:
    """What to run to log in to ``server``."""
    return f"run 'orchestrator login {server}'"


def _client_metadata(spec: DownstreamOAuthSpec, redirect_uri: str) -> OAuthClientMetadata:
    return OAuthClientMetadata(
        client_name=NAME,
        redirect_uris=[AnyUrl(redirect_uri)],
        grant_types=list(_GRANT_TYPES),
        response_types=["code"],
        token_endpoint_auth_method="none",
        scope=" ".join(spec.scopes) or None,
    )


def _now() -> datetime:
    return datetime.now(UTC)


class EncryptedTokenStorage:
    """The SDK's ``TokenStorage`` over the store: every blob sealed before it is written.

    Args:
        engine: The state database.
        server: The server's key; blobs are bound to it.
        box: Seals and opens the blobs.
        preregistered: The configured ``client_id``'s registration, returned when none is stored.
        ignore_stored_client: Pretend no registration is stored (a login that must register again).
        ignore_stored_tokens: Pretend no tokens are stored (a login, which starts afresh).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        server: str,
        box: SecretBox,
        *,
        preregistered: OAuthClientInformationFull | None = None,
        ignore_stored_client: bool = False,
        ignore_stored_tokens: bool = False,
    ) -> None:
        self.engine = engine
        self.server = server
        self._box = box
        self._preregistered = preregistered
        self._ignore_stored_client = ignore_stored_client
        self._ignore_stored_tokens = ignore_stored_tokens
        self.expires_at: float | None = None
        """When the access token last read or written expires (Unix time); ``None`` if it did not say."""

    async def get_tokens(self) -> OAuthToken | None:
        """The stored tokens, or ``None``.

        Raises:
            StoreError: The store cannot be read.
            SecretKeyError: The blob does not decrypt with this key.
        """
        stored = None if self._ignore_stored_tokens else await read_downstream_credentials(self.engine, self.server)
        if stored is None or stored.tokens is None:
            return None
        record = json.loads(self._box.open(stored.tokens, f"tokens:{self.server}"))
        self.expires_at = record.get("expires_at")
        return OAuthToken.model_validate(record["token"])

    async def set_tokens(self, tokens: OAuthToken) -> None:
        """Store ``tokens`` (sealed), with the access token's expiry as a time.

        Raises:
            StoreError: The store cannot be written.
        """
        self._ignore_stored_tokens = False
        self.expires_at = time.time() + tokens.expires_in if tokens.expires_in is not None else None
        record = {"token": tokens.model_dump(mode="json", exclude_none=True), "expires_at": self.expires_at}
        blob = self._box.seal(json.dumps(record).encode(), f"tokens:{self.server}")
        await save_downstream_tokens(self.engine, self.server, blob, at=_now())

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        """The stored client registration, else the configured ``client_id``'s, else ``None``.

        Raises:
            StoreError: The store cannot be read.
            SecretKeyError: The blob does not decrypt with this key.
        """
        stored = None if self._ignore_stored_client else await read_downstream_credentials(self.engine, self.server)
        if stored is None or stored.client_info is None:
            return self._preregistered
        plain = self._box.open(stored.client_info, f"client:{self.server}")
        return OAuthClientInformationFull.model_validate_json(plain)

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        """Store the client registration (sealed: it may hold a client secret).

        Raises:
            StoreError: The store cannot be written.
        """
        self._ignore_stored_client = False
        blob = self._box.seal(client_info.model_dump_json(exclude_none=True).encode(), f"client:{self.server}")
        await save_downstream_client(self.engine, self.server, blob, at=_now())


def preregistered_client(spec: DownstreamOAuthSpec, redirect_uri: str) -> OAuthClientInformationFull | None:
    """The registration a configured ``client_id`` stands for (``None`` without one)."""
    if spec.client_id is None:
        return None
    return OAuthClientInformationFull(
        client_id=spec.client_id,
        redirect_uris=[AnyUrl(redirect_uri)],
        grant_types=list(_GRANT_TYPES),
        token_endpoint_auth_method="none",
    )


def _refresh_at(expires_at: float | None, lifetime: int | None) -> float | None:
    if expires_at is None:
        return None
    margin = REFRESH_MARGIN if lifetime is None else min(REFRESH_MARGIN, lifetime / 10)
    return expires_at - margin


def _is_refresh(request: httpx2.Request) -> bool:
    return request.method == "POST" and b"grant_type=refresh_token" in request.content


def _refused_authorization(response: httpx2.Response) -> bool:
    if response.status_code == 401:
        return True
    challenge = response.headers.get("www-authenticate", "")
    return response.status_code == 403 and "insufficient_scope" in challenge


async def _refusal(response: httpx2.Response) -> str:
    """Why a token endpoint refused: its RFC 6749 error code (never the body's other text)."""
    await response.aread()
    code = "no reason given"
    try:
        body: Any = json.loads(response.content)
    except ValueError:
        body = None
    error: object = cast("dict[str, object]", body).get("error") if isinstance(body, dict) else None
    if isinstance(error, str) and error.isascii():
        code = error[:64]
    return f"{code}, HTTP {response.status_code}"


class StoredTokenAuth(OAuthClientProvider):
    """The provider of a serving process: stored tokens, refreshed; never the interactive flow.

    Raises (from the flow, so from the HTTP request it authenticates):
        DownstreamLoginRequired: Nothing usable is stored, the refresh was refused, or the
            server refused the tokens: only ``orchestrator login`` helps.
    """

    def __init__(self, server_url: str, spec: DownstreamOAuthSpec, storage: EncryptedTokenStorage) -> None:
        super().__init__(
            server_url=server_url,
            client_metadata=_client_metadata(spec, _PLACEHOLDER_REDIRECT),
            storage=storage,
            client_metadata_url=spec.client_metadata_url,
        )
        self._storage = storage
        self._server = storage.server

    async def _initialize(self) -> None:
        await super()._initialize()
        tokens = self.context.current_tokens
        self.context.token_expiry_time = _refresh_at(
            self._storage.expires_at, tokens.expires_in if tokens is not None else None
        )

    async def _auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        state = await login_state(self._storage)
        if state.problem is not None:
            raise DownstreamLoginRequired(self._server, f"{state.problem}: {login_hint(self._server)}")
        refused: str | None = None
        for forced_refresh in (False, True):
            if forced_refresh:
                if not self.context.can_refresh_token():
                    break
                # The server refused a token we thought valid (revoked, or clocks apart): refresh now.
                self.context.token_expiry_time = 1.0
            flow = super()._auth_flow(request)
            try:
                outgoing = await flow.__anext__()
                while True:
                    response = yield outgoing
                    if outgoing is request and _refused_authorization(response):
                        break  # the SDK would start the interactive flow here
                    if outgoing is not request and _is_refresh(outgoing) and response.status_code != 200:
                        refused = await _refusal(response)
                    outgoing = await flow.asend(response)
            except StopAsyncIteration:
                return
            finally:
                await flow.aclose()
            if refused is not None:
                break
        if refused is not None:
            problem = f"token refresh failing: the authorization server refused it ({refused})"
            await record_downstream_refresh_failure(self._storage.engine, self._server, problem, at=_now())
        else:
            problem = "the server refused the stored token and it cannot be refreshed"
        logger.warning("server %r: %s; %s", self._server, problem, login_hint(self._server))
        raise DownstreamLoginRequired(self._server, f"{problem}: {login_hint(self._server)}")


@dataclass(frozen=True, slots=True)
class LoginState:
    """Whether a server's stored credentials can be used, for ``doctor`` and the serving process.

    Attributes:
        logged_in: Tokens are stored.
        problem: Why they cannot be used (``"not logged in"``, a refused refresh); ``None`` if they can.
        expires_at: When the access token expires (Unix time), if it said.
        refreshable: A refresh token is stored.
    """

    logged_in: bool
    problem: str | None
    expires_at: float | None = None
    refreshable: bool = False


async def login_state(storage: EncryptedTokenStorage) -> LoginState:
    """What ``storage`` holds for its server, without any request to the server.

    Raises:
        StoreError: The store cannot be read.
        SecretKeyError: The stored tokens do not decrypt with this key.
    """
    stored = await read_downstream_credentials(storage.engine, storage.server)
    if stored is None or stored.tokens is None:
        return LoginState(logged_in=False, problem="not logged in")
    try:
        tokens = await storage.get_tokens()
    except (ValidationError, ValueError, KeyError):
        return LoginState(logged_in=False, problem="the stored tokens are unreadable")
    refreshable = tokens is not None and tokens.refresh_token is not None
    if stored.refresh_failure is not None:
        return LoginState(True, stored.refresh_failure, storage.expires_at, refreshable)
    if not refreshable and storage.expires_at is not None and storage.expires_at <= time.time():
        return LoginState(True, "the access token expired and cannot be refreshed", storage.expires_at, False)
    return LoginState(True, None, storage.expires_at, refreshable)


def login_provider(
    server_url: str,
    spec: DownstreamOAuthSpec,
    storage: EncryptedTokenStorage,
    redirect_uri: str,
    redirect_handler: Callable[[str], Awaitable[None]],
    callback_handler: Callable[[], Awaitable[AuthorizationCodeResult]],
) -> OAuthClientProvider:
    """The SDK's provider for ``orchestrator login``: the interactive flow, tokens kept in ``storage``.

    Raises:
        ValueError: ``client_metadata_url`` is not an https URL with a path (the config checks it).
    """
    return _LoginProvider(
        server_url=server_url,
        client_metadata=_client_metadata(spec, redirect_uri),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
        client_metadata_url=spec.client_metadata_url,
        scopes=" ".join(spec.scopes) or None,
    )


class _LoginProvider(OAuthClientProvider):
    """The SDK's provider, asking for the configured scopes rather than the challenged ones."""

    def __init__(self, *, scopes: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._scopes = scopes

    async def _perform_authorization(self) -> httpx2.Request:
        if self._scopes is not None:
            self.context.client_metadata.scope = self._scopes
        return await super()._perform_authorization()


class DownstreamAuthFactory:
    """Builds each OAuth server's ``httpx2.Auth`` for the downstream pool (its ``auth_for``).

    Args:
        engine: The state database holding the sealed credentials.
        box: Seals and opens them.
    """

    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    def storage(
        self, key: str, spec: HttpServerSpec, redirect_uri: str = _PLACEHOLDER_REDIRECT
    ) -> EncryptedTokenStorage:
        """The token storage of the server ``key``."""
        assert spec.auth is not None, "only servers with auth: oauth have token storage"
        return EncryptedTokenStorage(
            self._engine, key, self._box, preregistered=preregistered_client(spec.auth, redirect_uri)
        )

    def __call__(self, key: str, spec: HttpServerSpec) -> httpx2.Auth | None:
        """A fresh provider for one connection to ``key`` (``None`` when it has no ``auth: oauth``)."""
        if spec.auth is None:
            return None
        return StoredTokenAuth(spec.url, spec.auth, self.storage(key, spec))

    async def states(self, servers: Mapping[str, HttpServerSpec]) -> dict[str, LoginState]:
        """The login state of each server of ``servers`` that has ``auth: oauth``.

        Raises:
            StoreError: The store cannot be read.
            SecretKeyError: Stored tokens do not decrypt with this key.
        """
        return {key: await login_state(self.storage(key, spec)) for key, spec in servers.items() if spec.auth}
