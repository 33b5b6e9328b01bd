"""Apps through the aggregator: MCP Apps and OpenAI Apps SDK widgets survive aggregation.

Two copies of ``tests/fakes/app_server.py`` (``alpha`` and ``beta``) both serve
``ui://widget/view.html``; behind ``orchestrator serve`` (over stdio and over HTTP, to clients of
both protocol eras, from downstreams of both eras) each tool's links lead to its own server's
widget, app-only tools reach hosts that render apps and nobody else, and results reach the
client as the server sent them apart from the documented rewrites.
"""

from __future__ import annotations

import json
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import mcp_types as types
import pytest
import yaml
from mcp import Client, MCPError
from mcp.client.extension import advertise

from orchestrator.catalog import APP_MIME_TYPE, UI_EXTENSION
from orchestrator.server import TRACE_META_KEY
from tests.e2e.harness import REPO_ROOT, aggregator_params, http_aggregator, write_config
from tests.fakes.app_server import RESOURCE_META, html, result_meta, tool_meta

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

pytestmark = pytest.mark.anyio

HOST = [advertise(UI_EXTENSION, {"mimeTypes": [APP_MIME_TYPE]})]
"""What a client that renders apps (a host: ChatGPT, Claude) declares."""

TRANSPORTS = ["stdio", "http"]
ERAS = ["auto", "legacy"]  # the client's mode: 2026-07-28 when offered, or the 2025-11-25 handshake


def app_entry(label: str, *options: str, **extra: Any) -> dict[str, Any]:
    """A config entry that starts the app fixture as ``label``."""
    args = ["-m", "tests.fakes.app_server", "--label", label, *options]
    return {"command": sys.executable, "args": args, "cwd": str(REPO_ROOT), **extra}


def two_apps(tmp_path: Path, *options: str) -> Path:
    return write_config(tmp_path, {"alpha": app_entry("alpha", *options), "beta": app_entry("beta", *options)})


@asynccontextmanager
async def connected(config: Path, transport: str, mode: str, *, host: bool) -> AsyncGenerator[Client, None]:
    """A client of ``orchestrator serve`` on ``config``: a host that renders apps, or not."""
    options: dict[str, Any] = {"mode": mode, "extensions": HOST if host else None}
    if transport == "stdio":
        async with Client(aggregator_params(config), **options) as client:
            yield client
    else:
        async with http_aggregator(config) as url, Client(url, **options) as client:
            yield client


OURS = {TRACE_META_KEY, types.SERVER_INFO_META_KEY}
"""The keys the aggregator puts in a result's ``_meta``: the call's trace, and (2026-07-28) who answered."""


def without_ours(meta: dict[str, Any] | None) -> dict[str, Any]:
    """A result's ``_meta`` without the aggregator's own keys."""
    return {key: value for key, value in (meta or {}).items() if key not in OURS}


def wire(model: types.Result | types.Tool | types.Resource) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


@pytest.mark.parametrize("mode", ERAS)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_two_servers_with_the_same_widget_uri_each_render_their_own(
    tmp_path: Path, transport: str, mode: str
) -> None:
    async with connected(two_apps(tmp_path), transport, mode, host=True) as client:
        assert UI_EXTENSION in (client.server_capabilities.extensions or {})
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        resources = {resource.uri: resource for resource in (await client.list_resources()).resources}
        assert set(resources) == {"ui://alpha/widget/view.html", "ui://beta/widget/view.html"}
        for label in ("alpha", "beta"):
            exposed = f"ui://{label}/widget/view.html"
            # Every link follows the rename; every other key is the server's, untouched.
            links = {"ui": {"resourceUri": exposed}, "ui/resourceUri": exposed, "openai/outputTemplate": exposed}
            assert tools[f"{label}__show_view"].meta == {**tool_meta(label), **links}
            assert tools[f"{label}__refresh_view"].meta == {"ui": {"resourceUri": exposed, "visibility": ["app"]}}
            assert resources[exposed].meta == RESOURCE_META
            assert resources[exposed].mime_type == APP_MIME_TYPE

            # What a host does to render the widget: read the tool's resourceUri.
            link: str = (tools[f"{label}__show_view"].meta or {})["ui"]["resourceUri"]
            widget = await client.read_resource(link)
            (content,) = widget.contents
            assert isinstance(content, types.TextResourceContents)
            assert content.text == html(label)
            assert (content.uri, content.mime_type, content.meta) == (exposed, APP_MIME_TYPE, RESOURCE_META)

            # The model's call: structured content and widget-only _meta as the server sent them.
            result = await client.call_tool(f"{label}__show_view", {"city": "Oslo"})
            assert not result.is_error, wire(result)
            assert result.structured_content == {"label": label, "city": "Oslo"}
            sent = {**result_meta(label, "Oslo"), "openai/outputTemplate": exposed}  # the rewrite, in place
            # The same JSON text: keys in the server's order, 1 still an integer, no key added.
            assert json.dumps(without_ours(result.meta), ensure_ascii=False) == json.dumps(sent, ensure_ascii=False)
            linked = result.content[1]
            assert isinstance(linked, types.ResourceLink)
            assert (linked.uri, linked.mime_type) == (exposed, APP_MIME_TYPE)

            # The widget's own call, as the host makes it: an app-only tool, by its listed name.
            refreshed = await client.call_tool(f"{label}__refresh_view", {})
            assert refreshed.structured_content == {"label": label, "refreshed": True}


