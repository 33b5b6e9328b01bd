"""Who is calling, and what they were granted: a frozen value made at the HTTP edge.

A grant is a set of selectors (see ``orchestrator.config.GrantSelector``): ``"*"``,
``"server:KEY"``, ``"tool:NAME"``. The owner over stdio, or over HTTP with no credentials
configured on a loopback bind, holds ``"*"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from mcp.server.auth.provider import AccessToken

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["EVERYTHING", "OWNER", "Grant", "GrantedAccessToken", "Principal", "PrincipalKind", "principal_of"]

PrincipalKind = Literal["owner", "oauth", "jwt", "token"]


@dataclass(frozen=True, slots=True)
class Grant:
    """What a principal may use, as selectors; matching against a catalogue is the policy's job."""

    selectors: frozenset[str]

    @classmethod
    def of(cls, selectors: Iterable[str]) -> Grant:
        return cls(frozenset(selectors))

    @property
    def everything(self) -> bool:
        return "*" in self.selectors

    def covers_server(self, server: str) -> bool:
        """Every tool, prompt and resource of ``server``."""
        return self.everything or f"server:{server}" in self.selectors

    def covers_tool(self, exposed: str, server: str | None) -> bool:
        """The exposed tool ``exposed`` (served by ``server``, or a composite when ``None``)."""
        if self.everything or f"tool:{exposed}" in self.selectors:
            return True
        return server is not None and self.covers_server(server)

    def as_list(self) -> list[str]:
        """Sorted selectors, for storing and showing."""
        return sorted(self.selectors)


EVERYTHING = Grant(frozenset({"*"}))


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request.

    Attributes:
        kind: ``owner`` (stdio, or unauthenticated loopback HTTP), ``oauth`` (a client of the
            embedded authorization server), ``jwt`` (an external provider's token) or ``token``
            (a static bearer token).
        client_id: The OAuth client id, the JWT's ``client_id``/``azp``, or ``token:NAME``.
        subject: The person or service behind the client (``sub``), when known.
        grant: What this principal may use.
        issuer: Who vouched for it (the JWT ``iss``, or our own issuer URL).
    """

    kind: PrincipalKind
    client_id: str | None
    subject: str | None
    grant: Grant
    issuer: str | None = None

    @property
    def key(self) -> str:
        """One string per principal, for rate limits and logs (never a secret)."""
        return f"{self.kind}:{self.client_id or '-'}:{self.subject or '-'}"


OWNER = Principal(kind="owner", client_id=None, subject=None, grant=EVERYTHING)


class GrantedAccessToken(AccessToken):
    """An access token as our verifiers return it: the SDK's, plus the grant and kind.

    The SDK's bearer middleware puts it in the request scope; the server reads the principal
    back with ``principal_of``.
    """

    kind: PrincipalKind
    grant: tuple[str, ...]


def principal_of(token: AccessToken | None) -> Principal:
    """The principal a verified token stands for; no token means the local owner.

    A token that is not a ``GrantedAccessToken`` (it came from a verifier of someone else's)
    is granted nothing.
    """
    if token is None:
        return OWNER
    issuer = (token.claims or {}).get("iss")
    if isinstance(token, GrantedAccessToken):
        return Principal(
            kind=token.kind,
            client_id=token.client_id,
            subject=token.subject,
            grant=Grant.of(token.grant),
            issuer=str(issuer) if issuer is not None else None,
        )
    return Principal(kind="token", client_id=token.client_id, subject=token.subject, grant=Grant(frozenset()))
