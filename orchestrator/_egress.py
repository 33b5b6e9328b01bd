"""The egress guard: fetch a URL that someone else chose without letting it reach inside.

A URL handed to us by a client (a Client ID Metadata Document's https ``client_id``, later
anything else fetched on a stranger's say-so) could point at the cloud metadata service, a
database on the private network or this host's loopback. Here: https only; the host is
resolved once and every address it resolves to must be public; the connection goes to the
address that was checked (the name is kept for the ``Host`` header and TLS, so a second,
different DNS answer cannot slip in); redirects are not followed; the body is capped in size
and the whole fetch in time.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx2

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from urllib.parse import SplitResult

__all__ = ["EgressError", "EgressPolicy", "fetch_guarded", "is_public_address"]

_MAX_BYTES: Final = 64 * 1024
_TIMEOUT: Final = 5.0


class EgressError(Exception):
    """A guarded fetch was refused or failed; the message says why (never with a secret)."""


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """What a guarded fetch may do.

    Attributes:
        allow_http: Accept ``http://`` URLs (tests only).
        allow_private: Accept private, loopback and link-local addresses (tests and labs only).
        max_bytes: Largest body accepted.
        timeout: Seconds for the whole fetch, name resolution included.
    """

    allow_http: bool = False
    allow_private: bool = False
    max_bytes: int = _MAX_BYTES
    timeout: float = _TIMEOUT


def is_public_address(address: str) -> bool:
    """Whether ``address`` is a globally routable unicast address (an IPv4-mapped IPv6 one counts as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


async def _resolve(host: str, port: int) -> list[str]:
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _allowed(address: str, policy: EgressPolicy) -> bool:
    if is_public_address(address):
        return True
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return policy.allow_private and not (ip.is_multicast or ip.is_unspecified)


async def fetch_guarded(
    url: str,
    policy: EgressPolicy,
    *,
    resolve: Callable[[str, int], Awaitable[list[str]]] = _resolve,
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
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with anyio.fail_after(policy.timeout):
            try:
                addresses = [str(ipaddress.ip_address(host))]
            except ValueError:
                try:
                    addresses = await resolve(host, port)
                except OSError:
                    raise EgressError(f"{host} does not resolve") from None
            if not addresses:
                raise EgressError(f"{host} does not resolve")
            refused = [address for address in addresses if not _allowed(address, policy)]
            if refused:
                raise EgressError(f"{host} resolves to a non-public address ({refused[0]})")
            return await _fetch_at(parts, host, port, addresses[0], policy, accept)
    except TimeoutError:
        raise EgressError(f"fetching from {host} took longer than {policy.timeout:g}s") from None


async def _fetch_at(parts: SplitResult, host: str, port: int, address: str, policy: EgressPolicy, accept: str) -> bytes:
    literal = f"[{address}]" if ":" in address else address
    default_port = 443 if parts.scheme == "https" else 80
    netloc = literal if port == default_port else f"{literal}:{port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = host if port == default_port else f"{host}:{port}"
    async with httpx2.AsyncClient(follow_redirects=False, trust_env=False, timeout=policy.timeout) as client:
        try:
            async with client.stream(
                "GET",
                pinned,
                headers={"Host": host_header, "Accept": accept},
                # TLS checks the certificate against the name, while the socket goes to the checked address.
                extensions={"sni_hostname": host},
            ) as response:
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
        except httpx2.HTTPError as exc:
            raise EgressError(f"cannot fetch from {host}: {type(exc).__name__}") from None
