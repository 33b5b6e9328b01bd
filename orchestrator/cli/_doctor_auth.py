"""``doctor``'s look at authentication: the mode, the issuer, and whether its URLs answer.

For the embedded authorization server it fetches, from the public issuer URL, the
authorization-server metadata (RFC 8414) and the endpoint's protected-resource metadata
(RFC 9728): that goes through the tunnel or proxy the way ChatGPT and claude.ai will, so a
"no answer" there usually means ``serve`` or the tunnel is not running (a warning, since
``doctor`` may run before ``serve``). For an external provider it fetches the provider's
signing keys (JWKS): a serve that cannot get them refuses every token, so that is a failure.
Each probe is bounded and sends no credentials.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import anyio
import httpx2
from pydantic import AnyHttpUrl

from orchestrator.server import resource_metadata_url, resource_url_for

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.config import OrchestratorConfig

__all__ = ["AuthCheck", "AuthReport", "check_auth"]

PROBE_TIMEOUT = 3.0

AuthMode = Literal["none", "tokens", "oauth", "jwt"]


@dataclass(frozen=True, slots=True)
class AuthCheck:
    """One URL the authentication depends on, and whether it answered as it should."""

    what: str
    url: str
    ok: bool
    detail: str
    required: bool
    """A failed required check fails ``doctor``; the others are warnings."""


@dataclass(frozen=True, slots=True)
class AuthReport:
    """How HTTP requests authenticate under this config."""

    mode: AuthMode
    issuer: str | None = None
    resource_url: str | None = None
    static_tokens: int = 0
    checks: tuple[AuthCheck, ...] = ()

    @property
    def ok(self) -> bool:
        """Every required check passed."""
        return all(check.ok or not check.required for check in self.checks)

    def to_json(self) -> dict[str, object]:
        """The ``auth`` object of ``doctor --json``."""
        return {
            "mode": self.mode,
            "ok": self.ok,
            "issuer": self.issuer,
            "resource_url": self.resource_url,
            "static_tokens": self.static_tokens,
            "checks": [
                {"what": c.what, "url": c.url, "ok": c.ok, "detail": c.detail, "required": c.required}
                for c in self.checks
            ],
        }


async def _fetch_json(client: httpx2.AsyncClient, url: str, expect_key: str) -> tuple[bool, str]:
    try:
        with anyio.fail_after(PROBE_TIMEOUT):
            response = await client.get(url, headers={"Accept": "application/json"})
    except TimeoutError:
        return False, f"no answer within {PROBE_TIMEOUT:g}s"
    except httpx2.HTTPError as exc:
        return False, f"no answer: {type(exc).__name__}"
    if response.status_code != 200:
        return False, f"answered HTTP {response.status_code}"
    try:
        document = response.json()
    except json.JSONDecodeError:
        return False, "answered, but not with JSON"
    if not isinstance(document, dict) or expect_key not in document:
        return False, f"answered JSON without {expect_key!r}"
    return True, "answers"


async def check_auth(config: OrchestratorConfig, env: Mapping[str, str]) -> AuthReport:
    """The auth report of ``config``; probes run concurrently, each bounded."""
    auth = config.serve.auth
    tokens = len(auth.shared_tokens(env)) + len(auth.named_tokens(env))
    resource_url = resource_url_for(config.serve, config.serve.path)
    probes: list[tuple[str, str, str, bool]] = []  # what, url, expected key, required
    if auth.oauth is not None:
        mode: AuthMode = "oauth"
        issuer = auth.oauth.issuer.rstrip("/")
        probes.append(
            ("authorization server metadata", f"{issuer}/.well-known/oauth-authorization-server", "issuer", False)
        )
    elif auth.jwt is not None:
        mode, issuer = "jwt", auth.jwt.issuer
        probes.append(("signing keys (JWKS)", auth.jwt.jwks_url, "keys", True))
    else:
        mode, issuer = ("tokens" if tokens else "none"), None
    if resource_url is not None and mode in ("oauth", "jwt"):
        probes.append(
            ("protected resource metadata", resource_metadata_url(AnyHttpUrl(resource_url)), "resource", False)
        )
    results: dict[int, tuple[bool, str]] = {}

    async def probe(index: int, url: str, key: str) -> None:
        results[index] = await _fetch_json(client, url, key)

    async with httpx2.AsyncClient(follow_redirects=False) as client, anyio.create_task_group() as tg:
        for index, (_what, url, key, _required) in enumerate(probes):
            tg.start_soon(probe, index, url, key)
    checks = tuple(
        AuthCheck(what, url, *results[index], required=required)
        for index, (what, url, _key, required) in enumerate(probes)
    )
    return AuthReport(mode=mode, issuer=issuer, resource_url=resource_url, static_tokens=tokens, checks=checks)
