"""Resource-server mode: JWT access tokens from an external identity provider.

Owns the checks a JWT must pass before it stands for a principal: a signature by the provider
key its ``kid`` names, with one of the configured asymmetric algorithms that fits that key;
``iss``; ``aud`` containing this server's audience; ``exp`` (required), ``nbf`` and ``iat``
within the leeway. Maps the token's scopes (``scope`` or ``scp``) and, when configured, a claim
of grant selectors to a grant. Refuses to raise on a bad token: any failure is ``None``, which
the SDK's bearer middleware answers with 401. Never logs a token.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any

import jwt

from orchestrator.auth._jwks import JwksCache
from orchestrator.auth._principal import GrantedAccessToken
from orchestrator.config import GRANT_SELECTOR_PATTERN

if TYPE_CHECKING:
    from collections.abc import Callable

    from orchestrator.config import JwtSpec

__all__ = ["JwtVerifier"]

logger = logging.getLogger(__name__)

_SELECTOR = re.compile(GRANT_SELECTOR_PATTERN)

_KEPT_CLAIMS = ("iss", "jti")
"""Claims copied into the access token: who issued it and its id, nothing personal or secret."""


class JwtVerifier:
    """Verifies JWT access tokens against a provider's JWKS (the SDK's ``TokenVerifier``).

    Args:
        spec: Issuer, JWKS URL, algorithms, leeway and how scopes map to grants.
        audience: The ``aud`` this server answers to (the MCP endpoint's public URL); also the
            ``resource`` of the access tokens returned, for the SDK's audience check.
        jwks_cooldown: Seconds after any JWKS fetch during which no other is made.
        jwks_max_age: Seconds after which the cached key set is fetched again.
        jwks_timeout: Seconds one JWKS fetch may take.
        clock: Monotonic seconds for the JWKS cache; token times always use the wall clock.

    Raises:
        ValueError: The JWKS URL is not an http(s) URL with a host and a valid port.
    """

    def __init__(
        self,
        spec: JwtSpec,
        *,
        audience: str,
        jwks_cooldown: float = 30.0,
        jwks_max_age: float = 300.0,
        jwks_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spec = spec
        self._audience = audience
        self._algorithms = list(spec.algorithms)
        self._jwks = JwksCache(
            spec.jwks_url, cooldown=jwks_cooldown, max_age=jwks_max_age, timeout=jwks_timeout, clock=clock
        )

    async def verify_token(self, token: str) -> GrantedAccessToken | None:
        """The access token ``token`` stands for, or ``None`` if it is not a valid JWT for us."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            logger.debug("JWT rejected: unreadable header (%s)", type(exc).__name__)
            return None
        algorithm, kid = header.get("alg"), header.get("kid")
        # Checked before any key is looked up, so 'none' and HS* tokens never cost a JWKS fetch.
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            logger.debug("JWT rejected: algorithm %r is not accepted", algorithm)
            return None
        if not isinstance(kid, str):
            logger.debug("JWT rejected: no kid in its header")
            return None
        key = await self._signing_key(kid, algorithm)
        if key is None:
            return None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._spec.issuer,
                leeway=self._spec.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            logger.debug("JWT rejected: %s (kid %r)", type(exc).__name__, kid)
            return None
        return self._access_token(token, claims)

    async def _signing_key(self, kid: str, algorithm: str) -> jwt.PyJWK | None:
        jwk = await self._jwks.key(kid)
        if jwk is None:
            logger.debug("JWT rejected: the provider has no key %r", kid)
            return None
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", algorithm) != algorithm:
            logger.debug("JWT rejected: key %r is not for %s signatures", kid, algorithm)
            return None
        try:
            # Bound to the token's algorithm: PyJWT refuses a key whose type does not fit it
            # (an RSA key for ES256, any key for an algorithm outside the list).
            return jwt.PyJWK(jwk, algorithm)
        except jwt.PyJWTError as exc:
            logger.debug("JWT rejected: key %r does not fit %s (%s)", kid, algorithm, type(exc).__name__)
            return None

    def _access_token(self, token: str, claims: dict[str, Any]) -> GrantedAccessToken | None:
        subject = _string(claims.get("sub"))
        client_id = _string(claims.get("client_id")) or _string(claims.get("azp")) or subject
        if client_id is None:
            logger.debug("JWT rejected: neither client_id, azp nor sub names who holds it")
            return None
        scopes = _words(claims.get("scope")) or _words(claims.get("scp"))
        grant: set[str] = set()
        for scope in scopes:
            grant.update(self._spec.scopes.get(scope, ()))
        if self._spec.grants_claim is not None:
            grant.update(self._claimed_grant(claims.get(self._spec.grants_claim)))
        return GrantedAccessToken(
            token=token,
            client_id=client_id,
            subject=subject,
            scopes=scopes,
            # The SDK's bearer backend compares this with the clock without leeway; a token we
            # accept within the leeway must not be refused there.
            expires_at=int(claims["exp"]) + int(self._spec.leeway),
            resource=self._audience,
            claims={name: claims[name] for name in _KEPT_CLAIMS if isinstance(claims.get(name), str)},
            kind="jwt",
            grant=tuple(sorted(grant)),
        )

    def _claimed_grant(self, value: object) -> list[str]:
        selectors = _words(value)
        if value is not None and not selectors:
            logger.debug("JWT claim %r ignored: not a list of grant selectors", self._spec.grants_claim)
        well_formed = [selector for selector in selectors if _SELECTOR.fullmatch(selector)]
        if len(well_formed) < len(selectors):
            logger.debug(
                "JWT claim %r: %d malformed grant selectors ignored",
                self._spec.grants_claim,
                len(selectors) - len(well_formed),
            )
        return well_formed


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _words(value: object) -> list[str]:
    """A space-separated string (``scope``, Entra's ``scp``) or a list of strings (Okta's ``scp``)."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str) and item]  # pyright: ignore[reportUnknownVariableType]
    return []
