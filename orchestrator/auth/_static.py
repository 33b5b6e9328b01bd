"""Static bearer tokens: shared ones that grant everything, named ones with their own grant.

Owns the comparison of a presented token with the configured ones. It takes the same time
whichever token matches, or none: every candidate is compared, as SHA-256 digests of equal
length, with ``hmac.compare_digest`` and no early exit. Refuses to log or echo a token value.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from orchestrator.auth._principal import EVERYTHING, Grant, GrantedAccessToken

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from orchestrator.config import AuthSpec

__all__ = ["StaticTokenVerifier"]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class StaticTokenVerifier:
    """Verifies static bearer tokens (the SDK's ``TokenVerifier``).

    Args:
        shared: Tokens that grant everything (client id ``token``).
        named: By name, a token and its grant (client id ``token:NAME``).
        resource: The ``resource`` of the access tokens returned (the MCP endpoint's public
            URL), for the SDK's audience check.
        scopes: The scopes of the access tokens returned: the server's required scopes, so that
            a static token passes the SDK's scope check, which is for tokens of a provider.

    Raises:
        ValueError: A token is empty, or one value is configured twice (the message names the
            entries, never the value).
    """

    def __init__(
        self,
        shared: Sequence[str],
        named: Mapping[str, tuple[str, Grant]],
        *,
        resource: str | None,
        scopes: Sequence[str] = (),
    ) -> None:
        entries = [(f"shared token {index + 1}", "token", token, EVERYTHING) for index, token in enumerate(shared)]
        entries += [(f"token {name!r}", f"token:{name}", token, grant) for name, (token, grant) in named.items()]
        seen: dict[bytes, str] = {}
        for label, _, token, _ in entries:
            if not token:
                raise ValueError(f"{label} is empty")
            digest = _digest(token)
            if digest in seen:
                raise ValueError(f"{seen[digest]} and {label} have the same value")
            seen[digest] = label
        self._candidates = [(_digest(token), client_id, grant) for _, client_id, token, grant in entries]
        self._resource = resource
        self._scopes = list(scopes)

    @classmethod
    def from_config(
        cls, auth: AuthSpec, env: Mapping[str, str], *, resource: str | None, scopes: Sequence[str] = ()
    ) -> StaticTokenVerifier:
        """The verifier of the tokens ``auth`` names, with their values read from ``env``.

        Raises:
            ValueError: One value is configured twice (see the class).
        """
        named = {name: (value, Grant.of(auth.tokens[name].grant)) for name, value in auth.named_tokens(env).items()}
        return cls(auth.shared_tokens(env), named, resource=resource, scopes=scopes)

    @property
    def configured(self) -> bool:
        """Whether any token is configured (with none, this verifier accepts nothing)."""
        return bool(self._candidates)

    async def verify_token(self, token: str) -> GrantedAccessToken | None:
        """The access token ``token`` stands for, or ``None`` if it is none of the configured ones."""
        presented = _digest(token)
        match: tuple[str, Grant] | None = None
        for digest, client_id, grant in self._candidates:
            # No early exit: the time taken does not say which candidate matched.
            if hmac.compare_digest(digest, presented):
                match = (client_id, grant)
        if match is None or not token:
            return None
        client_id, grant = match
        return GrantedAccessToken(
            token=token,
            client_id=client_id,
            scopes=list(self._scopes),
            expires_at=None,
            resource=self._resource,
            kind="token",
            grant=tuple(grant.as_list()),
        )
