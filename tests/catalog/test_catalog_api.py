"""The public surface of ``orchestrator.catalog``."""

from __future__ import annotations

import dataclasses

import pytest

import orchestrator.catalog as catalog_package
from orchestrator.catalog import EMPTY_CATALOG, ServerManifest, build_catalog


def test_public_names_are_exactly_the_documented_ones() -> None:
    assert len(set(catalog_package.__all__)) == len(catalog_package.__all__)
    assert set(catalog_package.__all__) == {
        "EMPTY_CATALOG",
        "Catalog",
        "NameMapping",
        "NameNote",
        "Route",
        "ServerManifest",
        "build_catalog",
        "is_valid_name",
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
