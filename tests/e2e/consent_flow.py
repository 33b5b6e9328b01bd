"""One sign-in on the consent page, its steps sent wherever a test says: workers, replicas.

A person's browser may reach another serving process at each step; the cookie and the CSRF
token one process signed must hold at the others.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx2

from tests.auth.helpers import pkce
from tests.e2e.harness import REPO_ROOT

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

__all__ = ["PASSWORD", "free_port", "set_owner_password", "sign_in_across"]

PASSWORD = "correct horse battery staple"
CALLBACK = "http://127.0.0.1:9/callback"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


def set_owner_password(config: Path) -> None:
    """``orchestrator auth set-password`` for the config's state database."""
    subprocess.run(
        [sys.executable, "-m", "orchestrator", "auth", "set-password", "--password-stdin", "-c", str(config)],
        cwd=REPO_ROOT,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, html
    return found.group(1)


async def sign_in_across(
    issuer: str, reach: Callable[[int, httpx2.Cookies | None], AbstractAsyncContextManager[httpx2.AsyncClient]]
) -> None:
    """Register a client, then open the consent page at process 0, sign in at 1, read it at 0 again.

    ``reach(index, cookies)`` is an HTTP client (base URL the issuer's) whose requests reach
    serving process ``index``.
    """
    async with httpx2.AsyncClient(base_url=issuer, timeout=30) as http:
        registered = await http.post(
            "/register",
            json={"redirect_uris": [CALLBACK], "client_name": "Test", "token_endpoint_auth_method": "none"},
        )
        assert registered.status_code == 201, registered.text
        _verifier, challenge = pkce()
        authorized = await http.get(
            "/authorize",
            params={
                "response_type": "code",
                "client_id": registered.json()["client_id"],
                "redirect_uri": CALLBACK,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": "xyz",
                "resource": f"{issuer}/mcp",
            },
        )
    assert authorized.status_code == 302, authorized.text
    consent_url = authorized.headers["location"].removeprefix(issuer)
    request_id = parse_qs(urlsplit(consent_url).query)["request"][0]
    async with reach(0, None) as first:
        page = await first.get(consent_url)
        cookies = first.cookies  # the visitor's cookie, signed by process 0
    assert page.status_code == 200, page.text
    async with reach(1, cookies) as second:
        signed_in = await second.post(
            "/consent/sign-in", data={"request": request_id, "csrf": _csrf(page.text), "password": PASSWORD}
        )
        cookies = second.cookies  # signed in, signed by process 1
    assert signed_in.status_code == 303, signed_in.text
    async with reach(0, cookies) as first:
        decision = await first.get(consent_url)
    assert "Allow this app to use your tools?" in decision.text
