"""Exposed names of tools and prompts: prefixing, filtering, sanitising, truncation, collisions."""

from __future__ import annotations

import hashlib
from typing import Any

import mcp_types as types
import pytest

from orchestrator.catalog import (
    EMPTY_CATALOG,
    Catalog,
    NameMapping,
    Route,
    ServerManifest,
    build_catalog,
    is_valid_name,
)
from orchestrator.config._models import NamingSpec, ToolFilterSpec
from orchestrator.errors import UnknownToolError

SCHEMA: dict[str, Any] = {"type": "object", "properties": {"q": {"type": "string"}}}


def tool(name: str, description: str | None = None) -> types.Tool:
    return types.Tool(name=name, description=description, input_schema=SCHEMA)


def prompt(name: str) -> types.Prompt:
    return types.Prompt(name=name)


def digest(server: str, original: str) -> str:
    return hashlib.sha256(f"{server}\0{original}".encode()).hexdigest()[:8]


def mapping(catalog: Catalog, server: str, original: str, kind: str = "tool") -> NameMapping:
    (found,) = (m for m in catalog.mappings if (m.kind, m.server, m.original) == (kind, server, original))
    return found


def names(catalog: Catalog) -> list[str]:
    return [t.name for t in catalog.tools]


def test_prefixed_tool_is_exposed_as_prefix_separator_name_and_routes_back() -> None:
    catalog = build_catalog([ServerManifest("time", "clock", tools=(tool("get_current_time"),))])

    assert names(catalog) == ["clock__get_current_time"]
    assert catalog.route_tool("clock__get_current_time") == Route("time", "get_current_time")
    assert mapping(catalog, "time", "get_current_time").notes == ()


def test_unprefixed_server_exposes_the_original_name() -> None:
    catalog = build_catalog([ServerManifest("time", None, tools=(tool("now"),))])

    assert names(catalog) == ["now"]
    assert catalog.route_tool("now") == Route("time", "now")


def test_custom_separator_joins_prefix_and_name() -> None:
    catalog = build_catalog([ServerManifest("time", "clock", tools=(tool("now"),))], NamingSpec(separator="-"))

    assert names(catalog) == ["clock-now"]


def test_include_and_exclude_globs_choose_the_exposed_tools() -> None:
    spec = ToolFilterSpec(include=("get_*", "list"), exclude=("*_secret",))
    tools = (tool("get_time"), tool("get_secret"), tool("list"), tool("listing"), tool("delete"), tool("GET_X"))
    catalog = build_catalog([ServerManifest("s", None, tools=tools, tool_filter=spec)])

    assert names(catalog) == ["get_time", "list"]
    assert catalog.exposed_tool_name("s", "get_secret") is None
    assert catalog.original_tool("s", "delete") is None


def test_rename_changes_the_base_name_before_prefixing_and_is_noted() -> None:
    spec = ToolFilterSpec(rename={"get_current_time": "now"})
    catalog = build_catalog([ServerManifest("time", "clock", tools=(tool("get_current_time"),), tool_filter=spec)])

    assert names(catalog) == ["clock__now"]
    assert catalog.route_tool("clock__now") == Route("time", "get_current_time")
    assert mapping(catalog, "time", "get_current_time").notes == ("renamed",)


def test_describe_replaces_the_description_by_original_or_renamed_name() -> None:
    spec = ToolFilterSpec(
        rename={"get_current_time": "now"},
        describe={"now": "The time now.", "convert": "Convert a time.", "unknown": "ignored"},
    )
    tools = (tool("get_current_time", "old"), tool("convert", "old"), tool("other", "kept"))
    catalog = build_catalog([ServerManifest("time", None, tools=tools, tool_filter=spec)])

    assert catalog.tool("now").description == "The time now."
    assert catalog.tool("convert").description == "Convert a time."
    assert catalog.tool("other").description == "kept"


