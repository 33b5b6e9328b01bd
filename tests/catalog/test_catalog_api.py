"""The public surface of ``orchestrator.catalog``."""

from __future__ import annotations

import dataclasses

import mcp_types as types
import pytest

import orchestrator.catalog as catalog_package
from orchestrator.catalog import EMPTY_CATALOG, ServerManifest, build_catalog, close_names
from orchestrator.errors import UnknownToolError


def test_public_names_are_exactly_the_documented_ones() -> None:
    assert len(set(catalog_package.__all__)) == len(catalog_package.__all__)
    assert set(catalog_package.__all__) == {
        "APP_MIME_TYPE",
        "CATALOGUE_FORMAT",
        "DEFINITION_KINDS",
        "EMPTY_CATALOG",
        "VERSION_LENGTH",
        "UI_EXTENSION",
        "VOLATILE_META_KEYS",
        "Catalog",
        "DefinitionChange",
        "ExposedCatalogue",
        "NameMapping",
        "NameNote",
        "Route",
        "ServerManifest",
        "build_catalog",
        "canonical_json",
        "catalogue_digest",
        "close_names",
        "diff_catalogues",
        "exposed_catalogue",
        "has_app",
        "is_app_only",
        "is_valid_name",
        "relinked_result",
        "visibility",
        "without_volatile_meta",
    }
    assert all(hasattr(catalog_package, name) for name in catalog_package.__all__)


def test_package_docstring_says_it_does_no_io() -> None:
    assert catalog_package.__doc__ is not None
    assert "no I/O" in catalog_package.__doc__.splitlines()[0]


def test_catalog_cannot_be_changed_after_build() -> None:
    catalog = build_catalog([ServerManifest("s", None)])

    with pytest.raises(dataclasses.FrozenInstanceError):
        catalog.tools = ()  # pyright: ignore[reportAttributeAccessIssue]  # assigning on purpose, to prove it fails
    assert EMPTY_CATALOG.tools == ()


def _tools(*names: str) -> tuple[types.Tool, ...]:
    return tuple(types.Tool(name=name, input_schema={"type": "object"}) for name in names)


def test_an_unknown_tool_name_suggests_the_closest_exposed_names_and_composites() -> None:
    catalog = build_catalog(
        [ServerManifest("tickets", "tickets", tools=_tools("search_tickets", "get_ticket", "add_comment"))],
        reserved=["incident_report"],
    )

    with pytest.raises(UnknownToolError) as typo:
        catalog.tool("tickets__serch")
    with pytest.raises(UnknownToolError) as composite:
        catalog.route_tool("incident_reprot")
    with pytest.raises(UnknownToolError) as nothing_close:
        catalog.tool("weather")

    assert str(typo.value) == "unknown tool 'tickets__serch'; did you mean 'tickets__search_tickets'?"
    assert typo.value.suggestions == ("tickets__search_tickets",)
    assert composite.value.suggestions == ("incident_report",)
    assert str(nothing_close.value) == "unknown tool 'weather'"


def test_close_names_offers_near_ties_best_first_and_at_most_three() -> None:
    assert close_names("db_query", ["db__query", "metrics__query_metrics"]) == ["db__query"]
    assert close_names("a__tool", ["a__tool1", "a__tool2", "a__tool3", "a__tool4"]) == [
        "a__tool1",
        "a__tool2",
        "a__tool3",
    ]
    assert close_names("x", []) == []
