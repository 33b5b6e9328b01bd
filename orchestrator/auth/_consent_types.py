"""What the consent page shows and asks: the contract between the page and the authorization server.

The page (``_consent``) renders and checks forms; the embedded authorization server
(``_embedded``) keeps pending requests, the owner's password and the grants. Neither knows
how the other does its part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from orchestrator.auth._principal import Grant

__all__ = [
    "ConsentBackend",
    "ConsentGroup",
    "ConsentTool",
    "PendingAuthorization",
    "SignInResult",
]


@dataclass(frozen=True, slots=True)
class ConsentTool:
    """One tool as the consent page lists it.

    Attributes:
        name: The exposed name (the grant selector is ``tool:NAME``).
        title: A human title, if the tool has one.
        description: First line of its description.
        read_only: Annotated ``readOnlyHint``.
        destructive: Annotated ``destructiveHint`` (and not read-only).
    """

    name: str
    title: str | None
    description: str
    read_only: bool
    destructive: bool


@dataclass(frozen=True, slots=True)
class ConsentGroup:
    """A downstream server (tick it whole: ``server:KEY``) or the composite tools (tick each)."""

    kind: Literal["server", "composites"]
    key: str
    title: str
    tools: tuple[ConsentTool, ...]


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    """An authorization request waiting for the owner's decision.

    Attributes:
        request_id: Unguessable id, the ``request`` query parameter of the consent URL.
        client_id: The client asking.
        client_name: Its registered ``client_name`` (or its client id when it has none).
        redirect_uri: Where the answer goes; the page shows its host.
        scopes: Scopes asked for.
        expires_at: When the request lapses.
        current_grant: What this client holds now, if it was approved before (pre-ticks the form).
    """

    request_id: str
    client_id: str
    client_name: str
    redirect_uri: str
    scopes: tuple[str, ...]
    expires_at: datetime
    current_grant: Grant | None


@dataclass(frozen=True, slots=True)
class SignInResult:
    """The outcome of one owner password check.

    ``locked_until`` is set when sign-in is locked (this attempt was not even checked, or it
    was the failure that locked it).
    """

    ok: bool
    locked_until: datetime | None = None
    no_password_set: bool = False


class ConsentBackend(Protocol):
    """What the consent page needs from the authorization server."""

    async def pending(self, request_id: str) -> PendingAuthorization | None:
        """The pending request, or ``None`` if unknown, used or expired."""
        ...

    async def sign_in(self, password: str) -> SignInResult:
        """Check the owner's password (constant time; counts failures; locks after too many)."""
        ...

    async def approve(self, request_id: str, grant: Grant) -> str:
        """Store ``grant`` with the client, issue a single-use code; the URL to redirect the browser to.

        Raises:
            LookupError: The request is unknown, already answered or expired.
        """
        ...

    async def deny(self, request_id: str) -> str:
        """Drop the request; the URL to redirect to (``error=access_denied``).

        Raises:
            LookupError: The request is unknown, already answered or expired.
        """
        ...

    def catalogue(self) -> Sequence[ConsentGroup]:
        """The servers and composite tools to offer, as served now."""
        ...