@pytest.mark.parametrize("mode", ERAS)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_app_only_tools_do_not_exist_for_a_client_that_renders_no_apps(
    tmp_path: Path, transport: str, mode: str
) -> None:
    async with connected(two_apps(tmp_path), transport, mode, host=False) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == {
            f"{label}__{tool}" for label in ("alpha", "beta") for tool in ("show_view", "client_extensions")
        }
        with pytest.raises(MCPError, match="unknown tool 'alpha__refresh_view'"):
            await client.call_tool("alpha__refresh_view", {})
        # Tools with apps stay: a client that renders none just ignores their _meta.
        shown = await client.call_tool("beta__show_view", {"city": "Lima"})
        assert shown.structured_content == {"label": "beta", "city": "Lima"}


@pytest.mark.parametrize("downstream", ["2026-07-28", "2025-11-25"])
async def test_the_aggregator_declares_apps_to_every_downstream(tmp_path: Path, downstream: str) -> None:
    options = ("--legacy-only",) if downstream == "2025-11-25" else ()
    config = write_config(tmp_path, {"alpha": app_entry("alpha", *options)})
    for host in (True, False):  # one connection serves every client: it declares what apps need
        async with connected(config, "stdio", "auto", host=host) as client:
            declared = await client.call_tool("alpha__client_extensions", {})
            assert declared.structured_content == {"extensions": {UI_EXTENSION: {"mimeTypes": [APP_MIME_TYPE]}}}


@pytest.mark.parametrize("mode", ERAS)
async def test_the_apps_extension_is_declared_upstream_when_a_downstream_offers_apps(tmp_path: Path, mode: str) -> None:
    offers = {
        "a tool with an app": app_entry("alpha"),
        "the extension declared": app_entry("alpha", "--declare-only"),
        "nothing": app_entry("alpha", "--declare-only") | {"args": ["-m", "tests.fakes.whoami_server"]},
    }
    for offer, server in offers.items():
        config = write_config(tmp_path, {"alpha": server})
        async with http_aggregator(config) as url:
            async with Client(url) as first:
                await first.list_tools()  # every server has started: what they offer is known
            async with Client(url, mode=mode) as client:
                declared = UI_EXTENSION in (client.server_capabilities.extensions or {})
        assert declared is (offer != "nothing"), offer


async def test_an_app_may_call_its_tool_by_its_server_s_own_name_while_only_one_has_it(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"alpha": app_entry("alpha")})
    async with connected(config, "stdio", "auto", host=True) as host:
        # An app's code calls the name its server gave the tool, not the prefixed one.
        refreshed = await host.call_tool("refresh_view", {})
        assert refreshed.structured_content == {"label": "alpha", "refreshed": True}
    async with connected(config, "stdio", "auto", host=False) as model:
        with pytest.raises(MCPError, match="unknown tool 'refresh_view'"):
            await model.call_tool("refresh_view", {})
    async with connected(two_apps(tmp_path), "stdio", "auto", host=True) as host:
        with pytest.raises(MCPError, match="'alpha__refresh_view' or 'beta__refresh_view'"):
            await host.call_tool("refresh_view", {})


async def test_search_mode_keeps_apps_for_hosts_and_never_offers_app_only_tools_to_the_model(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path,
        {"alpha": app_entry("alpha"), "beta": app_entry("beta")},
        catalog={"mode": "search"},
    )
    async with connected(config, "stdio", "auto", host=True) as host:
        listed = {tool.name for tool in (await host.list_tools()).tools}
        # A host renders a widget only for a listed tool, and keeps app-only ones from its model.
        assert listed == {"search_tools", "call_tool"} | {
            f"{label}__{tool}" for label in ("alpha", "beta") for tool in ("show_view", "refresh_view")
        }
        found = await host.call_tool("search_tools", {"query": "refresh the view", "limit": 10})
        assert found.structured_content is not None
        assert all("refresh_view" not in tool["name"] for tool in found.structured_content["tools"])
        refused = await host.call_tool("call_tool", {"name": "alpha__refresh_view", "arguments": {}})
        assert refused.is_error
    async with connected(config, "stdio", "auto", host=False) as model:
        assert {tool.name for tool in (await model.list_tools()).tools} == {"search_tools", "call_tool"}


async def test_a_workflow_or_plan_step_may_not_call_an_app_only_tool(tmp_path: Path) -> None:
    steps = {"refresh": {"tool": "alpha.refresh_view"}}
    folder = tmp_path / "workflows"
    folder.mkdir()
    document = {"version": 1, "name": "refresh_all", "description": "Refresh the view.", "steps": steps}
    (folder / "refresh_all.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    config = write_config(tmp_path, {"alpha": app_entry("alpha")}, workflows=[str(folder)], catalog={"plans": True})
    async with connected(config, "stdio", "auto", host=True) as host:
        names = {tool.name for tool in (await host.list_tools()).tools}
        assert "alpha__refresh_view" in names
        assert "refresh_all" not in names  # withdrawn: a composite is called by a model
        refused = await host.call_tool("run_plan", {"plan": {"steps": steps}})
        assert refused.is_error
        text = "".join(block.text for block in refused.content if isinstance(block, types.TextContent))
        assert "steps.refresh.tool: alpha.refresh_view is for apps only" in text
