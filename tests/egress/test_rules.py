"""Address classes and the egress rules: pure, synchronous."""

from __future__ import annotations

import ipaddress

import pytest

from orchestrator._egress import EgressRefused, EgressRules, classify, literal_address, literal_refusal


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("93.184.215.14", "public"),
        ("2606:4700::1111", "public"),
        ("10.0.0.7", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.20", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT
        ("fd12:3456::1", "private"),
        ("127.0.0.1", "loopback"),
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link_local"),
        ("169.254.170.2", "link_local"),  # AWS ECS task metadata
        ("fe80::a9fe:a9fe", "link_local"),
        ("fe80::1%eth0", "link_local"),
        ("fd00:ec2::254", "link_local"),
        ("fd20:ce::254", "link_local"),
        ("100.100.100.200", "link_local"),  # Alibaba Cloud metadata
        ("192.0.0.192", "link_local"),  # Oracle Cloud metadata
        ("168.63.129.16", "link_local"),  # Azure WireServer: a public address, refused all the same
        ("::ffff:169.254.169.254", "link_local"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.1.2.3", "private"),
        ("::ffff:93.184.215.14", "public"),
        ("64:ff9b::a9fe:a9fe", "link_local"),  # NAT64 of 169.254.169.254
        ("2002:a9fe:a9fe::1", "link_local"),  # 6to4 of 169.254.169.254
        ("0.0.0.0", "unroutable"),
        ("0.1.2.3", "unroutable"),
        ("::", "unroutable"),
        ("224.0.0.1", "unroutable"),
        ("ff02::1", "unroutable"),
        ("240.0.0.1", "unroutable"),
        ("255.255.255.255", "unroutable"),
    ],
)
def test_every_address_falls_in_its_class(address: str, expected: str) -> None:
    assert classify(address) == expected


@pytest.mark.parametrize(
    "spelling",
    ["169.254.169.254", "2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "169.254.43518", "[::ffff:a9fe:a9fe]"],
)
def test_odd_spellings_of_the_metadata_address_are_read_as_the_address_they_reach(spelling: str) -> None:
    address = literal_address(spelling)
    assert address is not None
    assert classify(address) == "link_local"


@pytest.mark.parametrize("name", ["example.com", "metadata.google.internal", "localhost", "1e100.net", "db"])
def test_host_names_are_not_literals(name: str) -> None:
    assert literal_address(name) is None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def test_config_urls_may_reach_the_lan_and_loopback_but_learned_ones_only_public_addresses() -> None:
    rules = EgressRules()
    for address in ("10.0.0.7", "127.0.0.1", "::1", "93.184.215.14"):
        assert rules.refused_class(_ip(address), "config") is None
    assert rules.refused_class(_ip("93.184.215.14"), "learned") is None
    assert rules.refused_class(_ip("10.0.0.7"), "learned") == "private"
    assert rules.refused_class(_ip("127.0.0.1"), "learned") == "loopback"
    for origin in ("config", "learned"):
        assert rules.refused_class(_ip("169.254.169.254"), origin) == "link_local"
        assert rules.refused_class(_ip("fd00:ec2::254"), origin) == "link_local"
        assert rules.refused_class(_ip("0.0.0.0"), origin) == "unroutable"


def test_egress_allow_lifts_a_refusal_for_its_networks_only_in_any_spelling() -> None:
    rules = EgressRules.from_allow(["169.254.169.254", "fd00:ec2::/32", "10.9.0.0/16"])
    assert rules.refused_class(_ip("169.254.169.254"), "config") is None
    assert rules.refused_class(_ip("::ffff:169.254.169.254"), "config") is None
    assert rules.refused_class(_ip("fd00:ec2::254"), "config") is None
    assert rules.refused_class(_ip("10.9.1.1"), "learned") is None
    assert rules.refused_class(_ip("169.254.170.2"), "config") == "link_local"
    assert rules.refused_class(_ip("10.8.1.1"), "learned") == "private"


def test_every_resolved_address_must_pass_and_the_refusal_says_which_and_why() -> None:
    rules = EgressRules()
    with pytest.raises(EgressRefused) as caught:
        rules.check("http://mixed.example/", [_ip("93.184.215.14"), _ip("169.254.169.254")], "config")
    assert caught.value.address == _ip("169.254.169.254")
    assert str(caught.value) == (
        "http://mixed.example/ resolves to a link-local/cloud-metadata address (169.254.169.254); "
        "list it in egress.allow to connect anyway"
    )
    with pytest.raises(EgressRefused, match=r"resolves to a loopback address \(127\.0\.0\.2\), which a URL learned"):
        rules.check("http://127.0.0.2:8000/", [_ip("127.0.0.2")], "learned")


def test_a_config_url_naming_a_refused_address_is_judged_without_resolving_anything() -> None:
    rules = EgressRules()
    assert literal_refusal("http://169.254.169.254/latest/meta-data?x=1", rules) == (
        "http://169.254.169.254/ resolves to a link-local/cloud-metadata address (169.254.169.254); "
        "list it in egress.allow to connect anyway"
    )
    assert literal_refusal("http://[::ffff:169.254.169.254]:8080/mcp", rules) == (
        "http://[::ffff:169.254.169.254]:8080/ resolves to a link-local/cloud-metadata address "
        "(::ffff:a9fe:a9fe, that is 169.254.169.254); list it in egress.allow to connect anyway"
    )
    assert literal_refusal("http://2852039166/mcp", rules) is not None
    assert literal_refusal("http://10.0.0.5:8000/mcp", rules) is None
    assert literal_refusal("http://metadata.google.internal/", rules) is None  # judged when it resolves
    assert literal_refusal("http://169.254.169.254/", EgressRules.from_allow(["169.254.169.254/32"])) is None
