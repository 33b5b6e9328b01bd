"""An httpx transport that checks where every request goes before it connects.

For each request the host is resolved once, every address it resolves to is checked against
the ``EgressRules`` (a URL on one of the config's origins may reach private and loopback
addresses; any other host is *learned* and must be public), and the connection goes to the
address that was checked: the request's URL names the address, while the ``Host`` header and
TLS (SNI and certificate check) keep the name. So a second DNS answer, different from the
checked one, never gets a connection (DNS rebinding). Each host name has its own connection
pool: two names on one address never share a TLS connection made for only one of them.

Refusals raise ``EgressRefused``; a name that does not resolve raises ``httpx2.ConnectError``
and a resolution that outlasts the request's connect timeout ``httpx2.ConnectTimeout``, as
httpx's own transport would.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, cast

import anyio
import httpx2

from orchestrator._egress._addresses import IPAddress, literal_address
from orchestrator._egress._rules import EgressRefused, describe_refusal

if TYPE_CHECKING:
    from collections.abc import Iterable

    from orchestrator._egress._rules import EgressRules, UrlOrigin

__all__ = ["GuardedTransport", "ResolveFn", "literal_refusal", "origin_url", "resolve_checked", "system_resolve"]

ResolveFn = Callable[[str, int], Awaitable[list[str]]]
"""Name resolution: ``(host, port)`` -> its addresses."""

logger = logging.getLogger(__name__)

_REDIRECT_CHECK_SECONDS: Final = 5.0
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host``.

    Raises:
        OSError: The name does not resolve.
    """
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _port(url: httpx2.URL) -> int:
    return url.port or _DEFAULT_PORTS.get(url.scheme, 80)


def origin_url(url: httpx2.URL | str) -> str:
    """``url`` cut to its scheme, host and port (for messages: no credentials, path or query)."""
    url = httpx2.URL(url)
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{host}{port}/"


def _connect_timeout(request: httpx2.Request) -> float | None:
    """The request's connect timeout (httpx puts its timeouts in the request's extensions)."""
    timeouts: object = request.extensions.get("timeout")
    if not isinstance(timeouts, dict):
        return None
    connect: object = cast("dict[str, object]", timeouts).get("connect")
    return float(connect) if isinstance(connect, int | float) else None


def _origins(url: str) -> set[tuple[str, int]]:
    """The (host, port) pairs a config URL's origin covers, its https upgrade included."""
    parsed = httpx2.URL(url)
    origins = {(parsed.host, _port(parsed))}
    if parsed.scheme == "http" and parsed.port is None:
        # The SDK follows a redirect from http to https on the default ports as the same origin.
        origins.add((parsed.host, 443))
    return origins


def literal_refusal(url: str, rules: EgressRules) -> str | None:
    """Why a config ``url`` whose host is an IP address may not be reached; ``None`` if it may.

    A host name is not resolved here (that happens at connect time), nor is an unparsable URL
    judged: both give ``None``.
    """
    try:
        parsed = httpx2.URL(url)
    except httpx2.InvalidURL:
        return None
    address = literal_address(parsed.host)
    if address is None:
        return None
    refused = rules.refused_class(address, "config")
    if refused is None:
        return None
    return describe_refusal(origin_url(parsed), address, refused, "config")


async def resolve_checked(
    url: httpx2.URL, rules: EgressRules, origin: UrlOrigin, resolve: ResolveFn = system_resolve
) -> IPAddress:
    """The address to connect to for ``url``: resolved, every answer checked, the first one.

    Raises:
        EgressRefused: An address ``url`` resolves to may not be reached by a URL of ``origin``.
        OSError: The host does not resolve (or resolves to nothing).
    """
    host = url.host
    literal = literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        addresses = [a for a in (literal_address(answer) for answer in await resolve(host, _port(url))) if a]
        if not addresses:
            raise OSError(f"{host} resolves to no address")
    rules.check(origin_url(url), addresses, origin)
    return addresses[0]


class GuardedTransport(httpx2.AsyncBaseTransport):
    """Sends each request to an address the egress rules allow, checked at connect time."""

    def __init__(
        self,
        rules: EgressRules,
        *,
        config_urls: Iterable[str] = (),
        resolve: ResolveFn = system_resolve,
        new_transport: Callable[[], httpx2.AsyncBaseTransport] = httpx2.AsyncHTTPTransport,
    ) -> None:
        """A transport under ``rules``.

        Args:
            rules: The egress rules.
            config_urls: URLs written in the config: requests to their origins may reach
                private and loopback addresses; requests anywhere else are learned.
            resolve: Name resolution (the system's by default).
            new_transport: Makes the transport that does the sending, one per host name.
        """
        self._rules = rules
        self._config_origins = frozenset(origin for url in config_urls for origin in _origins(url))
        self._resolve = resolve
        self._new_transport = new_transport
        self._transports: dict[tuple[str, str, int], httpx2.AsyncBaseTransport] = {}

    def origin_of(self, url: httpx2.URL) -> UrlOrigin:
        """Whether ``url`` is on an origin written in the config, or learned."""
        return "config" if (url.host, _port(url)) in self._config_origins else "learned"

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Check where ``request`` goes, then send it to the checked address.

        Raises:
            EgressRefused: The request's host resolves to an address it may not reach.
            httpx2.ConnectError: The host does not resolve.
            httpx2.ConnectTimeout: Resolution took longer than the connect timeout.
        """
        url = request.url
        try:
            with anyio.fail_after(_connect_timeout(request)):
                address = await resolve_checked(url, self._rules, self.origin_of(url), self._resolve)
        except TimeoutError:
            raise httpx2.ConnectTimeout(f"resolving {url.host} timed out", request=request) from None
        except OSError as exc:
            raise httpx2.ConnectError(f"{url.host} does not resolve: {exc}", request=request) from None
        extensions = dict(request.extensions)
        if url.scheme == "https":
            # TLS checks the certificate against the name, while the socket goes to the checked address.
            extensions.setdefault("sni_hostname", url.host)
        pinned = httpx2.Request(
            request.method,
            url.copy_with(host=str(address)),
            headers=request.headers,  # carries Host: the name, not the address
            stream=request.stream,
            extensions=extensions,
        )
        response = await self._transport_for(url).handle_async_request(pinned)
        if response.is_redirect:
            await self._note_refused_redirect(url, response, _connect_timeout(request))
        return response

    async def _note_refused_redirect(self, url: httpx2.URL, response: httpx2.Response, timeout: float | None) -> None:
        """Log a redirect to a host this transport would refuse: the reason a follow will fail, or did not happen."""
        try:
            location = url.join(response.headers["location"])
        except httpx2.InvalidURL:
            return
        if (location.host, _port(location)) == (url.host, _port(url)) or not location.host:
            return
        try:
            with anyio.move_on_after(timeout or _REDIRECT_CHECK_SECONDS):
                await resolve_checked(location, self._rules, self.origin_of(location), self._resolve)
        except EgressRefused as refused:
            logger.warning("%s redirected to another host, which is refused: %s", origin_url(url), refused)
        except OSError:
            return

    def _transport_for(self, url: httpx2.URL) -> httpx2.AsyncBaseTransport:
        key = (url.scheme, url.host, _port(url))
        transport = self._transports.get(key)
        if transport is None:
            transport = self._transports[key] = self._new_transport()
        return transport

    async def aclose(self) -> None:
        """Close every host's connections."""
        transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            await transport.aclose()
