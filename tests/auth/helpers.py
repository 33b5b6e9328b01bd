"""What the auth tests share: a PKCE pair, an OAuth spec, an authorization server on SQLite, token storage."""

from __future__ import annotations

import base64
import hashlib
import secrets
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from orchestrator.auth._consent_types import ConsentGroup, ConsentTool
from orchestrator.auth._embedded import EmbeddedAuthServer
from orchestrator.config import OAuthSpec
from orchestrator.store import open_store

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable
    from pathlib import Path

    from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

    from orchestrator.store import Store

RESOURCE = "http://127.0.0.1:8123/mcp"
CATALOGUE = (
    ConsentGroup(
        kind="server",
        key="a",
        title="a",
        tools=(ConsentTool(name="a__echo", title=None, description="Echo.", read_only=True, destructive=False),),
    ),
)


def pkce() -> tuple[str, str]:
    """A code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


class Clock:
    """A time the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@asynccontextmanager
async def auth_server(
    tmp_path: Path,
    issuer: str = "http://127.0.0.1:8123",
    *,
    clock: Callable[[], datetime] | None = None,
    resolve: Callable[[str, int], Awaitable[list[str]]] | None = None,
    **spec: Any,
) -> AsyncGenerator[tuple[EmbeddedAuthServer, Store], None]:
    """An ``EmbeddedAuthServer`` over a fresh SQLite store (http metadata documents allowed)."""
    async with open_store(make_url(f"sqlite+aiosqlite:///{tmp_path / 'state.db'}")) as store:
        server = EmbeddedAuthServer(
            store,
            OAuthSpec(issuer=issuer, **spec),
            RESOURCE,
            lambda: CATALOGUE,
            allow_http_client_metadata=True,
            resolve=resolve,
            clock=clock,
        )
        yield server, store


class MemoryStorage:
    """The client's token storage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info
