"""Which addresses a connection may reach, by where its URL came from (pure: no I/O).

Two kinds of URL: one written in the config (a downstream server's ``url``: the operator
chose it, and people run servers on their LAN and this host) and one *learned* from the
network (a redirect to another host, the endpoints an OAuth server announces, a client's
metadata document URL). A config URL may reach public, private and loopback addresses; a
learned one public addresses only. Link-local and cloud metadata addresses, and the
unroutable ones, are refused for both. ``egress.allow`` lifts a refusal for the networks it
lists, whatever their class.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from orchestrator._egress._addresses import CLASS_WORDS, AddressClass, IPAddress, IPNetwork, classify, reached_address

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["EgressError", "EgressRefused", "EgressRules", "UrlOrigin", "describe_refusal"]

UrlOrigin = Literal["config", "learned"]
"""Where a URL came from: written in the config, or learned from the network."""


class EgressError(Exception):
    """A guarded connection or fetch was refused or failed; the message says why (never with a secret)."""


class EgressRefused(EgressError):
    """A URL resolves to an address its origin may not reach.

    Attributes:
        url: The refused URL's scheme, host and port (no credentials, path or query).
        address: The address that was refused.
        address_class: Its class.
        origin: Whether the URL was written in the config or learned from the network.
    """

    url: str
    address: IPAddress
    address_class: AddressClass
    origin: UrlOrigin

    def __init__(self, url: str, address: IPAddress, address_class: AddressClass, origin: UrlOrigin) -> None:
        self.url = url
        self.address = address
        self.address_class = address_class
        self.origin = origin
        super().__init__(describe_refusal(url, address, address_class, origin))


def describe_refusal(url: str, address: IPAddress, address_class: AddressClass, origin: UrlOrigin) -> str:
    """The sentence saying why ``url`` may not reach ``address``."""
    words = CLASS_WORDS[address_class]
    article = "an" if words[0] in "aeiou" else "a"
    reached = reached_address(address)
    shown = str(address) if reached == address else f"{address}, that is {reached}"
    where = f"{url} resolves to {article} {words} address ({shown})"
    if origin == "learned" and address_class in ("private", "loopback"):
        return (
            f"{where}, which a URL learned from the network (a redirect to another host, an announced "
            f"endpoint) may not reach; only URLs written in the config may reach private and loopback addresses"
        )
    return f"{where}; list it in egress.allow to connect anyway"


@dataclass(frozen=True, slots=True)
class EgressRules:
    """The egress rules of one configuration.

    Attributes:
        allow: Networks reachable whatever their class (``egress.allow``).
        learned_may_reach_private: Let learned URLs reach private and loopback addresses
            too (tests and labs only).
    """

    allow: tuple[IPNetwork, ...] = ()
    learned_may_reach_private: bool = False

    @classmethod
    def from_allow(cls, allow: Iterable[str], *, learned_may_reach_private: bool = False) -> EgressRules:
        """The rules with ``allow``'s addresses and networks (CIDR) allowed.

        Raises:
            ValueError: An entry is not an IP address or network.
        """
        networks = tuple(ipaddress.ip_network(entry, strict=False) for entry in allow)
        return cls(networks, learned_may_reach_private)

    def refused_class(self, address: IPAddress, origin: UrlOrigin) -> AddressClass | None:
        """The class of ``address`` if a URL of ``origin`` may not reach it, else ``None``."""
        reached = reached_address(address)
        if any(ip in network for ip in {address, reached} for network in self.allow if network.version == ip.version):
            return None
        address_class = classify(address)
        if address_class == "public":
            return None
        if address_class in ("private", "loopback") and (origin == "config" or self.learned_may_reach_private):
            return None
        return address_class

    def check(self, url: str, addresses: Iterable[IPAddress], origin: UrlOrigin) -> None:
        """Refuse ``url`` if any address it resolves to may not be reached.

        Every address must pass, not only the first: which one a connection uses is up to
        the resolver's order, and a name that answers with one good and one bad address is
        a name someone is playing with.

        Raises:
            EgressRefused: An address may not be reached from a URL of ``origin``.
        """
        for address in addresses:
            refused = self.refused_class(address, origin)
            if refused is not None:
                raise EgressRefused(url, address, refused, origin)