def test_describe_by_renamed_name_wins_over_describe_by_original_name() -> None:
    spec = ToolFilterSpec(rename={"a": "b"}, describe={"a": "by original", "b": "by rename"})
    catalog = build_catalog([ServerManifest("s", None, tools=(tool("a"),), tool_filter=spec)])

    assert catalog.tool("b").description == "by rename"


def test_exposed_tool_keeps_schema_and_annotations_and_original_tool_is_untouched() -> None:
    original = types.Tool(
        name="q.run",
        description="Run.",
        input_schema=SCHEMA,
        output_schema={"type": "object"},
        annotations=types.ToolAnnotations(read_only_hint=True),
    )
    spec = ToolFilterSpec(describe={"q.run": "Run a query."})
    catalog = build_catalog([ServerManifest("db", "db", tools=(original,), tool_filter=spec)])

    exposed = catalog.tool("db__q_run")
    assert exposed.input_schema == SCHEMA
    assert exposed.output_schema == {"type": "object"}
    assert exposed.annotations == original.annotations
    assert exposed.description == "Run a query."
    assert catalog.original_tool("db", "q.run") is original
    assert catalog.exposed_tool_name("db", "q.run") == "db__q_run"


@pytest.mark.parametrize(
    ("original", "exposed"),
    [
        ("read.file", "fs__read_file"),
        ("a/b c", "fs__a_b_c"),
        ("héllo✓", "fs__h_llo_"),
        ("tab\tnew\nline", "fs__tab_new_line"),
    ],
)
def test_characters_outside_the_safe_set_become_underscores(original: str, exposed: str) -> None:
    catalog = build_catalog([ServerManifest("fs", "fs", tools=(tool(original),))])

    assert names(catalog) == [exposed]
    assert catalog.route_tool(exposed) == Route("fs", original)
    assert mapping(catalog, "fs", original).notes == ("sanitized",)


def test_prefix_with_unsafe_characters_is_sanitised_too() -> None:
    catalog = build_catalog([ServerManifest("my.server", "my.server", tools=(tool("x"),))])

    assert names(catalog) == ["my_server__x"]


def test_empty_name_becomes_a_hash_based_name() -> None:
    catalog = build_catalog([ServerManifest("s", None, tools=(tool(""),))])

    assert names(catalog) == [f"_{digest('s', '')}"]
    assert catalog.route_tool(f"_{digest('s', '')}") == Route("s", "")
    assert mapping(catalog, "s", "").notes == ("sanitized",)


def test_long_name_is_truncated_to_exactly_64_characters_ending_in_a_stable_hash() -> None:
    original = "x" * 100
    catalog = build_catalog([ServerManifest("svc", "svc", tools=(tool(original),))])

    (exposed,) = names(catalog)
    assert len(exposed) == 64
    assert exposed == ("svc__" + original)[:55] + "_" + digest("svc", original)
    assert is_valid_name(exposed)
    assert catalog.route_tool(exposed) == Route("svc", original)
    assert mapping(catalog, "svc", original).notes == ("truncated",)


def test_cursor_max_length_60_truncates_to_exactly_60() -> None:
    catalog = build_catalog(
        [ServerManifest("svc", "svc", tools=(tool("y" * 58), tool("z" * 55)))], NamingSpec(max_length=60)
    )

    assert sorted(len(n) for n in names(catalog)) == [60, 60]
    assert "svc__" + "z" * 55 in names(catalog)


def test_name_of_exactly_max_length_is_kept_whole() -> None:
    original = "a" * 61
    catalog = build_catalog([ServerManifest("s", "s", tools=(tool(original),))])

    assert names(catalog) == ["s__" + original]
    assert mapping(catalog, "s", original).notes == ()


def test_truncated_name_is_the_same_whatever_else_is_in_the_catalog() -> None:
    long_tool = tool("report_" + "q" * 80)
    alone = build_catalog([ServerManifest("r", "r", tools=(long_tool,))])
    crowded = build_catalog([ServerManifest("r", "r", tools=(long_tool, tool("other"))), ServerManifest("t", "t")])

    assert alone.exposed_tool_name("r", long_tool.name) == crowded.exposed_tool_name("r", long_tool.name)


