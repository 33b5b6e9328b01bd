"""What kind of address an IP address is, for the egress rules (pure: no I/O).

Every address falls into one class. Addresses that carry an IPv4 address inside an IPv6
one (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) are
classified by the IPv4 address they reach. The link-local networks and the cloud metadata
services form one class, refused unless explicitly allowed: whoever reaches them from the
host gets the host's cloud credentials.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Final, Literal

__all__ = [
    "CLASS_WORDS",
    "METADATA_NETWORKS",
    "AddressClass",
    "IPAddress",
    "IPNetwork",
    "classify",
    "literal_address",
    "reached_address",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

AddressClass = Literal["public", "private", "loopback", "link_local", "unroutable"]
"""``public``: globally routable; ``private``: a LAN, unique-local or carrier-grade NAT address;
``loopback``: this host; ``link_local``: link-local or a cloud metadata service;
``unroutable``: unspecified, multicast, broadcast or reserved."""

CLASS_WORDS: Final[dict[AddressClass, str]] = {
    "public": "public",
    "private": "private",
    "loopback": "loopback",
    "link_local": "link-local/cloud-metadata",
    "unroutable": "unspecified/multicast/reserved",
}
"""How a message names each class."""

METADATA_NETWORKS: Final[tuple[IPNetwork, ...]] = tuple(
    ipaddress.ip_network(network)
    for network in (
        # Link-local: AWS, GCP, Azure, Oracle, DigitalOcean, OpenStack, Hetzner and IBM metadata at
        # 169.254.169.254, AWS ECS task metadata 169.254.170.2, Tencent 169.254.0.23.
        "169.254.0.0/16",
        "fe80::/10",  # IPv6 link-local (OpenStack's metadata at fe80::a9fe:a9fe)
        "fd00:ec2::/32",  # AWS Nitro over IPv6: metadata fd00:ec2::254, DNS ::253, time ::123
        "fd20:ce::254/128",  # Google Cloud metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "192.0.0.192/32",  # Oracle Cloud metadata
        "168.63.129.16/32",  # Azure WireServer (platform agent and DNS)
    )
)
"""Networks of the ``link_local`` class: link-local and the well-known cloud metadata services."""

_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_THIS_NETWORK: Final = ipaddress.ip_network("0.0.0.0/8")


def reached_address(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries and reaches, else ``ip`` itself."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def classify(address: IPAddress | str) -> AddressClass:
    """The class of ``address`` (a zone index such as ``%eth0`` is ignored).

    Raises:
        ValueError: ``address`` is not an IP address.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0]) if isinstance(address, str) else address
    ip = reached_address(ip)
    if any(ip in network for network in METADATA_NETWORKS if network.version == ip.version):
        return "link_local"
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved or ip in _THIS_NETWORK:
        return "unroutable"
    if isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "unroutable"
    if not ip.is_global:
        return "private"
    return "public"


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells, in any form the system resolver reads as one, else ``None``.

    Besides the usual forms (``10.0.0.1``, ``[fd00::1]``) the system resolver accepts the
    old IPv4 spellings (``2852039166``, ``0xa9fea9fe``, ``0251.0376.0251.0376``,
    ``169.254.43518``); they reach the same address, so they count as literals here too.
    """
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    # Only digits, dots and hex letters (with an x) can be an old-style IPv4 spelling; a name is not.
    if not bare or any(char not in "0123456789abcdefxABCDEFX." for char in bare) or not bare[0].isdigit():
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None
