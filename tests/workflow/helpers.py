"""Builders shared by the workflow tests: workflows from YAML text or dicts, catalogues, a fake invoker."""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcp_types as types

from orchestrator.catalog import Catalog, ServerManifest, build_catalog
from orchestrator.errors import WorkflowDefinitionError
from orchestrator.workflow import WorkflowPlan, WorkflowSpec, compile_workflow, load_workflow

DATA = Path(__file__).parent / "data"


def write_workflow(folder: Path, text: str, name: str = "flow.yaml") -> Path:
    """Write dedented ``text`` as a workflow file and return its path."""
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def compile_text(folder: Path, text: str, catalog: Catalog | None = None, **kwargs: Any) -> WorkflowPlan:
    """Load and compile a workflow written as YAML text."""
    return compile_workflow(load_workflow(write_workflow(folder, text)), catalog=catalog, **kwargs)


def problems_of(folder: Path, text: str, catalog: Catalog | None = None, **kwargs: Any) -> list[str]:
    """Every problem loading and compiling ``text`` reports (fails the test if there is none)."""
    try:
        compile_text(folder, text, catalog, **kwargs)
    except WorkflowDefinitionError as exc:
        return exc.problems
    raise AssertionError("the workflow compiled without problems")


def plan_of(steps: dict[str, Any], **top: Any) -> WorkflowPlan:
    """Compile a workflow given as data: ``steps`` plus any top-level keys."""
    document: dict[str, Any] = {"version": 1, "name": "test_flow", "description": "A test.", "steps": steps, **top}
    return compile_workflow(WorkflowSpec.model_validate(document), "test.yaml")


def tool(
    name: str,
    *,
    properties: dict[str, Any] | None = None,
    required: Iterable[str] = (),
    closed: bool = False,
    output_schema: dict[str, Any] | None = None,
    **hints: bool,
) -> types.Tool:
    """A downstream tool with an object input schema and the given annotation hints."""
    schema: dict[str, Any] = {"type": "object", "properties": properties or {}}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    annotations = types.ToolAnnotations.model_validate(hints) if hints else None
    return types.Tool(name=name, input_schema=schema, output_schema=output_schema, annotations=annotations)


def catalog_of(**servers: Iterable[types.Tool]) -> Catalog:
    """A catalogue of servers (prefixed by their key) with the given tools."""
    return build_catalog(ServerManifest(key, key, tools=tuple(tools)) for key, tools in servers.items())


@dataclass(frozen=True)
class Call:
    """One call the fake invoker received."""

    server: str
    tool: str
    arguments: dict[str, Any]
    timeout: float | None
    meta: dict[str, Any] | None


Handler = Callable[[Call], Awaitable[Any]]


class FunctionInvoker:
    """A ``ToolInvoker`` that hands each call to a function.

    The handler returns a ``CallToolResult``, or any other value, sent as ``structuredContent``;
    it raises ``DownstreamError``s to fail the call.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[Call] = []

    async def call_tool(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        timeout: float | None,
        meta: dict[str, Any] | None,
    ) -> types.CallToolResult:
        call = Call(server, tool, arguments, timeout, meta)
        self.calls.append(call)
        value = await self.handler(call)
        if isinstance(value, types.CallToolResult):
            return value
        return types.CallToolResult(content=[], structured_content=value)

    def calls_to(self, tool: str) -> list[Call]:
        """The calls made to ``tool`` (any server), in order."""
        return [call for call in self.calls if call.tool == tool]


def text_result(text: str, *, is_error: bool = False) -> types.CallToolResult:
    """A result with one text block."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=is_error)


async def echo(call: Call) -> Any:
    """A handler returning the arguments it got."""
    return {"tool": call.tool, **call.arguments}
