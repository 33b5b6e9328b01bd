"""The catalogue version served by the aggregator, end to end over stdio and streamable HTTP."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import yaml
from mcp import Client

from tests.e2e.harness import aggregator_params, fault_entry, http_aggregator, write_config

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

    import mcp_types as types

pytestmark = pytest.mark.anyio

VERSION_KEY = "io.github.mcp-orchestrator/catalogue-version"
RUN_META_KEY = "io.github.mcp-orchestrator/run"
VERSION = re.compile(r"^[0-9a-f]{16}$")


def _config(tmp_path: Path) -> Path:
    folder = tmp_path / "workflows"
    folder.mkdir()
    workflow = {
        "version": 1,
        "name": "echo_once",
        "description": "Echo a text once.",
        "steps": {"one": {"tool": "f.echo", "with": {"text": "hi"}}},
    }
    (folder / "echo_once.yaml").write_text(yaml.safe_dump(workflow, sort_keys=False), encoding="utf-8")
    # trust: auto pins the tool add_tool adds on sight; under the default it would wait for approval.
    return write_config(tmp_path, {"f": fault_entry(trust="auto")}, workflows=[str(folder)])


@asynccontextmanager
async def _serving(transport: str, config: Path) -> AsyncGenerator[Any, None]:
    """What ``Client`` connects to: the aggregator over ``transport``."""
    if transport == "stdio":
        yield aggregator_params(config)
        return
    async with http_aggregator(config) as url:
        yield url


def _version_of(result: types.ListToolsResult | types.ListPromptsResult) -> str:
    version = (result.meta or {}).get(VERSION_KEY)
    assert isinstance(version, str), result.meta
    assert VERSION.match(version), version
    return version


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_the_version_is_served_unchanged_until_a_server_changes_its_tools(tmp_path: Path, transport: str) -> None:
    config = _config(tmp_path)
    async with _serving(transport, config) as target, Client(target) as client:
        first = await client.list_tools()
        version = _version_of(first)
        assert "echo_once" in {tool.name for tool in first.tools}
        assert _version_of(await client.list_tools(cache_mode="refresh")) == version
        assert _version_of(await client.list_prompts()) == version  # one version for every list

        if transport == "http":
            # A client connecting now, all servers started, is told the same version when it connects.
            async with Client(target) as late:
                assert late.instructions is not None
                assert f"Catalogue version {version} when you connected" in late.instructions

        # A composite's run says which catalogue it ran against.
        run = await client.call_tool("echo_once", {})
        assert not run.is_error
        assert (run.meta or {})[RUN_META_KEY]["catalogue_version"] == version

        changed = first
        async with client.listen(tools_list_changed=True) as subscription:
            assert not (await client.call_tool("f__add_tool", {"name": "fresh"})).is_error
            with anyio.fail_after(20):
                async for _event in subscription:
                    changed = await client.list_tools(cache_mode="refresh")
                    if "f__fresh" in {tool.name for tool in changed.tools}:
                        break
        new_version = _version_of(changed)
        assert new_version != version
        assert _version_of(await client.list_tools(cache_mode="refresh")) == new_version


async def test_a_handshake_era_client_reads_the_version_in_its_instructions(tmp_path: Path) -> None:
    config = _config(tmp_path)
    async with Client(aggregator_params(config), mode="legacy") as client:
        version = _version_of(await client.list_tools())
        async with Client(aggregator_params(config), mode="legacy") as other:
            # Another aggregator process on the same servers and files: the same definitions, the same version.
            assert _version_of(await other.list_tools()) == version
        # A stdio client connects while the servers start: the instructions say where the version is.
        assert client.instructions is not None
        assert VERSION_KEY in client.instructions
