"""Search mode: a few meta-tools listed instead of the whole catalogue, so it does not flood the model.

With ``catalog.mode: search`` (or ``auto`` over its token budget) ``tools/list`` holds
``search_tools`` and ``call_tool`` (and the tools ``catalog.always`` names) instead of every
tool. ``search_tools`` ranks the tools a principal may use (``orchestrator.search``) and
returns the best ones with their whole definitions; ``call_tool`` calls one by name, through
everything a plain call passes (grants, pins, validation, rate limits, audit). A tool found by
search can also be called directly by its name: search mode changes the list, not the routes.

Does not: decide who may use what (the server's policy does, through ``allowed``), or rank
(``orchestrator.search``).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import anyio
import mcp_types as types

from orchestrator import search
from orchestrator.errors import InvalidArgumentsError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from orchestrator.catalog import Catalog
    from orchestrator.config import CatalogSpec
    from orchestrator.search import IndexedTool, ToolIndex

__all__ = [
    "CALL_TOOL",
    "META_TOOL_NAMES",
    "SEARCH_INSTRUCTIONS",
    "SEARCH_TOOLS",
    "CatalogueSize",
    "SearchMode",
    "ToolCallRequest",
    "call_tool_request",
    "meta_tool_names",
]

logger = logging.getLogger(__name__)

SEARCH_TOOLS: Final = "search_tools"
CALL_TOOL: Final = "call_tool"
META_TOOL_NAMES: Final = frozenset({SEARCH_TOOLS, CALL_TOOL})
"""The names search mode serves; reserved, so no downstream tool takes them while it may be on."""

_MAX_LIMIT: Final = 50

SEARCH_INSTRUCTIONS: Final = (
    "Only a few of this server's tools are listed; the rest are found by search. To do something, "
    "call search_tools with what you want to do in plain words (e.g. 'create a folder', 'unstage "
    "files'); it returns the best matching tools with their input schemas. Then call one with "
    "call_tool(name, arguments), or by its name directly if your client allows it. Search again with "
    "other words if nothing fits."
)


def _search_tools_tool(default_limit: int) -> types.Tool:
    return types.Tool(
        name=SEARCH_TOOLS,
        title="Search tools",
        description=(
            "Find tools by what you want to do. Returns the best matches with their names, "
            "descriptions and input schemas; call one with call_tool."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What you want to do, in plain words."},
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": _MAX_LIMIT,
                    "description": f"How many tools to return (default {default_limit}).",
                },
            },
            "required": ["query"],
        },
        annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )


def _call_tool_tool() -> types.Tool:
    return types.Tool(
        name=CALL_TOOL,
        title="Call a tool",
        description="Call a tool that search_tools found, by its exact name, with arguments that fit its input schema.",
        input_schema={
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "The tool's name, as search_tools returned it."},
                "arguments": {"type": "object", "description": "The tool's arguments."},
            },
            "required": ["name"],
        },
    )


def meta_tool_names(spec: CatalogSpec) -> frozenset[str]:
    """The meta-tool names ``spec`` may serve, which downstream tools may not take (none in ``full`` mode)."""
    return frozenset() if spec.mode == "full" else META_TOOL_NAMES


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """What a ``call_tool`` call asks for: a tool by name and its arguments."""

    name: str
    arguments: dict[str, Any]


def call_tool_request(arguments: Mapping[str, Any]) -> ToolCallRequest:
    """The tool call ``call_tool``'s ``arguments`` (already valid for its schema) ask for.

    Raises:
        InvalidArgumentsError: It names a meta-tool (called directly, not through ``call_tool``).
    """
    name = cast("str", arguments["name"])
    if name in META_TOOL_NAMES:
        raise InvalidArgumentsError(CALL_TOOL, [f"name: {name} is called directly, not through call_tool"])
    return ToolCallRequest(name, cast("dict[str, Any]", arguments.get("arguments") or {}))


@dataclass(frozen=True, slots=True)
class CatalogueSize:
    """How big the full tool list is, and whether it is listed whole or searched."""

    tools: int
    tokens: int
    method: str
    mode: Literal["full", "search"]


def _words_of(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class SearchMode:
    """What ``tools/list`` shows under ``catalog:``, and the search over what it does not show."""

    def __init__(self, spec: Callable[[], CatalogSpec]) -> None:
        """Show the catalogue as ``spec()`` says: the ``catalog:`` section in force, read at each use."""
        self._spec_of = spec
        self._tokens: tuple[tuple[types.Tool, ...], int] | None = None
        self._mode: str | None = None
        self._index: tuple[tuple[types.Tool, ...], ToolIndex] | None = None
        self._building = anyio.Lock()

    @property
    def spec(self) -> CatalogSpec:
        """The ``catalog:`` section in force."""
        return self._spec_of()

    @property
    def reserved(self) -> frozenset[str]:
        """The meta-tool names this mode may serve (none in ``full`` mode)."""
        return meta_tool_names(self.spec)

    def size(self, tools: tuple[types.Tool, ...]) -> CatalogueSize:
        """How many tokens the full list of ``tools`` takes, and the mode that follows (``auto``: the budget).

        Counted once per change of the list (``tools`` is compared by identity).
        """
        cached = self._tokens
        if cached is not None and cached[0] is tools:
            tokens = cached[1]
        else:
            tokens = search.count_tokens(json.dumps([_wire(tool) for tool in tools], separators=(",", ":")))
            self._tokens = (tools, tokens)
        spec = self.spec
        mode: Literal["full", "search"] = "full" if spec.mode == "full" else "search"
        if spec.mode == "auto" and tokens <= spec.budget:
            mode = "full"
        if mode != self._mode:
            self._mode = mode
            logger.info(
                "tool list: %d tools, %d tokens (%s); %s mode", len(tools), tokens, search.TOKEN_COUNT_METHOD, mode
            )
        return CatalogueSize(len(tools), tokens, search.TOKEN_COUNT_METHOD, mode)

    def searching(self, tools: tuple[types.Tool, ...]) -> bool:
        """Whether ``tools`` are listed as meta-tools and search rather than whole."""
        mode = self.spec.mode
        return mode == "search" or (mode == "auto" and self.size(tools).mode == "search")

    def listed(
        self, tools: Sequence[types.Tool], *, also: Callable[[types.Tool], bool] | None = None
    ) -> list[types.Tool]:
        """What search mode lists of ``tools``: the meta-tools, then the ones ``catalog.always`` names.

        ``also`` keeps more of them (a client that renders apps keeps the tools with apps).
        """
        spec = self.spec

        def kept(tool: types.Tool) -> bool:
            return any(fnmatch.fnmatchcase(tool.name, pattern) for pattern in spec.always) or (
                also is not None and also(tool)
            )

        return [_search_tools_tool(spec.search_limit), _call_tool_tool(), *filter(kept, tools)]

    def meta_tool(self, name: str) -> types.Tool | None:
        """The definition of meta-tool ``name`` (for argument checks), if it is one."""
        if name == SEARCH_TOOLS:
            return _search_tools_tool(self.spec.search_limit)
        if name == CALL_TOOL:
            return _call_tool_tool()
        return None

    async def search(
        self,
        arguments: Mapping[str, Any],
        tools: tuple[types.Tool, ...],
        catalog: Catalog,
        allowed: Callable[[str], bool] | None,
    ) -> types.CallToolResult:
        """``search_tools``: the tools of ``tools`` that best match the query and that ``allowed`` lets through.

        ``arguments`` are already valid for the tool's schema.

        Raises:
            InvalidArgumentsError: The query is blank.
        """
        query = _words_of(cast("str", arguments["query"]))
        limit = cast("int", arguments.get("limit", self.spec.search_limit))
        if not query:
            raise InvalidArgumentsError(SEARCH_TOOLS, ["query: say in words what you want to do"])
        index = await self._index_of(tools, catalog)
        # Off the event loop: embedding the query takes milliseconds, which other requests need.
        hits = await anyio.to_thread.run_sync(lambda: index.search(query, limit=limit, allowed=allowed))
        by_name = {tool.name: tool for tool in tools}
        found = [_wire(by_name[hit.name]) for hit in hits if hit.name in by_name]
        structured: dict[str, Any] = {"tools": found}
        text = json.dumps(structured, separators=(",", ":")) if found else "No tool matches; try other words."
        return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=structured)

    async def prepare(self, tools: tuple[types.Tool, ...], catalog: Catalog) -> None:
        """Build the index of ``tools`` ahead of the first search (a failure is logged; a search builds again)."""
        try:
            await self._index_of(tools, catalog)
        # Boundary: a background build must not take the server down; the next search tries again.
        except Exception:
            logger.exception("could not build the tool search index")

    async def _index_of(self, tools: tuple[types.Tool, ...], catalog: Catalog) -> ToolIndex:
        """The index of ``tools``, built in a worker thread once per change (concurrent searches share it)."""
        cached = self._index
        if cached is not None and cached[0] is tools:
            return cached[1]
        async with self._building:
            cached = self._index
            if cached is not None and cached[0] is tools:
                return cached[1]
            entries = [_indexed(tool, catalog) for tool in tools]
            previous = cached[1] if cached is not None else None
            index = await anyio.to_thread.run_sync(lambda: search.ToolIndex.build(entries, previous=previous))
            self._index = (tools, index)
            return index


def _indexed(tool: types.Tool, catalog: Catalog) -> IndexedTool:
    if catalog.has_tool(tool.name):
        return search.IndexedTool(tool, catalog.route_tool(tool.name).server)
    return search.IndexedTool(tool, None, composite=True)


def _wire(tool: types.Tool) -> dict[str, Any]:
    return tool.model_dump(mode="json", by_alias=True, exclude_none=True)
