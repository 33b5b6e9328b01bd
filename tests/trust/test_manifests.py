"""A server's last listing kept for a lazy start: handed back only for the connection settings it was listed with."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import mcp_types as types
import pytest

from orchestrator.catalog import ServerManifest
from orchestrator.config import HttpServerSpec, StateSpec, StdioServerSpec
from orchestrator.store import open_store, read_manifest, save_manifest, state_url
from orchestrator.trust import StoredManifests, connection_fingerprint

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from orchestrator.store import Store

pytestmark = pytest.mark.anyio

EAGER = StdioServerSpec.model_validate(
    {"command": "docs-server", "args": ["--root", "/srv"], "env": {"TOKEN": "s3cret"}}
)
LAZY = EAGER.model_copy(update={"start": "lazy"})

MANIFEST = ServerManifest(
    server="docs",
    prefix=None,
    tools=(
        types.Tool(
            name="search",
            description="Find documents.",
            input_schema={"type": "object", "properties": {"q": {"type": "string"}}},
            annotations=types.ToolAnnotations(read_only_hint=True),
        ),
    ),
    prompts=(types.Prompt(name="brief", description="A brief."),),
    resources=(types.Resource(uri="file:///readme", name="readme"),),
    resource_templates=(types.ResourceTemplate(uri_template="file:///{path}", name="files"),),
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(state_url(StateSpec(url=f"sqlite:///{tmp_path / 'state.db'}"), {})) as opened:
        yield opened


def _kept(store: Store, *, opened: bool = True) -> StoredManifests:
    async def open_once() -> Store:
        return store

    return StoredManifests(open_once, opened=(lambda: store) if opened else (lambda: None))


async def test_a_saved_listing_comes_back_whole_for_the_same_settings(store: Store) -> None:
    await _kept(store).save(MANIFEST, EAGER)

    # A fresh instance (the next serve) reads it back; the lazy switch is not a connection setting.
    assert await _kept(store).load("docs", LAZY) == MANIFEST


@pytest.mark.parametrize(
    "changed",
    [
        {"command": "other-server"},
        {"args": ("--root", "/elsewhere")},
        {"env": {"TOKEN": "s3cret", "EXTRA": "1"}},
        {"cwd": "/tmp"},
    ],
    ids=["command", "args", "env-names", "cwd"],
)
async def test_a_listing_made_with_other_connection_settings_is_not_handed_back(
    store: Store, changed: dict[str, object]
) -> None:
    await _kept(store).save(MANIFEST, EAGER)

    assert await _kept(store).load("docs", LAZY.model_copy(update=changed)) is None


async def test_secret_values_are_not_part_of_the_fingerprint(store: Store) -> None:
    rotated = LAZY.model_copy(update={"env": {"TOKEN": "an0ther"}})
    assert connection_fingerprint(rotated) == connection_fingerprint(LAZY)
    http = HttpServerSpec.model_validate({"url": "https://docs.example/mcp", "headers": {"Authorization": "Bearer a"}})
    assert connection_fingerprint(http) == connection_fingerprint(
        http.model_copy(update={"headers": {"authorization": "Bearer b"}})
    )
    assert connection_fingerprint(http) != connection_fingerprint(
        http.model_copy(update={"url": "https://other.example/mcp"})
    )
    await _kept(store).save(MANIFEST, EAGER)
    kept = await read_manifest(store.engine, "docs")
    assert kept is not None
    assert "s3cret" not in repr(kept)


async def test_an_unreadable_kept_listing_counts_as_none(store: Store) -> None:
    await save_manifest(
        store.engine, "docs", connection_fingerprint(LAZY), {"tools": [{"name": 3}]}, at=datetime.now(UTC)
    )

    assert await _kept(store).load("docs", LAZY) is None


async def test_an_eager_servers_listing_is_written_only_when_the_database_is_open_anyway(store: Store) -> None:
    await _kept(store, opened=False).save(MANIFEST, EAGER)
    assert await read_manifest(store.engine, "docs") is None

    await _kept(store, opened=False).save(MANIFEST, LAZY)  # a lazy server's is worth opening it for
    assert await read_manifest(store.engine, "docs") is not None


async def test_a_read_only_cache_writes_nothing(store: Store) -> None:
    async def open_once() -> Store:
        return store

    await StoredManifests(open_once, opened=lambda: store, writes=False).save(MANIFEST, LAZY)

    assert await read_manifest(store.engine, "docs") is None
