"""Apps in the catalogue: who may call a tool, and app links that follow renamed resources."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest

from orchestrator.catalog import (
    APP_MIME_TYPE,
    ServerManifest,
    build_catalog,
    has_app,
    is_app_only,
    relinked_result,
    visibility,
)

VIEW = "ui://widget/view.html"


def tool(name: str, meta: dict[str, Any] | None = None) -> types.Tool:
    return types.Tool(name=name, input_schema={"type": "object"}, _meta=meta)


def resource(uri: str) -> types.Resource:
    return types.Resource(uri=uri, name=uri, mime_type=APP_MIME_TYPE, _meta={"ui": {"prefersBorder": True}})


@pytest.mark.parametrize(
    ("meta", "who"),
    [
        (None, {"model", "app"}),
        ({"ui": {"resourceUri": VIEW}}, {"model", "app"}),
        ({"ui": {"visibility": ["app"]}}, {"app"}),
        ({"ui": {"visibility": ["model"]}}, {"model"}),
        ({"ui": {"visibility": []}}, set[str]()),
        ({"openai/visibility": "private"}, {"app"}),
        ({"openai/visibility": "public"}, {"model", "app"}),
        ({"ui": "not an object"}, {"model", "app"}),
    ],
)
def test_visibility_is_read_from_either_apps_key_and_defaults_to_everyone(
    meta: dict[str, Any] | None, who: set[str]
) -> None:
    assert visibility(tool("t", meta)) == who
    assert is_app_only(tool("t", meta)) is ("model" not in who)


def test_a_tool_has_an_app_when_any_of_the_three_link_keys_names_one() -> None:
    assert not has_app(tool("t"))
    assert not has_app(tool("t", {"ui": {"visibility": ["app"]}}))
    for meta in ({"ui": {"resourceUri": VIEW}}, {"ui/resourceUri": VIEW}, {"openai/outputTemplate": VIEW}):
        assert has_app(tool("t", meta))


def test_clashing_app_resources_keep_their_scheme_and_every_link_follows() -> None:
    meta = {
        "ui": {"resourceUri": VIEW, "visibility": ["model", "app"]},
        "ui/resourceUri": VIEW,
        "openai/outputTemplate": VIEW,
        "openai/widgetAccessible": True,
        "nested": {"resourceUri": VIEW},  # not a link key: left alone
    }
    catalog = build_catalog(
        [
            ServerManifest("a", "a", tools=(tool("show", meta),), resources=(resource(VIEW),)),
            ServerManifest("b", "b", tools=(tool("show", meta),), resources=(resource(VIEW),)),
        ]
    )
    assert [r.uri for r in catalog.resources] == ["ui://a/widget/view.html", "ui://b/widget/view.html"]
    assert all(r.meta == {"ui": {"prefersBorder": True}} for r in catalog.resources)
    for server in ("a", "b"):
        exposed = f"ui://{server}/widget/view.html"
        assert catalog.tool(f"{server}__show").meta == {
            **meta,
            "ui": {"resourceUri": exposed, "visibility": ["model", "app"]},
            "ui/resourceUri": exposed,
            "openai/outputTemplate": exposed,
        }
        assert catalog.route_resource(exposed).server == server
        assert catalog.relink(server, VIEW) == exposed
        assert catalog.relinks(server)
    # The server's own definition is kept as it listed it (pins and workflows see that one).
    assert catalog.original_tool("a", "show") == tool("show", meta)


def test_links_to_a_resource_no_other_server_offers_are_left_alone() -> None:
    meta = {"ui": {"resourceUri": VIEW}}
    catalog = build_catalog([ServerManifest("a", "a", tools=(tool("show", meta),), resources=(resource(VIEW),))])
    assert catalog.tool("a__show").meta == meta
    assert [r.uri for r in catalog.resources] == [VIEW]
    assert not catalog.relinks("a")


def test_a_link_to_a_resource_its_server_does_not_list_still_routes_to_that_server() -> None:
    catalog = build_catalog(
        [
            ServerManifest("a", "a", resources=(resource(VIEW),)),
            ServerManifest("c", "c", tools=(tool("show", {"ui": {"resourceUri": VIEW}}),)),
        ]
    )
    # c's link must not be answered by a's resource: both are namespaced, c's is routed, not listed.
    assert [r.uri for r in catalog.resources] == ["ui://a/widget/view.html"]
    assert catalog.tool("c__show").meta == {"ui": {"resourceUri": "ui://c/widget/view.html"}}
    assert catalog.route_resource("ui://c/widget/view.html").server == "c"


def test_a_namespaced_app_uri_a_server_really_offers_is_not_taken_twice() -> None:
    taken = "ui://a/widget/view.html"
    catalog = build_catalog(
        [
            ServerManifest("a", "a", resources=(resource(VIEW),)),
            ServerManifest("b", "b", resources=(resource(VIEW), resource(taken))),
        ]
    )
    uris = [r.uri for r in catalog.resources]
    assert len(uris) == len(set(uris)) == 3
    assert catalog.route_resource(taken).server == "b"
    assert catalog.route_resource("ui://a/a/widget/view.html").server == "a"  # the prefix, once more
    assert catalog.route_resource("ui://b/widget/view.html").server == "b"


def test_other_schemes_and_templates_keep_the_plain_prefix() -> None:
    catalog = build_catalog(
        [
            ServerManifest("a", "a", resources=(resource("file:///x"),)),
            ServerManifest("b", "b", resources=(resource("file:///x"),)),
        ]
    )
    assert [r.uri for r in catalog.resources] == ["a+file:///x", "b+file:///x"]


def test_results_relink_resource_links_embedded_resources_and_meta_links_only() -> None:
    result = types.CallToolResult(
        content=[
            types.TextContent(text=VIEW),
            types.ResourceLink(uri=VIEW, name="view", _meta={"k": 1}),
            types.EmbeddedResource(resource=types.TextResourceContents(uri=VIEW, text="<p>", _meta={"k": 2})),
            types.ResourceLink(uri="debug://other", name="other"),
        ],
        structured_content={"uri": VIEW},
        _meta={"openai/outputTemplate": VIEW, "widget": {"uri": VIEW}},
    )

    def relink(uri: str) -> str:
        return "ui://a/widget/view.html" if uri == VIEW else uri

    relinked = relinked_result(result, relink)
    dumped = relinked.model_dump(mode="json", by_alias=True, exclude_none=True)
    exposed = "ui://a/widget/view.html"
    assert dumped["content"][0] == {"type": "text", "text": VIEW}
    assert dumped["content"][1] == {"type": "resource_link", "uri": exposed, "name": "view", "_meta": {"k": 1}}
    assert dumped["content"][2]["resource"] == {"uri": exposed, "text": "<p>", "_meta": {"k": 2}}
    assert dumped["content"][3]["uri"] == "debug://other"
    assert dumped["structuredContent"] == {"uri": VIEW}  # data for the widget is the server's own
    assert dumped["_meta"] == {"openai/outputTemplate": exposed, "widget": {"uri": VIEW}}
    assert relinked_result(result, lambda uri: uri) is result
