"""Fetch a URL that someone else chose without letting it reach inside.

A URL handed to us by a client (a Client ID Metadata Document's https ``client_id``) could
point at the cloud metadata service, a database on the private network or this host's
loopback. Such a URL is *learned* (``EgressRules``): https only, every address its host
resolves to must be public, and the connection goes to the address that was checked
(``GuardedTransport``); redirects are not followed; the body is capped in size and the whole
fetch in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import anyio
import httpx2

from orchestrator._egress._addresses import CLASS_WORDS
from orchestrator._egress._rules import EgressError, EgressRefused, EgressRules
from orchestrator._egress._transport import GuardedTransport, ResolveFn, system_resolve

__all__ = ["EgressPolicy", "fetch_guarded"]

_MAX_BYTES: Final = 64 * 1024
_TIMEOUT: Final = 5.0


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """What a guarded fetch may do.

    Attributes:
        allow_http: Accept ``http://`` URLs (tests only).
        allow_private: Accept private and loopback addresses (tests and labs only); link-local
            and cloud metadata addresses stay refused.
        max_bytes: Largest body accepted.
        timeout: Seconds for the whole fetch, name resolution included.
    """

    allow_http: bool = False
    allow_private: bool = False
    max_bytes: int = _MAX_BYTES
    timeout: float = _TIMEOUT


async def fetch_guarded(
    url: str,
    policy: EgressPolicy,
    *,
    resolve: ResolveFn = system_resolve,
    accept: str = "application/json",
) -> bytes:
    """GET ``url`` under ``policy``; the body of a 200 response.

    Args:
        url: The URL to fetch.
        policy: What the fetch may do.
        resolve: Name resolution (host, port) -> addresses; the system resolver by default.
        accept: The ``Accept`` header.

    Raises:
        EgressError: The URL is not https (or http when allowed), a resolved address is not
            public (unless allowed), the answer is a redirect or not 200, the body exceeds
            ``max_bytes``, the fetch takes longer than ``timeout``, or the connection fails.
    """
    parts = urlsplit(url)
    allowed_schemes = ("https", "http") if policy.allow_http else ("https",)
    if parts.scheme not in allowed_schemes or not parts.hostname:
        raise EgressError(f"only {' or '.join(allowed_schemes)} URLs with a host are fetched")
    if parts.username or parts.password:
        raise EgressError("URLs with credentials are not fetched")
    host = parts.hostname
    rules = EgressRules(learned_may_reach_private=policy.allow_private)
    transport = GuardedTransport(rules, resolve=resolve)
    try:
        with anyio.fail_after(policy.timeout):
            async with httpx2.AsyncClient(
                transport=transport, follow_redirects=False, trust_env=False, timeout=policy.timeout
            ) as client:
                return await _fetch(client, url, host, policy, accept)
    except TimeoutError:
        raise EgressError(f"fetching from {host} took longer than {policy.timeout:g}s") from None
    except EgressRefused as exc:
        words = CLASS_WORDS[exc.address_class]
        raise EgressError(f"{host} resolves to a non-public address ({exc.address}): {words}") from None
    except httpx2.HTTPError as exc:
        raise EgressError(f"cannot fetch from {host}: {str(exc) or type(exc).__name__}") from None


async def _fetch(client: httpx2.AsyncClient, url: str, host: str, policy: EgressPolicy, accept: str) -> bytes:
    async with client.stream("GET", url, headers={"Accept": accept}) as response:
        if response.is_redirect:
            raise EgressError(f"{host} answered with a redirect, which is not followed")
        if response.status_code != 200:
            raise EgressError(f"{host} answered HTTP {response.status_code}")
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > policy.max_bytes:
            raise EgressError(f"the document from {host} is larger than {policy.max_bytes} bytes")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body.extend(chunk)
            if len(body) > policy.max_bytes:
                raise EgressError(f"the document from {host} is larger than {policy.max_bytes} bytes")
        return bytes(body)
