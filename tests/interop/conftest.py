"""Fixtures of the interop tests. Expensive peers (aggregators, fixture servers) live per module."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from mcp import Client

from tests.e2e.harness import http_aggregator, write_config
from tests.interop._peers import COMPOSITE, DATA, EVERYTHING, MEMORY, require

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module scope, so module-scoped async fixtures can hold a server for several tests."""
    return "asyncio"


@pytest.fixture(scope="module")
def client_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two npm reference servers (they start fast) and a composite tool chaining them."""
    require(EVERYTHING, MEMORY)
    work = tmp_path_factory.mktemp("catalogue")
    servers = {
        "everything": {"command": str(EVERYTHING), "args": ["stdio"]},
        "memory": {"command": str(MEMORY), "env": {"MEMORY_FILE_PATH": str(work / "memory.jsonl")}},
    }
    return write_config(work, servers, workflows=[str(DATA / "inspector")])


@pytest.fixture(scope="module")
async def http_url(client_config: Path) -> AsyncGenerator[str, None]:
    """``orchestrator serve --transport http`` on ``client_config``, for the module."""
    async with http_aggregator(client_config) as url:
        yield url


@pytest.fixture(scope="module")
async def expected_tools(http_url: str) -> set[str]:
    """What the Python SDK client lists from the same catalogue: the reference for other clients."""
    async with Client(http_url) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert {"everything__echo", "everything__get-sum", "memory__create_entities", COMPOSITE} <= names
    return names
