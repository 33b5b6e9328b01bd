"""List results from their cached wire form are what the SDK's own pipeline would send."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest
from mcp_types.methods import serialize_server_result

from orchestrator.server._wire_lists import WireLists

VERSIONS = ["2025-11-25", "2026-07-28"]
STAMP = {"name": "mcp-orchestrator", "version": "1"}
META = {"io.github.mcp-orchestrator/catalogue-version": "abc"}


def served() -> tuple[types.Tool, ...]:
    return (
        types.Tool(name="a", input_schema={"type": "object"}, _meta={"ui": {"resourceUri": "ui://x"}}),
        types.Tool(
            name="b",
            title="B",
            description="with task support",
            input_schema={"type": "object", "properties": {"n": {"type": "integer"}}},
            output_schema={"type": "object"},
            annotations=types.ToolAnnotations(read_only_hint=True),
            execution=types.ToolExecution(task_support="optional"),
        ),
    )


def sdk_result(version: str, tools: list[types.Tool]) -> dict[str, Any]:
    """What the SDK's pipeline sends for a handler's ``ListToolsResult``."""
    dumped = types.ListToolsResult(tools=tools, _meta=META).model_dump(by_alias=True, mode="json", exclude_none=True)
    result = serialize_server_result("tools/list", version, dumped)
    if version == "2026-07-28":
        result["_meta"] = {**result["_meta"], types.SERVER_INFO_META_KEY: STAMP}
    return result


@pytest.mark.parametrize("version", VERSIONS)
def test_the_wire_result_is_the_sdk_s_for_every_view_of_the_served_tools(version: str) -> None:
    tools = served()
    extra = types.Tool(name="search_tools", input_schema={"type": "object"})  # made per request
    lists = WireLists()
    for listed in ([*tools], [tools[1]], [], [*tools, extra]):
        envelope = types.ListToolsResult(tools=[], _meta=META)
        made = lists.result(
            "tools/list", "tools", version, served=tools, listed=listed, envelope=envelope, server_info=STAMP
        )
        assert made == sdk_result(version, listed)


def test_wire_forms_are_made_once_per_served_tuple_and_version() -> None:
    tools = served()
    lists = WireLists()

    def wires(version: str, source: tuple[types.Tool, ...]) -> list[dict[str, Any]]:
        envelope = types.ListToolsResult(tools=[], _meta=META)
        kwargs: dict[str, Any] = {"served": source, "listed": list(source), "envelope": envelope, "server_info": STAMP}
        return lists.result("tools/list", "tools", version, **kwargs)["tools"]

    first = wires("2026-07-28", tools)
    assert all(a is b for a, b in zip(first, wires("2026-07-28", tools), strict=True))  # the same dicts
    assert "execution" not in first[1]  # each version's own shape
    assert wires("2025-11-25", tools)[1]["execution"] == {"taskSupport": "optional"}
    changed = (*tools[:1], tools[1].model_copy(update={"description": "changed"}))
    assert wires("2026-07-28", changed)[1]["description"] == "changed"  # a new tuple: made again


@pytest.mark.parametrize("version", VERSIONS)
def test_prompts_resources_and_templates_come_out_as_the_sdk_s_too(version: str) -> None:
    lists = WireLists()
    cases: list[tuple[str, str, Any, tuple[Any, ...]]] = [
        (
            "prompts/list",
            "prompts",
            types.ListPromptsResult(prompts=[], _meta=META),
            (types.Prompt(name="p", arguments=[types.PromptArgument(name="x", required=True)]),),
        ),
        (
            "resources/list",
            "resources",
            types.ListResourcesResult(resources=[], _meta=META),
            (types.Resource(uri="ui://a/v.html", name="v", mime_type="text/html", _meta={"ui": {"csp": {}}}),),
        ),
        (
            "resources/templates/list",
            "resourceTemplates",
            types.ListResourceTemplatesResult(resource_templates=[], _meta=META),
            (types.ResourceTemplate(uri_template="file:///{path}", name="f"),),
        ),
    ]
    for method, field, envelope, items in cases:
        made = lists.result(
            method, field, version, served=items, listed=list(items), envelope=envelope, server_info=STAMP
        )
        expected = serialize_server_result(
            method,
            version,
            envelope.model_copy(update={field_name(envelope): list(items)}).model_dump(
                by_alias=True, mode="json", exclude_none=True
            ),
        )
        if version == "2026-07-28":
            expected["_meta"] = {**expected["_meta"], types.SERVER_INFO_META_KEY: STAMP}
        assert made == expected, method


def field_name(envelope: Any) -> str:
    """The Python name of a list result's one list field."""
    return next(name for name in ("prompts", "resources", "resource_templates") if hasattr(envelope, name))
