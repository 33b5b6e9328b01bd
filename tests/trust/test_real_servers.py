"""Real third-party servers fingerprint the same on every start: a restart is never a rug pull.

``@modelcontextprotocol/server-everything`` (npm; tools, prompts and resource templates, with
annotations, icons and output schemas) and ``mcp-server-time`` (PyPI) are each started twice
as separate processes; their listings fingerprint alike, definition by definition.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import anyio
import pytest
from mcp import Client, StdioServerParameters

from orchestrator.config import StdioServerSpec
from orchestrator.trust import ServerFingerprint, diff, fingerprint_server, server_identity
from tests.interop._peers import EVERYTHING, require, require_module

if TYPE_CHECKING:
    from mcp import types as mcp_types

pytestmark = pytest.mark.anyio

LIST_TIMEOUT = 60


async def _listing(spec: StdioServerSpec) -> ServerFingerprint:
    tools: list[mcp_types.Tool] = []
    prompts: list[mcp_types.Prompt] = []
    templates: list[mcp_types.ResourceTemplate] = []
    params = StdioServerParameters(command=spec.command, args=list(spec.args))
    with anyio.fail_after(LIST_TIMEOUT):
        async with Client(params) as client:
            cursor: str | None = None
            while True:
                page = await client.list_tools(cursor=cursor, cache_mode="bypass")
                tools.extend(page.tools)
                if (cursor := page.next_cursor) is None:
                    break
            if client.server_capabilities.prompts is not None:
                while True:
                    prompt_page = await client.list_prompts(cursor=cursor)
                    prompts.extend(prompt_page.prompts)
                    if (cursor := prompt_page.next_cursor) is None:
                        break
            if client.server_capabilities.resources is not None:
                while True:
                    template_page = await client.list_resource_templates(cursor=cursor)
                    templates.extend(template_page.resource_templates)
                    if (cursor := template_page.next_cursor) is None:
                        break
    return fingerprint_server(server_identity(spec), tools=tools, prompts=prompts, templates=templates)


@pytest.mark.parametrize(
    "server",
    [
        pytest.param("everything", marks=pytest.mark.npm),
        pytest.param("time"),
    ],
)
async def test_a_restarted_server_fingerprints_the_same(server: str) -> None:
    if server == "everything":
        require(EVERYTHING)
        spec = StdioServerSpec(command=str(EVERYTHING), args=("stdio",))
    else:
        require_module("mcp_server_time", "mcp-server-time")
        spec = StdioServerSpec(command=sys.executable, args=("-m", "mcp_server_time", "--local-timezone=UTC"))
    first = await _listing(spec)
    second = await _listing(spec)
    assert first.definitions, "the server listed nothing"
    assert not diff(first, second), diff(first, second).describe()
    assert first == second
    if server == "everything":
        kinds = {kind for kind, _name in first.names}
        assert kinds == {"tool", "prompt", "resource_template"}
