"""Inbound access: who may call the HTTP server, and what each principal may see and call.

Owns the embedded OAuth 2.1 authorization server (on the SDK's ``mcp.server.auth``) and its
consent page, the JWT resource-server mode, static tokens, grants and the one policy that
applies them, rate limits, and the audit records of calls. Sits above ``store``, ``catalog``
and ``config``; never talks to downstream servers, and never forwards an inbound token.

Names load on first use (PEP 562): the authorization server, its consent page and the JWT
verifier pull in SQLAlchemy, Jinja and PyJWT, which a process serving stdio never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator._lazy import lazy_names

if TYPE_CHECKING:
    from orchestrator.auth._audit import (
        AuditLog,
        argument_hash,
        argument_shape,
        audit_record,
        definition_change_record,
        outcome_of,
    )
    from orchestrator.auth._catalogue import (
        consent_groups,
    )
    from orchestrator.auth._chain import (
        VerifierChain,
    )
    from orchestrator.auth._consent import (
        consent_routes,
    )
    from orchestrator.auth._consent_types import (
        ConsentBackend,
        ConsentGroup,
        ConsentTool,
        PendingAuthorization,
        SignInResult,
    )
    from orchestrator.auth._embedded import (
        OAUTH_SCOPE,
        AuthorizationRequestGone,
        EmbeddedAuthServer,
    )
    from orchestrator.auth._embedded_routes import (
        embedded_auth_routes,
    )
    from orchestrator.auth._jwt import (
        JwtVerifier,
    )
    from orchestrator.auth._policy import (
        AccessPolicy,
    )
    from orchestrator.auth._principal import (
        EVERYTHING,
        OWNER,
        Grant,
        GrantedAccessToken,
        Principal,
        PrincipalKind,
        principal_of,
    )
    from orchestrator.auth._ratelimit import (
        CallLimiter,
        InProcessLimiter,
        RateLimiter,
    )
    from orchestrator.auth._redis_ratelimit import (
        RedisRateLimiter,
    )
    from orchestrator.auth._shared_ratelimit import (
        SharedRateLimiter,
    )
    from orchestrator.auth._static import (
        StaticTokenVerifier,
    )

__all__ = [
    "EVERYTHING",
    "OAUTH_SCOPE",
    "OWNER",
    "AccessPolicy",
    "AuditLog",
    "AuthorizationRequestGone",
    "CallLimiter",
    "ConsentBackend",
    "ConsentGroup",
    "ConsentTool",
    "EmbeddedAuthServer",
    "Grant",
    "GrantedAccessToken",
    "InProcessLimiter",
    "JwtVerifier",
    "PendingAuthorization",
    "Principal",
    "PrincipalKind",
    "RateLimiter",
    "RedisRateLimiter",
    "SharedRateLimiter",
    "SignInResult",
    "StaticTokenVerifier",
    "VerifierChain",
    "argument_hash",
    "argument_shape",
    "audit_record",
    "consent_groups",
    "consent_routes",
    "definition_change_record",
    "embedded_auth_routes",
    "outcome_of",
    "principal_of",
]

_HOMES: dict[str, str] = {
    "AuditLog": "orchestrator.auth._audit",
    "argument_hash": "orchestrator.auth._audit",
    "argument_shape": "orchestrator.auth._audit",
    "audit_record": "orchestrator.auth._audit",
    "definition_change_record": "orchestrator.auth._audit",
    "outcome_of": "orchestrator.auth._audit",
    "consent_groups": "orchestrator.auth._catalogue",
    "VerifierChain": "orchestrator.auth._chain",
    "consent_routes": "orchestrator.auth._consent",
    "ConsentBackend": "orchestrator.auth._consent_types",
    "ConsentGroup": "orchestrator.auth._consent_types",
    "ConsentTool": "orchestrator.auth._consent_types",
    "PendingAuthorization": "orchestrator.auth._consent_types",
    "SignInResult": "orchestrator.auth._consent_types",
    "OAUTH_SCOPE": "orchestrator.auth._embedded",
    "AuthorizationRequestGone": "orchestrator.auth._embedded",
    "EmbeddedAuthServer": "orchestrator.auth._embedded",
    "embedded_auth_routes": "orchestrator.auth._embedded_routes",
    "JwtVerifier": "orchestrator.auth._jwt",
    "AccessPolicy": "orchestrator.auth._policy",
    "EVERYTHING": "orchestrator.auth._principal",
    "OWNER": "orchestrator.auth._principal",
    "Grant": "orchestrator.auth._principal",
    "GrantedAccessToken": "orchestrator.auth._principal",
    "Principal": "orchestrator.auth._principal",
    "PrincipalKind": "orchestrator.auth._principal",
    "principal_of": "orchestrator.auth._principal",
    "CallLimiter": "orchestrator.auth._ratelimit",
    "InProcessLimiter": "orchestrator.auth._ratelimit",
    "RateLimiter": "orchestrator.auth._ratelimit",
    "RedisRateLimiter": "orchestrator.auth._redis_ratelimit",
    "SharedRateLimiter": "orchestrator.auth._shared_ratelimit",
    "StaticTokenVerifier": "orchestrator.auth._static",
}
"""Where each public name lives; loaded on first use."""


__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__, globals())