def test_clashing_names_across_servers_first_server_keeps_the_name_others_get_a_hash() -> None:
    manifests = [ServerManifest(s, None, tools=(tool("search"),)) for s in ("web", "docs", "code")]
    catalog = build_catalog(manifests)

    assert catalog.exposed_tool_name("code", "search") == "search"
    assert catalog.exposed_tool_name("docs", "search") == f"search_{digest('docs', 'search')}"
    assert catalog.exposed_tool_name("web", "search") == f"search_{digest('web', 'search')}"
    assert mapping(catalog, "code", "search").notes == ()
    assert mapping(catalog, "web", "search").notes == ("collision",)
    for server in ("web", "docs", "code"):
        exposed = catalog.exposed_tool_name(server, "search")
        assert exposed is not None
        assert catalog.route_tool(exposed) == Route(server, "search")


def test_clash_resolution_does_not_depend_on_manifest_order() -> None:
    manifests = [ServerManifest(s, None, tools=(tool("search"),)) for s in ("web", "docs", "code")]

    assert build_catalog(manifests).mappings == build_catalog(reversed(manifests)).mappings


def test_names_that_clash_only_after_sanitising_are_resolved() -> None:
    catalog = build_catalog([ServerManifest("s", None, tools=(tool("a.b"), tool("a_b"), tool("a/b")))])

    assert len(set(names(catalog))) == 3
    assert catalog.exposed_tool_name("s", "a.b") == "a_b"  # "." sorts before "/" and "_"
    assert mapping(catalog, "s", "a/b").notes == ("sanitized", "collision")
    assert mapping(catalog, "s", "a_b").notes == ("collision",)


def test_clash_of_long_names_is_suffixed_within_max_length() -> None:
    long_name = "n" * 70
    manifests = [
        ServerManifest("a", None, tools=(tool(long_name),)),
        ServerManifest("b", None, tools=(tool(long_name),)),
    ]
    catalog = build_catalog(manifests)

    assert all(len(n) == 64 for n in names(catalog))
    assert len(set(names(catalog))) == 2


def test_reserved_name_wins_over_every_tool_that_wants_it() -> None:
    manifests = [
        ServerManifest("a", None, tools=(tool("incident_report"),)),
        ServerManifest("b", None, tools=(tool("incident_report"),)),
    ]
    catalog = build_catalog(manifests, reserved=["incident_report"])

    assert "incident_report" not in names(catalog)
    assert catalog.exposed_tool_name("a", "incident_report") == f"incident_report_{digest('a', 'incident_report')}"
    assert catalog.exposed_tool_name("b", "incident_report") == f"incident_report_{digest('b', 'incident_report')}"
    assert mapping(catalog, "a", "incident_report").notes == ("collision",)
    with pytest.raises(UnknownToolError):
        catalog.route_tool("incident_report")


def test_suffixed_name_that_is_already_taken_is_rehashed() -> None:
    taken = f"x_{digest('b', 'x')}"
    manifests = [
        ServerManifest("a", None, tools=(tool("x"),)),
        ServerManifest("b", None, tools=(tool("x"),)),
        ServerManifest("c", None, tools=(tool(taken),)),
    ]
    catalog = build_catalog(manifests)

    assert catalog.exposed_tool_name("c", taken) == taken
    rehashed = catalog.exposed_tool_name("b", "x")
    assert rehashed is not None
    assert rehashed not in {"x", taken}
    assert is_valid_name(rehashed)
    assert catalog.route_tool(rehashed) == Route("b", "x")


def test_renames_that_clash_within_one_server_are_resolved() -> None:
    spec = ToolFilterSpec(rename={"a": "same", "b": "same"})
    catalog = build_catalog([ServerManifest("s", "s", tools=(tool("a"), tool("b")), tool_filter=spec)])

    assert catalog.exposed_tool_name("s", "a") == "s__same"
    assert catalog.exposed_tool_name("s", "b") == f"s__same_{digest('s', 'b')}"
    assert mapping(catalog, "s", "b").notes == ("renamed", "collision")


