"""The embedded authorization server's HTTP routes: the SDK's, with our metadata and client check.

``create_auth_routes`` serves RFC 8414 metadata, registration, ``/authorize``, ``/token`` and
``/revoke``. Two of them are replaced here:

- the metadata also advertises what this server adds: Client ID Metadata Documents, the
  RFC 9207 ``iss`` in authorization responses, and public clients (``none``);
- ``/token`` and ``/revoke`` authenticate clients through ``HashedSecretAuthenticator``,
  which lets ``EmbeddedAuthServer.get_client`` compare the presented secret with the stored
  hash (the SDK's own authenticator compares plain secrets, which the store does not keep).

The handlers themselves (PKCE, redirect URI, grant types, error responses) are the SDK's.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

from mcp.server.auth.handlers.metadata import MetadataHandler
from mcp.server.auth.handlers.revoke import RevocationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.client_auth import ClientAuthenticator
from mcp.server.auth.routes import (
    REVOCATION_PATH,
    TOKEN_PATH,
    build_metadata,
    cors_middleware,
    create_auth_routes,
)
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE, RequestBodyLimitMiddleware
from mcp.shared.auth import OAuthMetadata
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from pydantic import AnyHttpUrl
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, request_response

from orchestrator.auth._embedded import OAUTH_SCOPE, presented_client_secrets

if TYPE_CHECKING:
    from mcp.shared.auth import OAuthClientInformationFull
    from starlette.requests import Request
    from starlette.types import ASGIApp

    from orchestrator.auth._embedded import EmbeddedAuthServer

__all__ = ["METADATA_PATH", "HashedSecretAuthenticator", "embedded_auth_metadata", "embedded_auth_routes"]

METADATA_PATH: Final = "/.well-known/oauth-authorization-server"
_AUTH_METHODS: Final = ["client_secret_post", "client_secret_basic", "none"]


class HashedSecretAuthenticator(ClientAuthenticator):
    """The SDK's client authentication, with the presented secrets handed to ``get_client``.

    Both places a secret may come in (the form's ``client_secret`` and a Basic header) are
    offered; the SDK then insists, as before, that the right one is used for the client's
    registered method.
    """

    async def authenticate_request(self, request: Request) -> OAuthClientInformationFull:
        """Authenticate the client of ``request`` (see ``ClientAuthenticator``).

        Raises:
            AuthenticationError: The client is unknown or its credentials do not match.
        """
        form = await request.form()
        candidates: list[str] = []
        posted = form.get("client_secret")
        if isinstance(posted, str) and posted:
            candidates.append(posted)
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                _, _, secret = base64.b64decode(header[6:]).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError, binascii.Error):
                secret = ""
            if secret:
                candidates.append(unquote(secret))
        reset = presented_client_secrets.set(tuple(candidates))
        try:
            return await super().authenticate_request(request)
        finally:
            presented_client_secrets.reset(reset)


def embedded_auth_metadata(server: EmbeddedAuthServer) -> OAuthMetadata:
    """RFC 8414 metadata of ``server``: the SDK's, plus what this server adds."""
    base = build_metadata(
        AnyHttpUrl(server.issuer),
        None,
        _registration_options(),
        RevocationOptions(enabled=True),
    )
    fields: dict[str, Any] = base.model_dump(mode="json", exclude_none=True)
    fields.update(
        # The issuer exactly as configured (no trailing slash added): RFC 8414 and 9207 compare it as a string.
        issuer=server.issuer,
        token_endpoint_auth_methods_supported=_AUTH_METHODS,
        revocation_endpoint_auth_methods_supported=_AUTH_METHODS,
        authorization_response_iss_parameter_supported=True,
        client_id_metadata_document_supported=server.spec.client_metadata_documents,
    )
    return OAuthMetadata.model_validate(fields)


def _registration_options() -> ClientRegistrationOptions:
    return ClientRegistrationOptions(enabled=True, valid_scopes=[OAUTH_SCOPE], default_scopes=[OAUTH_SCOPE])


def _endpoint(handler: Any, methods: list[str]) -> ASGIApp:
    limited = RequestBodyLimitMiddleware(request_response(handler), DEFAULT_MAX_REQUEST_BODY_SIZE)
    return CORSMiddleware(
        app=limited, allow_origins="*", allow_methods=methods, allow_headers=[MCP_PROTOCOL_VERSION_HEADER]
    )


def embedded_auth_routes(server: EmbeddedAuthServer) -> list[Route]:
    """The authorization server's routes, to mount at the issuer URL's root.

    RFC 8414 metadata, dynamic registration (``/register``), ``/authorize``, ``/token`` and
    ``/revoke``. The consent page (``/consent``) and the protected-resource metadata of the
    MCP endpoint are mounted separately.
    """
    authenticator = HashedSecretAuthenticator(server)
    replaced = {
        METADATA_PATH: Route(
            METADATA_PATH,
            endpoint=cors_middleware(MetadataHandler(embedded_auth_metadata(server)).handle, ["GET", "OPTIONS"]),
            methods=["GET", "OPTIONS"],
        ),
        TOKEN_PATH: Route(
            TOKEN_PATH,
            endpoint=_endpoint(TokenHandler(server, authenticator).handle, ["POST", "OPTIONS"]),
            methods=["POST", "OPTIONS"],
        ),
        REVOCATION_PATH: Route(
            REVOCATION_PATH,
            endpoint=_endpoint(RevocationHandler(server, authenticator).handle, ["POST", "OPTIONS"]),
            methods=["POST", "OPTIONS"],
        ),
    }
    routes = create_auth_routes(
        provider=server,
        issuer_url=AnyHttpUrl(server.issuer),
        client_registration_options=_registration_options(),
        revocation_options=RevocationOptions(enabled=True),
    )
    return [replaced.get(route.path, route) for route in routes]
