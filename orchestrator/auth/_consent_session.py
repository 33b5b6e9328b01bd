"""The consent page's browser session and CSRF tokens: values signed with an HMAC key in memory.

Pure: no I/O, no HTTP. A browser gets a session cookie on its first visit (not signed in),
and a fresh one (new nonce, so a planted cookie cannot be promoted) when the owner signs in.
Every form carries a token derived from the session's nonce, the form's purpose and the
authorization request it answers, so a form cannot be replayed for another request or posted
from another site.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

__all__ = ["SIGNED_IN_SECONDS", "VISITOR_SECONDS", "BrowserSession", "FormPurpose", "SessionSigner"]

SIGNED_IN_SECONDS = 15 * 60
"""How long an owner stays signed in on one browser."""

VISITOR_SECONDS = 60 * 60
"""How long the sign-in form of a browser that has not signed in stays valid."""

FormPurpose = Literal["sign-in", "decide"]

_COOKIE_VALUE = re.compile(r"^([A-Za-z0-9_-]{16,64})\.([0-9]{1,12})\.([01])\.([0-9a-f]{64})$")


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """One browser's session on the consent page.

    Attributes:
        nonce: Random, unguessable; new at every sign-in.
        expires_at: Unix time after which the session is void.
        signed_in: Whether the owner signed in with this session.
    """

    nonce: str
    expires_at: int
    signed_in: bool


class SessionSigner:
    """Signs and checks session cookies and CSRF tokens with one key.

    The key lives only in memory: sessions end when the process restarts, which costs the
    owner one sign-in. Several replicas behind a load balancer must share a key.
    """

    def __init__(self, key: bytes | None = None) -> None:
        """Use ``key``, or a fresh random one.

        Raises:
            ValueError: ``key`` is shorter than 32 bytes.
        """
        if key is not None and len(key) < 32:
            raise ValueError("session key: at least 32 bytes")
        self._key = key if key is not None else secrets.token_bytes(32)

    def new(self, *, signed_in: bool, now: float) -> BrowserSession:
        """A session with a fresh nonce, valid from ``now`` (Unix time)."""
        lifetime = SIGNED_IN_SECONDS if signed_in else VISITOR_SECONDS
        return BrowserSession(nonce=secrets.token_urlsafe(24), expires_at=int(now) + lifetime, signed_in=signed_in)

    def encode(self, session: BrowserSession) -> str:
        """The cookie value for ``session``."""
        payload = f"{session.nonce}.{session.expires_at}.{int(session.signed_in)}"
        return f"{payload}.{self._mac('session', payload)}"

    def decode(self, value: str | None, *, now: float) -> BrowserSession | None:
        """The session a cookie value stands for; ``None`` if absent, malformed, forged or expired."""
        match = _COOKIE_VALUE.match(value or "")
        if match is None:
            return None
        nonce, expires_at, signed_in, mac = match.groups()
        if not hmac.compare_digest(mac, self._mac("session", f"{nonce}.{expires_at}.{signed_in}")):
            return None
        if int(expires_at) <= now:
            return None
        return BrowserSession(nonce=nonce, expires_at=int(expires_at), signed_in=signed_in == "1")

    def csrf_token(self, session: BrowserSession, purpose: FormPurpose, request_id: str) -> str:
        """The token a form of ``purpose`` for ``request_id`` carries in this session."""
        return self._mac(f"csrf:{purpose}", f"{session.nonce}\0{request_id}")

    def csrf_valid(self, session: BrowserSession, purpose: FormPurpose, request_id: str, token: str | None) -> bool:
        """Whether ``token`` is the one :meth:`csrf_token` gives (compared in constant time)."""
        if not token:
            return False
        return hmac.compare_digest(token.encode(), self.csrf_token(session, purpose, request_id).encode())

    def _mac(self, label: str, payload: str) -> str:
        return hmac.new(self._key, f"{label}\0{payload}".encode(), hashlib.sha256).hexdigest()
