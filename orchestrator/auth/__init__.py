"""Inbound access: who may call the HTTP server, and what each principal may see and call.

Owns the embedded OAuth 2.1 authorization server (on the SDK's ``mcp.server.auth``) and its
consent page, the JWT resource-server mode, static tokens, grants and the one policy that
applies them, rate limits, and the audit records of calls. Sits above ``store``, ``catalog``
and ``config``; never talks to downstream servers, and never forwards an inbound token.
"""

from __future__ import annotations

from orchestrator.auth._audit import AuditLog, argument_hash, argument_shape, audit_record, outcome_of
from orchestrator.auth._catalogue import consent_groups
from orchestrator.auth._chain import VerifierChain
from orchestrator.auth._consent import consent_routes
from orchestrator.auth._consent_types import (
    ConsentBackend,
    ConsentGroup,
    ConsentTool,
    PendingAuthorization,
    SignInResult,
)
from orchestrator.auth._embedded import OAUTH_SCOPE, AuthorizationRequestGone, EmbeddedAuthServer
from orchestrator.auth._embedded_routes import embedded_auth_routes
from orchestrator.auth._jwt import JwtVerifier
from orchestrator.auth._policy import AccessPolicy
from orchestrator.auth._principal import (
    EVERYTHING,
    OWNER,
    Grant,
    GrantedAccessToken,
    Principal,
    PrincipalKind,
    principal_of,
)
from orchestrator.auth._ratelimit import RateLimiter
from orchestrator.auth._static import StaticTokenVerifier

__all__ = [
    "EVERYTHING",
    "OAUTH_SCOPE",
    "OWNER",
    "AccessPolicy",
    "AuditLog",
    "AuthorizationRequestGone",
    "ConsentBackend",
    "ConsentGroup",
    "ConsentTool",
    "EmbeddedAuthServer",
    "Grant",
    "GrantedAccessToken",
    "JwtVerifier",
    "PendingAuthorization",
    "Principal",
    "PrincipalKind",
    "RateLimiter",
    "SignInResult",
    "StaticTokenVerifier",
    "VerifierChain",
    "argument_hash",
    "argument_shape",
    "audit_record",
    "consent_groups",
    "consent_routes",
    "embedded_auth_routes",
    "outcome_of",
    "principal_of",
]
