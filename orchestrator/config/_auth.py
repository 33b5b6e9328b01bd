"""Configuration of who may use the HTTP server: tokens, the embedded OAuth server, JWT, limits.

Grants are written as selectors: ``"*"`` (everything), ``"server:KEY"`` (every tool, prompt and
resource of one downstream server) or ``"tool:NAME"`` (one exposed tool or composite, by its
exposed name). ``orchestrator.auth`` turns them into a policy; here they are only checked for
shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.config._duration import Seconds

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "GRANT_SELECTOR_PATTERN",
    "AuditSpec",
    "AuthSpec",
    "GrantSelector",
    "JwtSpec",
    "NamedTokenSpec",
    "OAuthSpec",
    "RateLimitSpec",
    "RateLimitsSpec",
]

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

GRANT_SELECTOR_PATTERN = r"^(\*|server:[A-Za-z0-9][A-Za-z0-9_.-]{0,63}|tool:[A-Za-z0-9_.-]{1,128})$"

GrantSelector = Annotated[
    str,
    Field(
        pattern=GRANT_SELECTOR_PATTERN,
        description="'*' (everything), 'server:KEY' (all of one server) or 'tool:NAME' (one exposed tool).",
    ),
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True)


class NamedTokenSpec(_Frozen):
    """A static bearer token read from its own environment variable, with its own grant."""

    env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Environment variable holding the token.")
    grant: tuple[GrantSelector, ...] = Field(default=("*",), description="What this token may use.")


class OAuthSpec(_Frozen):
    """The embedded OAuth 2.1 authorization server (dynamic registration, consent page)."""

    issuer: str = Field(
        pattern=r"^https?://",
        description=(
            "Public base URL of this server, as clients reach it (https behind a proxy or tunnel; "
            "http only for 127.0.0.1/localhost). Metadata, /authorize, /token and /consent live under it."
        ),
    )
    access_token_ttl: Seconds = Field(default=3600.0, description="Lifetime of an access token.")
    refresh_token_ttl: Seconds = Field(default=30 * 86400.0, description="Lifetime of a refresh token.")
    login_attempts: int = Field(
        default=5, ge=1, description="Wrong owner passwords in a row before sign-in is locked for a while."
    )
    lockout: Seconds = Field(default=900.0, description="How long sign-in stays locked after too many failures.")
    client_metadata_documents: bool = Field(
        default=True, description="Accept https client_id URLs (Client ID Metadata Documents)."
    )
    allow_private_client_metadata: bool = Field(
        default=False,
        description="Fetch client metadata documents from private, loopback or link-local addresses (testing only).",
    )

    @field_validator("issuer")
    @classmethod
    def _public_origin(cls, issuer: str) -> str:
        parts = urlsplit(issuer)
        if parts.scheme != "https" and parts.hostname not in _LOOPBACK_HOSTS:
            raise ValueError("must be https (http only for 127.0.0.1, localhost or [::1], for testing)")
        if parts.path.strip("/") or parts.query or parts.fragment:
            raise ValueError(
                "must be an origin without a path, query or fragment, e.g. https://mcp.example.com "
                "(the OAuth endpoints and the consent page are served at its root)"
            )
        return issuer.rstrip("/")


class JwtSpec(_Frozen):
    """Resource-server mode: access tokens are JWTs from an external identity provider."""

    issuer: str = Field(description="Expected 'iss' claim.")
    jwks_url: str = Field(pattern=r"^https?://", description="Where the provider publishes its signing keys.")
    audience: str | None = Field(
        default=None, description="Expected 'aud' claim; default: the MCP endpoint's public URL."
    )
    algorithms: tuple[str, ...] = Field(
        default=("RS256", "ES256", "PS256", "EdDSA"), description="Accepted signature algorithms (never 'none' or HS*)."
    )
    leeway: Seconds = Field(default=30.0, description="Clock skew tolerated on exp/nbf/iat.")
    required_scopes: tuple[str, ...] = Field(default=(), description="Scopes every token must carry (else 403).")
    scopes: dict[str, tuple[GrantSelector, ...]] = Field(
        default_factory=dict, description="What each scope grants; a token gets the union of its scopes' grants."
    )
    grants_claim: str | None = Field(
        default=None, description="A claim holding grant selectors directly (a list of strings), added to scopes'."
    )

    @model_validator(mode="after")
    def _no_symmetric_algorithms(self) -> JwtSpec:
        unsafe = [alg for alg in self.algorithms if alg.lower() == "none" or alg.upper().startswith("HS")]
        if unsafe:
            raise ValueError(f"algorithms: {', '.join(unsafe)} cannot be verified with a provider's public keys")
        return self


class AuthSpec(_Frozen):
    """Who may use the HTTP server: static tokens, the embedded OAuth server, or an external provider's JWTs."""

    tokens_env: str = Field(
        default="ORCHESTRATOR_TOKENS",
        description="Environment variable holding accepted bearer tokens, comma-separated (each grants everything).",
    )
    tokens: dict[str, NamedTokenSpec] = Field(
        default_factory=dict, description="Named static tokens, each from its own variable with its own grant."
    )
    oauth: OAuthSpec | None = Field(default=None, description="Run the embedded OAuth 2.1 authorization server.")
    jwt: JwtSpec | None = Field(default=None, description="Accept JWT access tokens from an external provider.")
    resource_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Public URL of the MCP endpoint (token audience); default: the issuer's origin + serve.path.",
    )

    @model_validator(mode="after")
    def _one_authorization_server(self) -> AuthSpec:
        if self.oauth is not None and self.jwt is not None:
            raise ValueError("oauth and jwt: choose the embedded server or an external provider, not both")
        return self

    def shared_tokens(self, env: Mapping[str, str]) -> tuple[str, ...]:
        """The tokens set in ``env`` under ``tokens_env`` (comma-separated), in order."""
        return tuple(token.strip() for token in env.get(self.tokens_env, "").split(",") if token.strip())

    def named_tokens(self, env: Mapping[str, str]) -> dict[str, str]:
        """Each named token's value, for those whose variable is set and not empty."""
        return {name: value for name, spec in self.tokens.items() if (value := env.get(spec.env, "").strip())}

    def any_configured(self, env: Mapping[str, str]) -> bool:
        """Whether requests will need credentials: a token is set, or an authorization server is configured."""
        return bool(self.shared_tokens(env) or self.named_tokens(env) or self.oauth or self.jwt)


class RateLimitSpec(_Frozen):
    """A token bucket: ``rate`` calls per second on average, bursts of up to ``burst``."""

    rate: float = Field(gt=0, description="Calls per second, sustained (0.5 = one call every 2 s).")
    burst: int = Field(default=10, ge=1, description="Calls allowed at once before the rate applies.")


class RateLimitsSpec(_Frozen):
    """Call limits of the HTTP server, by principal; unset means unlimited."""

    per_principal: RateLimitSpec | None = Field(default=None, description="All calls of one principal.")
    per_tool: RateLimitSpec | None = Field(default=None, description="Calls of one principal to any one tool.")
    tools: dict[str, RateLimitSpec] = Field(
        default_factory=dict, description="Per-tool limits for named exposed tools, instead of per_tool."
    )


class AuditSpec(_Frozen):
    """The audit log: one record per call and per workflow step, in the state database."""

    enabled: bool | None = Field(
        default=None, description="Keep the audit log; default: on for HTTP serving, off for stdio."
    )
    retention: Seconds = Field(default=90 * 86400.0, description="How long records are kept, e.g. '90d'.")
