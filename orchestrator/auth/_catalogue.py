"""What the consent page offers: the served catalogue, grouped by server, and the composites."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.auth._consent_types import ConsentGroup, ConsentTool

if TYPE_CHECKING:
    from collections.abc import Mapping

    import mcp_types as types

    from orchestrator.catalog import Catalog
    from orchestrator.workflow import WorkflowPlan

__all__ = ["consent_groups"]


def _consent_tool(tool: types.Tool) -> ConsentTool:
    annotations = tool.annotations
    read_only = bool(annotations and annotations.read_only_hint)
    # MCP's default for destructiveHint is true; only a tool that says otherwise (or is
    # read-only) is shown as harmless.
    destructive = not read_only and (annotations is None or annotations.destructive_hint is not False)
    description = (tool.description or "").strip().splitlines()
    return ConsentTool(
        name=tool.name,
        title=(annotations.title if annotations else None) or tool.title,
        description=description[0] if description else "",
        read_only=read_only,
        destructive=destructive,
    )


def consent_groups(catalog: Catalog, composites: Mapping[str, WorkflowPlan]) -> list[ConsentGroup]:
    """One group per downstream server (in name order) with its exposed tools, then the composites."""
    by_server: dict[str, list[ConsentTool]] = {server: [] for server in sorted(catalog.servers)}
    for tool in catalog.tools:
        by_server.setdefault(catalog.route_tool(tool.name).server, []).append(_consent_tool(tool))
    groups = [
        ConsentGroup(kind="server", key=server, title=server, tools=tuple(tools)) for server, tools in by_server.items()
    ]
    if composites:
        tools = tuple(_consent_tool(composites[name].as_tool()) for name in sorted(composites))
        groups.append(ConsentGroup(kind="composites", key="composites", title="Composite tools", tools=tools))
    return groups