def test_tool_listed_twice_by_one_server_is_exposed_once_with_its_first_listing() -> None:
    catalog = build_catalog([ServerManifest("s", None, tools=(tool("t", "first"), tool("t", "second")))])

    assert names(catalog) == ["t"]
    assert catalog.tool("t").description == "first"


def test_two_manifests_for_one_server_key_are_rejected() -> None:
    with pytest.raises(ValueError, match="'s'"):
        build_catalog([ServerManifest("s", None), ServerManifest("s", "x")])


def test_unknown_exposed_tool_raises_unknown_tool_error() -> None:
    catalog = build_catalog([ServerManifest("s", "s", tools=(tool("t"),))])

    with pytest.raises(UnknownToolError) as raised:
        catalog.route_tool("s.t")
    assert (raised.value.kind, raised.value.name) == ("tool", "s.t")
    with pytest.raises(UnknownToolError):
        catalog.tool("t")


def test_prompts_are_named_like_tools_in_their_own_namespace() -> None:
    manifests = [
        ServerManifest("a", None, tools=(tool("summarize"),), prompts=(prompt("summarize"), prompt("x.y"))),
        ServerManifest("b", None, prompts=(prompt("summarize"),), tool_filter=ToolFilterSpec(include=())),
    ]
    catalog = build_catalog(manifests, reserved=["summarize"])

    assert [p.name for p in catalog.prompts] == ["summarize", f"summarize_{digest('b', 'summarize')}", "x_y"]
    assert catalog.route_prompt("summarize") == Route("a", "summarize")
    assert catalog.route_prompt("x_y") == Route("a", "x.y")
    assert catalog.exposed_tool_name("a", "summarize") != "summarize"
    assert mapping(catalog, "a", "x.y", kind="prompt").notes == ("sanitized",)
    with pytest.raises(UnknownToolError) as raised:
        catalog.route_prompt("nope")
    assert raised.value.kind == "prompt"


def test_servers_are_every_manifest_even_those_exposing_nothing() -> None:
    catalog = build_catalog([ServerManifest("a", None, tools=(tool("t"),)), ServerManifest("idle", "idle")])

    assert catalog.servers == frozenset({"a", "idle"})


def test_mappings_list_tools_then_prompts_each_sorted_by_exposed_name() -> None:
    manifest = ServerManifest("s", None, tools=(tool("b"), tool("a")), prompts=(prompt("d"), prompt("c")))
    catalog = build_catalog([manifest])

    assert [(m.kind, m.exposed) for m in catalog.mappings] == [
        ("tool", "a"),
        ("tool", "b"),
        ("prompt", "c"),
        ("prompt", "d"),
    ]
    assert names(catalog) == ["a", "b"]


def test_empty_catalog_exposes_and_routes_nothing() -> None:
    assert (EMPTY_CATALOG.tools, EMPTY_CATALOG.prompts, EMPTY_CATALOG.mappings) == ((), (), ())
    assert EMPTY_CATALOG.servers == frozenset()
    assert EMPTY_CATALOG.exposed_tool_name("s", "t") is None
    with pytest.raises(UnknownToolError):
        EMPTY_CATALOG.route_tool("t")


@pytest.mark.parametrize(
    ("name", "max_length", "valid"),
    [
        ("a", 64, True),
        ("A-z_0", 64, True),
        ("x" * 64, 64, True),
        ("x" * 65, 64, False),
        ("x" * 60, 59, False),
        ("", 64, False),
        ("a.b", 64, False),
        ("é", 64, False),
        ("a\n", 64, False),
    ],
)
def test_is_valid_name_accepts_only_safe_characters_within_the_length(name: str, max_length: int, valid: bool) -> None:
    assert is_valid_name(name, max_length) is valid
