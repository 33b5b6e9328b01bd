"""What the HTTP edge needs to authenticate requests: verifiers, the OAuth routes, the audience.

Three ways in, combined: static bearer tokens (``serve.auth.tokens_env``, ``serve.auth.tokens``),
the embedded OAuth 2.1 authorization server (``serve.auth.oauth``: the SDK's routes, our
provider, the consent page) or an external identity provider's JWTs (``serve.auth.jwt``).
Static tokens are tried first (cheap); a token is always checked against this endpoint as
its audience when an authorization server is configured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mcp.server.auth.handlers.metadata import ProtectedResourceMetadataHandler
from mcp.server.auth.routes import build_resource_metadata_url, cors_middleware
from mcp.shared.auth import ProtectedResourceMetadata
from pydantic import AnyHttpUrl
from starlette.routing import Route

from orchestrator import auth as access
from orchestrator.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from mcp.server.auth.provider import TokenVerifier
    from starlette.routing import BaseRoute

    from orchestrator.config import ServeSpec
    from orchestrator.server._app import OrchestratorServer
    from orchestrator.store import Store

__all__ = ["CONSENT_PATH", "HttpAuth", "http_auth", "resource_metadata_url", "resource_url_for"]

CONSENT_PATH = "/consent"
PROTECTED_RESOURCE_WELL_KNOWN = "/.well-known/oauth-protected-resource"


@dataclass(frozen=True, slots=True)
class HttpAuth:
    """How the HTTP edge authenticates, and what it serves for it.

    Attributes:
        verifier: Turns a bearer token into a ``GrantedAccessToken``, or ``None``.
        required_scopes: Scopes every token must carry (403 ``insufficient_scope`` otherwise).
        resource_url: This MCP endpoint's public URL (the tokens' audience), when known.
        routes: OAuth endpoints, protected-resource metadata, the consent page.
        public_paths: Answered without a token, and without the Origin check (OAuth clients
            call them cross-origin; they hold no ambient credentials).
        browser_prefixes: Pages a person opens in a browser (the consent page): no token,
            Origin checked.
        public_origins: The public origin(s) of the issuer and resource, accepted as Origin
            and Host besides the loopback ones (behind a tunnel or proxy).
        challenge_scopes: The scopes a 401 or 403 challenge names (``scope=``): what to ask the
            authorization server for.
        maintenance: Periodic clean-up of the authorization server's state, if any.
    """

    verifier: TokenVerifier
    required_scopes: tuple[str, ...] = ()
    resource_url: str | None = None
    routes: tuple[BaseRoute, ...] = ()
    public_paths: frozenset[str] = field(default_factory=frozenset[str])
    browser_prefixes: tuple[str, ...] = ()
    public_origins: tuple[str, ...] = ()
    challenge_scopes: tuple[str, ...] = ()
    maintenance: Callable[[], Awaitable[object]] | None = None
    """Run now and then while serving: drops expired authorization requests, codes and tokens."""

    @property
    def resource_metadata_url(self) -> str | None:
        """Where the RFC 9728 metadata of the endpoint is (named in every 401)."""
        if self.resource_url is None:
            return None
        return resource_metadata_url(AnyHttpUrl(self.resource_url))


def resource_metadata_url(resource_url: AnyHttpUrl) -> str:
    """The path-suffixed RFC 9728 metadata URL of ``resource_url``."""
    return str(build_resource_metadata_url(resource_url))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def resource_url_for(serve: ServeSpec, path: str) -> str | None:
    """The MCP endpoint's public URL: configured, else the issuer's origin + ``path``."""
    auth = serve.auth
    if auth.resource_url:
        return auth.resource_url
    if auth.oauth is not None:
        return _origin(auth.oauth.issuer) + path
    if auth.jwt is not None and auth.jwt.audience:
        return auth.jwt.audience
    return None


def _metadata_routes(resource_url: str, issuer: str, scopes: list[str]) -> list[BaseRoute]:
    """RFC 9728 metadata at the path-suffixed well-known URI, and at the root one for clients that look there."""
    # Validated from strings: an AnyHttpUrl made on its own would gain a trailing slash, and
    # clients compare the issuer exactly (RFC 8414, RFC 9207).
    metadata = ProtectedResourceMetadata.model_validate(
        {
            "resource": resource_url,
            "authorization_servers": [issuer],
            "scopes_supported": scopes or None,
            "resource_name": "mcp-orchestrator",
        }
    )
    endpoint = cors_middleware(ProtectedResourceMetadataHandler(metadata).handle, ["GET", "OPTIONS"])
    paths = dict.fromkeys(_well_known_paths(resource_url))
    return [Route(path, endpoint=endpoint, methods=["GET", "OPTIONS"]) for path in paths]


def http_auth(
    serve: ServeSpec,
    env: Mapping[str, str],
    *,
    server: OrchestratorServer,
    store: Store | None,
    path: str,
    source: str,
    consent_key: bytes | None = None,
) -> HttpAuth | None:
    """The authentication the config asks for; ``None`` when no credentials are configured.

    ``consent_key`` signs the consent page's cookies (default: a random key of this process).

    Raises:
        ConfigError: The embedded authorization server is configured but no store is open, a
            static token is empty or repeated, or the JWKS URL is unusable.
    """
    auth = serve.auth
    if not auth.any_configured(env):
        return None
    resource_url = resource_url_for(serve, path)
    required = auth.jwt.required_scopes if auth.jwt is not None else ()
    try:
        static = access.StaticTokenVerifier.from_config(auth, env, resource=resource_url, scopes=required)
    except ValueError as exc:  # an empty or repeated token: the message names entries, never values
        raise ConfigError(source, [f"serve.auth.tokens: {exc}"]) from None
    if auth.oauth is not None:
        if store is None:
            raise ConfigError(source, ["serve.auth.oauth: the embedded authorization server needs the state store"])
        assert resource_url is not None
        provider = access.EmbeddedAuthServer(
            store,
            auth.oauth,
            resource_url=resource_url,
            catalogue=lambda: access.consent_groups(server.catalog, server.composites.active),
        )
        oauth_routes = access.embedded_auth_routes(provider)
        routes: list[BaseRoute] = [
            *oauth_routes,
            *_metadata_routes(resource_url, provider.issuer, [access.OAUTH_SCOPE]),
            *access.consent_routes(
                provider,
                path=CONSENT_PATH,
                secure_cookies=provider.issuer.startswith("https://"),
                session_key=consent_key,
            ),
        ]
        return HttpAuth(
            verifier=access.VerifierChain(static, provider),
            required_scopes=(),
            resource_url=resource_url,
            routes=tuple(routes),
            public_paths=frozenset({*(route.path for route in oauth_routes), *_well_known_paths(resource_url)}),
            browser_prefixes=(CONSENT_PATH,),
            public_origins=tuple(dict.fromkeys([_origin(provider.issuer), _origin(resource_url)])),
            challenge_scopes=(access.OAUTH_SCOPE,),
            maintenance=provider.prune,
        )
    if auth.jwt is not None:
        audience = auth.jwt.audience or resource_url
        if audience is None:
            raise ConfigError(
                source, ["serve.auth.jwt.audience: set it (or serve.auth.resource_url) to this endpoint's public URL"]
            )
        routes = _metadata_routes(audience, auth.jwt.issuer, list(auth.jwt.required_scopes))
        try:
            jwt_verifier = access.JwtVerifier(auth.jwt, audience=audience)
        except ValueError as exc:
            raise ConfigError(source, [f"serve.auth.jwt.jwks_url: {exc}"]) from None
        return HttpAuth(
            verifier=access.VerifierChain(static, jwt_verifier),
            required_scopes=auth.jwt.required_scopes,
            resource_url=audience,
            routes=tuple(routes),
            public_paths=frozenset(_well_known_paths(audience)),
            public_origins=(_origin(audience),),
            challenge_scopes=auth.jwt.required_scopes,
        )
    return HttpAuth(verifier=static, resource_url=resource_url)


def _well_known_paths(resource_url: str) -> tuple[str, ...]:
    suffixed = urlsplit(str(build_resource_metadata_url(AnyHttpUrl(resource_url)))).path
    return (suffixed, PROTECTED_RESOURCE_WELL_KNOWN)
