"""Properties of exposed names over random manifests: valid, unique, deterministic, routable."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

import mcp_types as types
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.catalog import Catalog, Route, ServerManifest, build_catalog
from orchestrator.config._models import NamingSpec, ToolFilterSpec

if TYPE_CHECKING:
    import random

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True)

# A small alphabet makes clashes (before and after sanitising) common; the others cover
# unicode, separators, slashes, dots, and names far past any max_length.
_NAMES = st.one_of(
    st.sampled_from(["a", "b", "a.b", "a_b", "a__a"]),
    st.text(alphabet="ab._", min_size=0, max_size=4),
    st.text(max_size=20),
    st.from_regex(r"[a-z]{1,8}([./:_-][a-z]{1,8}){0,4}", fullmatch=True),
    st.text(alphabet="xy_.é/", min_size=50, max_size=200),
)
_SERVER_KEYS = st.one_of(st.sampled_from(["a", "b", "db", "fs", "a.b"]), st.text(min_size=1, max_size=12))


@dataclass(frozen=True)
class Scenario:
    manifests: tuple[ServerManifest, ...]
    naming: NamingSpec
    reserved: tuple[str, ...]


def _tool(name: str) -> types.Tool:
    return types.Tool(name=name, input_schema={"type": "object"})


@st.composite
def _filters(draw: st.DrawFn, names: list[str]) -> ToolFilterSpec:
    include = draw(st.sampled_from([("*",), ("*",), ("a*", "*b*"), ("[!x]*",)]))
    exclude = draw(st.sampled_from([(), (), ("*.*",), ("b*",)]))
    renamed = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    rename = {original: draw(_NAMES) for original in renamed}
    return ToolFilterSpec(include=include, exclude=exclude, rename=rename)


@st.composite
def _manifest(draw: st.DrawFn, server: str) -> ServerManifest:
    names = draw(st.lists(_NAMES, max_size=8))
    names += draw(st.lists(st.sampled_from(names), max_size=2)) if names else []  # a server listing a name twice
    prefix = draw(st.one_of(st.sampled_from([None, None, "a", server]), _NAMES))
    prompts = draw(st.lists(_NAMES, max_size=3, unique=True))
    return ServerManifest(
        server,
        prefix,
        tools=tuple(_tool(n) for n in names),
        prompts=tuple(types.Prompt(name=n) for n in prompts),
        tool_filter=draw(_filters(names)),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    servers = draw(st.lists(_SERVER_KEYS, min_size=1, max_size=5, unique=True))
    naming = NamingSpec(separator=draw(st.sampled_from(["__", "_", "-", "x1"])), max_length=draw(st.integers(16, 128)))
    reserved = draw(st.lists(st.one_of(_NAMES, st.sampled_from(["a", "b", "a__a", "db__a"])), max_size=3))
    return Scenario(tuple(draw(_manifest(s)) for s in servers), naming, tuple(reserved))


def _build(scenario: Scenario) -> Catalog:
    return build_catalog(scenario.manifests, scenario.naming, scenario.reserved)


def _included(manifest: ServerManifest) -> set[tuple[str, str]]:
    spec = manifest.tool_filter
    return {
        (manifest.server, t.name)
        for t in manifest.tools
        if any(fnmatchcase(t.name, p) for p in spec.include) and not any(fnmatchcase(t.name, p) for p in spec.exclude)
    }


@PROPERTY
@given(scenarios())
def test_every_exposed_tool_and_prompt_name_is_provider_safe(scenario: Scenario) -> None:
    catalog = _build(scenario)
    pattern = re.compile(rf"[a-zA-Z0-9_-]{{1,{scenario.naming.max_length}}}")

    for name in [t.name for t in catalog.tools] + [p.name for p in catalog.prompts]:
        assert pattern.fullmatch(name), name


@PROPERTY
@given(scenarios())
def test_exposed_names_are_unique_and_never_take_a_reserved_name(scenario: Scenario) -> None:
    catalog = _build(scenario)
    tool_names = [t.name for t in catalog.tools]
    prompt_names = [p.name for p in catalog.prompts]

    assert len(set(tool_names)) == len(tool_names)
    assert len(set(prompt_names)) == len(prompt_names)
    assert not set(tool_names) & set(scenario.reserved)


@PROPERTY
@given(scenarios(), st.randoms(use_true_random=False))
def test_names_do_not_depend_on_the_order_of_manifests_or_tools(scenario: Scenario, rng: random.Random) -> None:
    shuffled = [
        replace(
            m,
            tools=tuple(rng.sample(m.tools, len(m.tools))),
            prompts=tuple(rng.sample(m.prompts, len(m.prompts))),
        )
        for m in rng.sample(scenario.manifests, len(scenario.manifests))
    ]

    original, reordered = _build(scenario), _build(replace(scenario, manifests=tuple(shuffled)))

    assert original.mappings == reordered.mappings
    assert [t.name for t in original.tools] == [t.name for t in reordered.tools]
    assert [p.name for p in original.prompts] == [p.name for p in reordered.prompts]


@PROPERTY
@given(scenarios())
def test_routing_round_trips_and_every_included_tool_is_exposed_exactly_once(scenario: Scenario) -> None:
    catalog = _build(scenario)
    included = set[tuple[str, str]]().union(*(_included(m) for m in scenario.manifests))

    routes = [catalog.route_tool(t.name) for t in catalog.tools]
    assert sorted((r.server, r.name) for r in routes) == sorted(included)
    for exposed, route in zip([t.name for t in catalog.tools], routes, strict=True):
        assert catalog.exposed_tool_name(route.server, route.name) == exposed
        assert catalog.tool(exposed).name == exposed
    for mapping in catalog.mappings:
        route_of = catalog.route_tool if mapping.kind == "tool" else catalog.route_prompt
        assert route_of(mapping.exposed) == Route(mapping.server, mapping.original)


@PROPERTY
@given(scenarios())
def test_every_prompt_is_exposed_exactly_once_and_routes_back(scenario: Scenario) -> None:
    catalog = _build(scenario)
    offered = {(m.server, p.name) for m in scenario.manifests for p in m.prompts}

    routed = [catalog.route_prompt(p.name) for p in catalog.prompts]
    assert sorted((r.server, r.name) for r in routed) == sorted(offered)
