"""What a transparent proxy must forward besides tools, pinned down one by one.

Completion, logging/setLevel, resource subscriptions, requests made before the servers have
started, and results that must name the aggregator rather than the downstream: with the
Python SDK client (handshake era, like the conformance suite) against ``orchestrator serve``
over stdio fronting the conformance fixture (``prefix: false``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import mcp_types as types
import pytest
from mcp import Client, MCPError

from tests.e2e.harness import REPO_ROOT, aggregator_params, write_config

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    fixture = {
        "command": sys.executable,
        "args": ["-m", "tests.interop.conformance_server"],
        "cwd": str(REPO_ROOT),
        "prefix": False,
    }
    return write_config(tmp_path_factory.mktemp("gaps"), {"conformance": fixture})


async def test_capabilities_include_what_the_downstream_offers(config: Path) -> None:
    async with Client(aggregator_params(config), mode="legacy") as client:
        caps = client.server_capabilities
    assert caps.completions is not None
    assert caps.logging is not None
    assert caps.resources is not None
    assert caps.resources.subscribe


async def test_completion_is_answered_by_the_server_that_owns_the_prompt(config: Path) -> None:
    async with Client(aggregator_params(config), mode="legacy") as client:
        prompt = types.PromptReference(name="test_prompt_with_arguments")
        completed = await client.complete(prompt, {"name": "arg1", "value": "par"})
        assert completed.completion.values == ["paris", "park", "party"]
        template = types.ResourceTemplateReference(uri="test://template/{id}/data")
        assert (await client.complete(template, {"name": "id", "value": "1"})).completion.values == []
        with pytest.raises(MCPError) as unknown:
            await client.complete(types.PromptReference(name="no_such_prompt"), {"name": "x", "value": ""})
        assert unknown.value.code == types.INVALID_PARAMS


async def test_logging_set_level_is_accepted_and_filters_forwarded_logs(config: Path) -> None:
    received: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        received.append(params)

    async with Client(aggregator_params(config), mode="legacy", logging_callback=on_log) as client:
        await client.set_logging_level("warning")  # pyright: ignore[reportDeprecated]
        assert not (await client.call_tool("test_tool_with_logging", {})).is_error
        assert received == []  # three info messages, all below the level asked for
        await client.set_logging_level("debug")  # pyright: ignore[reportDeprecated]
        assert not (await client.call_tool("test_tool_with_logging", {})).is_error
    assert [p.data for p in received] == ["Tool execution started", "Tool processing data", "Tool execution completed"]


async def test_resource_subscriptions_are_accepted_for_known_uris(config: Path) -> None:
    async with Client(aggregator_params(config), mode="legacy") as client:
        await client.subscribe_resource("test://watched-resource")  # pyright: ignore[reportDeprecated]
        await client.unsubscribe_resource("test://watched-resource")  # pyright: ignore[reportDeprecated]
        with pytest.raises(MCPError) as unknown:
            await client.subscribe_resource("test://no-such-resource")  # pyright: ignore[reportDeprecated]
        assert unknown.value.code in (types.INVALID_PARAMS, -32002)


async def test_a_first_request_other_than_tools_waits_for_the_servers_to_start(config: Path) -> None:
    """A client may get a prompt or read a resource as its very first request (the Inspector CLI does)."""
    async with Client(aggregator_params(config), mode="legacy") as client:
        prompt = await client.get_prompt("test_simple_prompt")
        assert prompt.messages[0].content == types.TextContent(text="This is a simple prompt for testing.")
    async with Client(aggregator_params(config), mode="legacy") as client:
        read = await client.read_resource("test://static-text")
        assert read.contents[0].uri == "test://static-text"
    async with Client(aggregator_params(config), mode="legacy") as client:
        templates = (await client.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["test://template/{id}/data"]


async def test_results_do_not_carry_the_downstream_servers_identity(config: Path) -> None:
    """The aggregator is the server the client talks to; a 2026-07-28 downstream's stamp must not leak."""
    for mode in ("legacy", "auto"):
        async with Client(aggregator_params(config), mode=mode) as client:
            result = await client.call_tool("test_simple_text", {})
        stamp = (result.meta or {}).get(types.SERVER_INFO_META_KEY)
        assert stamp is None or stamp["name"] == "mcp-orchestrator", (mode, stamp)
