"""Exposed resource URIs and templates, and routing reads back to the server that owns them."""

from __future__ import annotations

import mcp_types as types
import pytest

from orchestrator.catalog import Route, ServerManifest, build_catalog
from orchestrator.errors import UnknownToolError


def resource(uri: str, name: str = "r") -> types.Resource:
    return types.Resource(name=name, uri=uri)


def template(uri_template: str) -> types.ResourceTemplate:
    return types.ResourceTemplate(name="t", uri_template=uri_template)


def test_resource_uris_that_do_not_clash_are_kept_and_route_to_their_server() -> None:
    catalog = build_catalog(
        [
            ServerManifest("db", "db", resources=(resource("postgres://db/schema"),)),
            ServerManifest("fs", "fs", resources=(resource("file:///etc/hosts"),)),
        ]
    )

    assert [r.uri for r in catalog.resources] == ["file:///etc/hosts", "postgres://db/schema"]
    assert catalog.route_resource("file:///etc/hosts") == Route("fs", "file:///etc/hosts")
    assert catalog.route_resource("postgres://db/schema") == Route("db", "postgres://db/schema")


def test_clashing_resource_uris_get_a_server_plus_prefix_and_route_back() -> None:
    catalog = build_catalog(
        [
            ServerManifest("fs", None, resources=(resource("file:///x", "fs x"), resource("file:///only-fs"))),
            ServerManifest("db", None, resources=(resource("file:///x", "db x"),)),
        ]
    )

    assert [r.uri for r in catalog.resources] == ["db+file:///x", "file:///only-fs", "fs+file:///x"]
    assert catalog.route_resource("db+file:///x") == Route("db", "file:///x")
    assert catalog.route_resource("fs+file:///x") == Route("fs", "file:///x")
    assert catalog.route_resource("file:///only-fs") == Route("fs", "file:///only-fs")
    assert {r.uri: r.name for r in catalog.resources}["db+file:///x"] == "db x"
    with pytest.raises(UnknownToolError):
        catalog.route_resource("file:///x")


def test_server_plus_uri_already_offered_by_another_server_is_prefixed_again() -> None:
    catalog = build_catalog(
        [
            ServerManifest("db", None, resources=(resource("file:///x"),)),
            ServerManifest("fs", None, resources=(resource("file:///x"),)),
            ServerManifest("odd", None, resources=(resource("db+file:///x"),)),
        ]
    )

    assert catalog.route_resource("db+file:///x") == Route("odd", "db+file:///x")
    assert catalog.route_resource("db+db+file:///x") == Route("db", "file:///x")
    assert len({r.uri for r in catalog.resources}) == 3


def test_uri_listed_twice_by_one_server_is_not_a_clash() -> None:
    catalog = build_catalog(
        [ServerManifest("fs", None, resources=(resource("file:///x", "a"), resource("file:///x", "b")))]
    )

    assert [(r.uri, r.name) for r in catalog.resources] == [("file:///x", "a")]


def test_read_of_a_templated_uri_routes_to_the_template_owner() -> None:
    catalog = build_catalog(
        [
            ServerManifest("weather", None, resource_templates=(template("weather://{city}/current"),)),
            ServerManifest("fs", None, resource_templates=(template("file:///{+path}"),)),
        ]
    )

    assert catalog.route_resource("weather://paris/current") == Route("weather", "weather://paris/current")
    assert catalog.route_resource("file:///var/log/syslog") == Route("fs", "file:///var/log/syslog")
    with pytest.raises(UnknownToolError) as raised:
        catalog.route_resource("weather://paris/forecast")
    assert raised.value.kind == "resource"


def test_clashing_templates_are_prefixed_and_reads_route_back_without_the_prefix() -> None:
    catalog = build_catalog(
        [
            ServerManifest("a", None, resource_templates=(template("notes://{id}"),)),
            ServerManifest("b", None, resource_templates=(template("notes://{id}"),)),
        ]
    )

    assert [t.uri_template for t in catalog.resource_templates] == ["a+notes://{id}", "b+notes://{id}"]
    assert catalog.route_resource("a+notes://42") == Route("a", "notes://42")
    assert catalog.route_resource("b+notes://42") == Route("b", "notes://42")
    with pytest.raises(UnknownToolError):
        catalog.route_resource("notes://42")


def test_exact_resource_wins_over_a_matching_template() -> None:
    catalog = build_catalog(
        [
            ServerManifest("static", None, resources=(resource("notes://readme"),)),
            ServerManifest("dynamic", None, resource_templates=(template("notes://{id}"),)),
        ]
    )

    assert catalog.route_resource("notes://readme") == Route("static", "notes://readme")
    assert catalog.route_resource("notes://7") == Route("dynamic", "notes://7")


def test_more_specific_template_wins_when_several_match() -> None:
    catalog = build_catalog(
        [
            ServerManifest("any", None, resource_templates=(template("repo://{owner}/{name}"),)),
            ServerManifest("ours", None, resource_templates=(template("repo://acme/{name}"),)),
        ]
    )

    assert catalog.route_resource("repo://acme/tool") == Route("ours", "repo://acme/tool")
    assert catalog.route_resource("repo://other/tool") == Route("any", "repo://other/tool")


def test_template_the_matcher_rejects_still_routes_its_literal_uri() -> None:
    catalog = build_catalog([ServerManifest("s", None, resource_templates=(template("odd://{unclosed"),))])

    assert catalog.route_resource("odd://{unclosed") == Route("s", "odd://{unclosed")
    with pytest.raises(UnknownToolError):
        catalog.route_resource("odd://value")
