"""The embedded OAuth 2.1 authorization server: the SDK's provider protocol, kept in the store.

The SDK's ``mcp.server.auth`` handlers speak HTTP (metadata, registration, ``/authorize``,
``/token``, ``/revoke``) and check what they can (PKCE S256 against the verifier, the code's
client, redirect URI and expiry); this class decides the rest and keeps every record in the
store, so several replicas share one authorization server:

- ``authorize`` parks the request (unguessable id, 10 minutes) and sends the browser to the
  consent page; ``approve`` stores the owner's grant with the client and issues a single-use
  code (taken from the store atomically at exchange); ``deny`` answers ``access_denied``.
- Access tokens are opaque (256 random bits), short-lived and bound to our resource URL;
  ``load_access_token`` reads the client's *current* grant, so an edit or a revocation holds
  from the very next request.
- Refresh tokens rotate; presenting a spent one revokes its whole family (OAuth 2.1 BCP).
- Client secrets are kept as SHA-256 hashes only. The SDK compares secrets itself, so the
  secret the request presents reaches ``get_client`` through ``presented_client_secrets``
  (set by ``HashedSecretAuthenticator``); a matching one is handed back, anything else gets
  a random stand-in that never matches.
- Client ID Metadata Documents: an https ``client_id`` is fetched through the egress guard,
  checked (its ``client_id`` is its URL, it has redirect URIs, it is a public client) and
  cached for a few minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import urlsplit

from mcp.server.auth.provider import (
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    OAuthAuthorizationServerProvider,
    RefreshToken,
    RegistrationError,
    TokenError,
    construct_redirect_uri,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import ValidationError

from orchestrator._egress import EgressError, EgressPolicy, fetch_guarded
from orchestrator.auth._consent_types import PendingAuthorization, SignInResult
from orchestrator.auth._owner import check_owner_password
from orchestrator.auth._principal import Grant, GrantedAccessToken
from orchestrator.store import (
    IssuedToken,
    PendingRecord,
    add_authorization_code,
    add_pending_authorization,
    find_access_token,
    find_authorization_code,
    find_client,
    find_granted_access_token,
    find_pending_authorization,
    find_refresh_token,
    issue_tokens,
    prune_oauth,
    revoke_token_family,
    rotate_refresh_token,
    save_client,
    set_grant,
    take_authorization_code,
    take_pending_authorization,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from orchestrator.auth._consent_types import ConsentGroup
    from orchestrator.config import OAuthSpec
    from orchestrator.store import Store, StoredClient

__all__ = [
    "OAUTH_SCOPE",
    "AuthorizationRequestGone",
    "EmbeddedAuthServer",
    "EmbeddedAuthorizationCode",
    "EmbeddedRefreshToken",
    "presented_client_secrets",
    "redirect_uri_problem",
]

logger = logging.getLogger(__name__)

OAUTH_SCOPE: Final = "mcp"
"""The one OAuth scope: access to the MCP endpoint. What a client may use there is its grant."""

_PENDING_TTL: Final = timedelta(minutes=10)
_CODE_TTL: Final = timedelta(minutes=5)
_DOCUMENT_TTL: Final = 300.0
_REFUSED_DOCUMENT_TTL: Final = 30.0
_DOCUMENT_CACHE_SIZE: Final = 256
_TOKEN_BYTES: Final = 32
_S256_CHALLENGE_LENGTH: Final = 43
_OWNER_SUBJECT: Final = "owner"
_AUTH_METHODS: Final = ("none", "client_secret_post", "client_secret_basic")
_UNSAFE_SCHEMES: Final = frozenset({"javascript", "data", "file", "vbscript", "about", "blob"})
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})

presented_client_secrets: ContextVar[tuple[str, ...]] = ContextVar("presented_client_secrets", default=())
"""The client secrets the token or revocation request being authenticated presents (never logged)."""


class AuthorizationRequestGone(LookupError):
    """The pending authorization request is unknown, already decided, or expired."""

    def __init__(self) -> None:
        super().__init__("this authorization request is unknown, already answered or expired")


class EmbeddedAuthorizationCode(AuthorizationCode):
    """An authorization code as loaded from the store (the SDK's, unchanged)."""


class EmbeddedRefreshToken(RefreshToken):
    """A refresh token with its family: every token descending from one authorization code."""

    family_id: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _same_resource(requested: str, ours: str) -> bool:
    return requested.rstrip("/") == ours.rstrip("/")


def redirect_uri_problem(uri: str) -> str | None:
    """Why ``uri`` cannot be a redirect URI, or ``None``.

    Accepted: https, http on loopback, or a native app's own scheme; never a fragment.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if parts.fragment:
        return f"redirect URI {uri!r} has a fragment"
    if scheme in _UNSAFE_SCHEMES or not scheme:
        return f"redirect URI {uri!r} has an unacceptable scheme"
    if scheme == "http" and (parts.hostname or "") not in _LOOPBACK_HOSTS:
        return f"redirect URI {uri!r} is plain http off loopback; use https"
    if scheme in ("http", "https") and not parts.hostname:
        return f"redirect URI {uri!r} has no host"
    return None


class EmbeddedAuthServer(
    OAuthAuthorizationServerProvider[EmbeddedAuthorizationCode, EmbeddedRefreshToken, GrantedAccessToken]
):
    """The embedded authorization server: SDK provider and consent-page back end in one.

    Implements ``mcp.server.auth.provider.OAuthAuthorizationServerProvider`` (mount it with
    ``embedded_auth_routes``; the identity-assertion grant keeps the SDK's refusal),
    ``mcp.server.auth.provider.TokenVerifier`` (the MCP endpoint's bearer check) and
    ``orchestrator.auth.ConsentBackend``.
    """

    def __init__(
        self,
        store: Store,
        spec: OAuthSpec,
        resource_url: str,
        catalogue: Callable[[], Sequence[ConsentGroup]],
        *,
        allow_http_client_metadata: bool = False,
        resolve: Callable[[str, int], Awaitable[list[str]]] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Serve ``spec`` from ``store``, issuing tokens for ``resource_url``.

        Args:
            store: The opened state database.
            spec: The ``serve.auth.oauth`` settings.
            resource_url: The MCP endpoint's public URL: the audience of every token.
            catalogue: What the consent page offers, as served now.
            allow_http_client_metadata: Fetch ``http://`` client metadata documents (tests only).
            resolve: Host name resolution for metadata documents (the system's by default).
            clock: The current time (tests).
        """
        self._store = store
        self.spec = spec
        self.issuer = spec.issuer.rstrip("/")
        self.resource_url = resource_url
        self._catalogue = catalogue
        self._egress = EgressPolicy(
            allow_http=allow_http_client_metadata, allow_private=spec.allow_private_client_metadata
        )
        self._resolve = resolve
        self._clock = clock or (lambda: datetime.now(UTC))
        self._documents: dict[str, tuple[float, OAuthClientInformationFull | None]] = {}

    # Clients

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        """The registered client, or the client a metadata document describes; ``None`` if neither."""
        if self._is_metadata_document_id(client_id):
            return await self._document_client(client_id)
        stored = await find_client(self._store.engine, client_id)
        if stored is None or stored.origin != "dynamic":
            return None
        return OAuthClientInformationFull.model_validate(
            {**stored.registration, "client_id": client_id, "client_secret": self._secret_for(stored)}
        )

    def _secret_for(self, stored: StoredClient) -> str | None:
        if stored.secret_hash is None:
            return None
        for candidate in presented_client_secrets.get():
            if hmac.compare_digest(_digest(candidate), stored.secret_hash):
                return candidate
        # A confidential client whose request did not present its secret: a stand-in nobody knows.
        return secrets.token_urlsafe(_TOKEN_BYTES)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        """Keep a dynamically registered client (its secret only as a hash).

        Raises:
            RegistrationError: A redirect URI is missing or unacceptable, or the token endpoint
                authentication method is not one this server supports.
        """
        uris = [str(uri) for uri in client_info.redirect_uris or []]
        if not uris:
            raise RegistrationError("invalid_redirect_uri", "at least one redirect URI is required")
        for uri in uris:
            if problem := redirect_uri_problem(uri):
                raise RegistrationError("invalid_redirect_uri", problem)
        if client_info.token_endpoint_auth_method not in _AUTH_METHODS:
            raise RegistrationError(
                "invalid_client_metadata",
                f"token_endpoint_auth_method must be one of {', '.join(_AUTH_METHODS)}",
            )
        registration = client_info.model_dump(mode="json", exclude={"client_id", "client_secret"}, exclude_none=True)
        secret = client_info.client_secret
        await save_client(
            self._store.engine,
            client_info.client_id,
            origin="dynamic",
            registration=registration,
            secret_hash=_digest(secret) if secret else None,
            now=self._clock(),
        )
        logger.info("OAuth client %s registered (%s)", client_info.client_id, client_info.client_name or "no name")

    def _is_metadata_document_id(self, client_id: str) -> bool:
        schemes = ("https://", "http://") if self._egress.allow_http else ("https://",)
        return self.spec.client_metadata_documents and client_id.startswith(schemes)

    async def _document_client(self, client_id: str) -> OAuthClientInformationFull | None:
        cached = self._documents.get(client_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        client: OAuthClientInformationFull | None = None
        try:
            if self._resolve is not None:
                body = await fetch_guarded(client_id, self._egress, resolve=self._resolve)
            else:
                body = await fetch_guarded(client_id, self._egress)
            client = self._parse_document(client_id, body)
        except EgressError as exc:
            logger.warning("client metadata document %s refused: %s", client_id, exc)
        if len(self._documents) >= _DOCUMENT_CACHE_SIZE:
            self._documents.clear()
        # A refusal is remembered briefly too, so a stream of requests does not become a stream of fetches.
        ttl = _DOCUMENT_TTL if client is not None else _REFUSED_DOCUMENT_TTL
        self._documents[client_id] = (time.monotonic() + ttl, client)
        return client

    @staticmethod
    def _parse_document(client_id: str, body: bytes) -> OAuthClientInformationFull:
        try:
            document: object = json.loads(body)
        except ValueError:
            raise EgressError("the document is not JSON") from None
        if not isinstance(document, dict):
            raise EgressError("the document is not a JSON object")
        fields = cast("dict[str, Any]", document)
        if fields.get("client_id") != client_id:
            raise EgressError("the document's client_id is not its own URL")
        uris: object = fields.get("redirect_uris")
        if not isinstance(uris, list) or not uris:
            raise EgressError("the document has no redirect_uris")
        for uri in cast("list[object]", uris):
            if not isinstance(uri, str):
                raise EgressError("a redirect URI is not a string")
            if problem := redirect_uri_problem(uri):
                raise EgressError(problem)
        if fields.get("token_endpoint_auth_method", "none") != "none" or "client_secret" in fields:
            raise EgressError("a metadata-document client is a public client (token_endpoint_auth_method none)")
        fields.update(token_endpoint_auth_method="none", scope=OAUTH_SCOPE)
        try:
            return OAuthClientInformationFull.model_validate(fields)
        except ValidationError as exc:
            raise EgressError(f"the document is not valid client metadata ({exc.error_count()} problems)") from None

    # Authorization

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        """Park the request for the owner; the consent page's URL.

        Raises:
            AuthorizeError: ``invalid_target`` for a resource other than ours,
                ``invalid_scope`` for a scope other than ``mcp``, ``invalid_request`` for a
                redirect URI that is not registered exactly or a malformed PKCE challenge.
        """
        redirect_uri = str(params.redirect_uri)
        if redirect_uri not in [str(uri) for uri in client.redirect_uris or []]:
            raise AuthorizeError("invalid_request", "redirect_uri is not registered for this client")
        if params.resource is not None and not _same_resource(params.resource, self.resource_url):
            raise AuthorizeError("invalid_target", "tokens are issued only for this server's MCP endpoint")
        scopes = params.scopes or [OAUTH_SCOPE]
        if any(scope != OAUTH_SCOPE for scope in scopes):
            raise AuthorizeError("invalid_scope", f"the only scope is {OAUTH_SCOPE!r}")
        # An S256 challenge is 43 base64url characters; anything else is a plain verifier or junk.
        if len(params.code_challenge) != _S256_CHALLENGE_LENGTH:
            raise AuthorizeError("invalid_request", "code_challenge must be an S256 challenge")
        now = self._clock()
        if self._is_metadata_document_id(client.client_id):
            # Grants live with the client: a metadata-document client gets its row now.
            await save_client(
                self._store.engine,
                client.client_id,
                origin="metadata_document",
                registration=client.model_dump(mode="json", exclude={"client_id", "client_secret"}, exclude_none=True),
                secret_hash=None,
                now=now,
            )
        request_id = secrets.token_urlsafe(_TOKEN_BYTES)
        record = PendingRecord(
            client_id=client.client_id,
            params={
                "state": params.state,
                "scopes": scopes,
                "code_challenge": params.code_challenge,
                "redirect_uri": redirect_uri,
                "redirect_uri_provided_explicitly": params.redirect_uri_provided_explicitly,
                "client_name": client.client_name or client.client_id,
            },
            expires_at=now + _PENDING_TTL,
        )
        await add_pending_authorization(self._store.engine, _digest(request_id), record)
        return f"{self.issuer}/consent?request={request_id}"

    # The consent page's side

    async def pending(self, request_id: str) -> PendingAuthorization | None:
        """The pending request, or ``None`` if unknown, used or expired."""
        record = await find_pending_authorization(self._store.engine, _digest(request_id), self._clock())
        if record is None:
            return None
        stored = await find_client(self._store.engine, record.client_id)
        grant = stored.grant if stored is not None else None
        return PendingAuthorization(
            request_id=request_id,
            client_id=record.client_id,
            client_name=str(record.params["client_name"]),
            redirect_uri=str(record.params["redirect_uri"]),
            scopes=tuple(record.params["scopes"]),
            expires_at=record.expires_at,
            current_grant=Grant.of(grant) if grant is not None else None,
        )

    async def sign_in(self, password: str) -> SignInResult:
        """Check the owner's password (constant time; counts failures; locks after too many)."""
        return await check_owner_password(self._store, self.spec, password, self._clock())

    async def approve(self, request_id: str, grant: Grant) -> str:
        """Store ``grant`` with the client and issue a single-use code; the client's redirect URL.

        Raises:
            AuthorizationRequestGone: The request is unknown, already answered or expired.
        """
        now = self._clock()
        record = await take_pending_authorization(self._store.engine, _digest(request_id), now)
        if record is None:
            raise AuthorizationRequestGone
        await set_grant(self._store.engine, record.client_id, grant.as_list(), now)
        code = secrets.token_urlsafe(_TOKEN_BYTES)
        expires_at = now + _CODE_TTL
        code_params = {key: record.params[key] for key in ("scopes", "code_challenge", "redirect_uri")}
        code_params["redirect_uri_provided_explicitly"] = record.params["redirect_uri_provided_explicitly"]
        await add_authorization_code(
            self._store.engine, _digest(code), PendingRecord(record.client_id, code_params, expires_at)
        )
        logger.info("OAuth client %s approved with grant %s", record.client_id, ", ".join(grant.as_list()) or "none")
        return construct_redirect_uri(
            str(record.params["redirect_uri"]), code=code, state=record.params["state"], iss=self.issuer
        )

    async def deny(self, request_id: str) -> str:
        """Drop the request; the client's redirect URL with ``error=access_denied``.

        Raises:
            AuthorizationRequestGone: The request is unknown, already answered or expired.
        """
        record = await take_pending_authorization(self._store.engine, _digest(request_id), self._clock())
        if record is None:
            raise AuthorizationRequestGone
        return construct_redirect_uri(
            str(record.params["redirect_uri"]),
            error="access_denied",
            error_description="the owner denied access",
            state=record.params["state"],
            iss=self.issuer,
        )

    def catalogue(self) -> Sequence[ConsentGroup]:
        """The servers and composite tools to offer, as served now."""
        return self._catalogue()

    # Codes and tokens

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> EmbeddedAuthorizationCode | None:
        """The unexpired, unused code, or ``None``."""
        record = await find_authorization_code(self._store.engine, _digest(authorization_code), self._clock())
        if record is None or record.client_id != client.client_id:
            return None
        return EmbeddedAuthorizationCode(
            code=authorization_code,
            scopes=list(record.params["scopes"]),
            expires_at=record.expires_at.timestamp(),
            client_id=record.client_id,
            code_challenge=record.params["code_challenge"],
            redirect_uri=record.params["redirect_uri"],
            redirect_uri_provided_explicitly=record.params["redirect_uri_provided_explicitly"],
            resource=self.resource_url,
            subject=_OWNER_SUBJECT,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: EmbeddedAuthorizationCode
    ) -> OAuthToken:
        """Use the code up (atomically: a second or racing exchange fails) and issue tokens.

        Raises:
            TokenError: ``invalid_grant`` when the code was already used or has expired.
        """
        now = self._clock()
        record = await take_authorization_code(self._store.engine, _digest(authorization_code.code), now)
        if record is None or record.client_id != client.client_id:
            raise TokenError("invalid_grant", "authorization code was already used or has expired")
        return await self._issue(client.client_id, uuid.uuid4().hex, authorization_code.scopes, now, rotating=None)

    async def _issue(
        self, client_id: str, family_id: str, scopes: list[str], now: datetime, *, rotating: str | None
    ) -> OAuthToken:
        access, refresh = secrets.token_urlsafe(_TOKEN_BYTES), secrets.token_urlsafe(_TOKEN_BYTES)
        access_ttl = timedelta(seconds=self.spec.access_token_ttl)

        def record(token: str, ttl: timedelta) -> IssuedToken:
            return IssuedToken(
                token_hash=_digest(token),
                client_id=client_id,
                family_id=family_id,
                scopes=tuple(scopes),
                resource=self.resource_url,
                subject=_OWNER_SUBJECT,
                issued_at=now,
                expires_at=now + ttl,
            )

        access_record = record(access, access_ttl)
        refresh_record = record(refresh, timedelta(seconds=self.spec.refresh_token_ttl))
        if rotating is None:
            await issue_tokens(self._store.engine, access_record, refresh_record)
        elif not await rotate_refresh_token(self._store.engine, rotating, access_record, refresh_record, now):
            await self._revoke_reused_family(client_id, family_id)
            raise TokenError("invalid_grant", "refresh token was already used")
        return OAuthToken(
            access_token=access,
            token_type="Bearer",
            expires_in=int(access_ttl.total_seconds()),
            scope=" ".join(scopes),
            refresh_token=refresh,
        )

    async def _revoke_reused_family(self, client_id: str, family_id: str) -> None:
        removed = await revoke_token_family(self._store.engine, family_id)
        logger.warning(
            "OAuth client %s presented a spent refresh token: its %d tokens of that family are revoked",
            client_id,
            removed,
        )

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> EmbeddedRefreshToken | None:
        """The live refresh token, or ``None``; presenting a spent one revokes its family."""
        found = await find_refresh_token(self._store.engine, _digest(refresh_token), self._clock())
        if found is None or found.client_id != client.client_id:
            return None
        if found.rotated_at is not None:
            await self._revoke_reused_family(found.client_id, found.family_id)
            return None
        return EmbeddedRefreshToken(
            token=refresh_token,
            client_id=found.client_id,
            scopes=list(found.scopes),
            expires_at=int(found.expires_at.timestamp()),
            resource=found.resource,
            subject=found.subject,
            family_id=found.family_id,
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: EmbeddedRefreshToken, scopes: list[str]
    ) -> OAuthToken:
        """Rotate: spend ``refresh_token``, issue a new access and refresh token.

        Raises:
            TokenError: ``invalid_grant`` when the token was spent meanwhile (a race or a
                replay): the whole family is revoked.
        """
        return await self._issue(
            client.client_id,
            refresh_token.family_id,
            scopes or list(refresh_token.scopes),
            self._clock(),
            rotating=_digest(refresh_token.token),
        )

    async def load_access_token(self, token: str) -> GrantedAccessToken | None:
        """The principal behind ``token`` with its client's current grant; ``None`` if unknown, expired or revoked."""
        granted = await find_granted_access_token(self._store.engine, _digest(token), self._clock())
        if granted is None:
            return None
        found, grant = granted
        return GrantedAccessToken(
            token=token,
            client_id=found.client_id,
            scopes=list(found.scopes),
            expires_at=int(found.expires_at.timestamp()),
            resource=self.resource_url,
            subject=found.subject,
            claims={"iss": self.issuer},
            kind="oauth",
            grant=grant,
        )

    async def prune(self) -> int:
        """Delete expired pending requests, codes and tokens (run it now and then); how many went."""
        return await prune_oauth(self._store.engine, self._clock())

    async def verify_token(self, token: str) -> GrantedAccessToken | None:
        """``mcp.server.auth.provider.TokenVerifier``: the same as ``load_access_token``.

        Pass the server itself as the MCP endpoint's ``token_verifier``.
        """
        return await self.load_access_token(token)

    async def revoke_token(self, token: GrantedAccessToken | EmbeddedRefreshToken) -> None:
        """Revoke ``token`` and every token of its family (access and refresh alike)."""
        digest, now = _digest(token.token), self._clock()
        found = await find_access_token(self._store.engine, digest, now) or await find_refresh_token(
            self._store.engine, digest, now
        )
        if found is not None:
            await revoke_token_family(self._store.engine, found.family_id)
            logger.info("OAuth client %s revoked a token family", found.client_id)
