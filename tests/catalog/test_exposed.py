"""The exposed catalogue's version and the diff of two catalogues (pure, synchronous)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import mcp_types as types
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.catalog import (
    CATALOGUE_FORMAT,
    VERSION_LENGTH,
    ExposedCatalogue,
    ServerManifest,
    build_catalog,
    canonical_json,
    catalogue_digest,
    diff_catalogues,
    exposed_catalogue,
)


def _tool(name: str, description: str = "does a thing", **extra: object) -> types.Tool:
    return types.Tool.model_validate(
        {"name": name, "description": description, "inputSchema": {"type": "object"}, **extra}
    )


def _catalogue(*tools: types.Tool, composites: tuple[types.Tool, ...] = ()) -> ExposedCatalogue:
    return exposed_catalogue(build_catalog([ServerManifest("s", "s", tools=tools)]), composites)


def test_the_version_is_a_short_prefix_of_the_digest() -> None:
    catalogue = _catalogue(_tool("a"))
    assert len(catalogue.digest) == 64
    assert len(catalogue.version) == VERSION_LENGTH
    assert catalogue.digest.startswith(catalogue.version)


def test_the_version_does_not_depend_on_listing_order() -> None:
    assert _catalogue(_tool("a"), _tool("b")).digest == _catalogue(_tool("b"), _tool("a")).digest


@pytest.mark.parametrize(
    "changed",
    [
        _tool("a", "does another thing"),
        _tool("a", inputSchema={"type": "object", "properties": {"x": {"type": "string"}}}),
        _tool("a", annotations={"readOnlyHint": True}),
        _tool("a", _meta={"ui": "x"}),
    ],
    ids=["description", "schema", "annotations", "meta"],
)
def test_any_change_to_a_definition_changes_the_version(changed: types.Tool) -> None:
    assert _catalogue(_tool("a")).version != _catalogue(changed).version


def test_an_added_tool_or_composite_changes_the_version() -> None:
    base = _catalogue(_tool("a"))
    assert _catalogue(_tool("a"), _tool("b")).version != base.version
    assert _catalogue(_tool("a"), composites=(_tool("report"),)).version != base.version


def test_per_message_meta_such_as_trace_context_does_not_change_the_version() -> None:
    traced = _tool("a", _meta={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"})
    assert _catalogue(traced).digest == _catalogue(_tool("a")).digest


def test_integers_beyond_exact_doubles_are_hashed_rather_than_refused() -> None:
    huge = _tool("a", inputSchema={"type": "object", "properties": {"n": {"type": "integer", "maximum": 2**64 - 1}}})
    assert len(_catalogue(huge).digest) == 64


def _document_digest(catalogue: ExposedCatalogue) -> str:
    """The digest as defined: SHA-256 of the canonical JSON of the whole ``{kind: [definition, ...]}`` object."""
    document = {kind: list(items) for kind, items in catalogue.definitions.items()}
    return hashlib.sha256(canonical_json(document)).hexdigest()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(st.text(min_size=1, max_size=6), min_size=0, max_size=5),
    descriptions=st.lists(st.text(max_size=12), min_size=5, max_size=5),
    schema=st.dictionaries(st.text(max_size=5), _JSON, max_size=3),
    meta=st.dictionaries(st.sampled_from(["ui", "traceparent", "é", "z"]), _JSON, max_size=2),
)
def test_the_digest_made_one_definition_at_a_time_is_the_whole_documents(
    names: list[str], descriptions: list[str], schema: dict[str, Any], meta: dict[str, Any]
) -> None:
    tools = tuple(
        _tool(name, descriptions[i % 5], inputSchema={"type": "object", **schema}, _meta=meta)
        for i, name in enumerate(names)
    )
    manifest = ServerManifest(
        "s",
        "s",
        tools=tools,
        prompts=tuple(types.Prompt(name=name, description=descriptions[1]) for name in names[:2]),
        resources=tuple(types.Resource(name=name, uri=f"file:///{name}") for name in names[:3]),
        resource_templates=(types.ResourceTemplate(name="t", uri_template="file:///{x}", _meta=meta or None),),
    )
    catalog = build_catalog([manifest])
    composites = (_tool("report", descriptions[2], _meta=meta),)
    catalogue = exposed_catalogue(catalog, composites)
    assert catalogue_digest(catalog, composites) == catalogue.digest == _document_digest(catalogue)


def test_a_saved_document_reads_back_to_the_same_digest() -> None:
    catalogue = _catalogue(_tool("a"), _tool("b"))
    document = json.loads(json.dumps(catalogue.document()))
    assert document["format"] == CATALOGUE_FORMAT
    assert document["version"] == catalogue.version
    assert ExposedCatalogue.from_document(document).digest == catalogue.digest


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "expected a JSON object"),
        ({"tools": []}, "'format' is None"),
        ({"format": CATALOGUE_FORMAT, "tools": {}}, "'tools' is not a list"),
        (
            {"format": CATALOGUE_FORMAT, "tools": [{"description": "x"}]},
            r"tools\[0\] is not an object with a string 'name'",
        ),
    ],
)
def test_a_document_that_is_not_a_saved_catalogue_is_refused_saying_why(document: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExposedCatalogue.from_document(document)


def test_the_diff_names_added_removed_and_changed_definitions_with_their_fields() -> None:
    before = _catalogue(_tool("a"), _tool("b"), _tool("c"))
    after = _catalogue(_tool("a"), _tool("b", "now different", annotations={"readOnlyHint": True}), _tool("d"))
    changes = diff_catalogues(before, after)
    assert [(c.kind, c.key, c.change, c.fields) for c in changes] == [
        ("tools", "s__b", "changed", ("annotations", "description")),
        ("tools", "s__c", "removed", ()),
        ("tools", "s__d", "added", ()),
    ]
    assert diff_catalogues(before, before) == []
