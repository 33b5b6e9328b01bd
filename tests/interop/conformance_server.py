"""The fixture server the official MCP conformance suite's server scenarios expect.

``@modelcontextprotocol/conformance`` (``conformance list --server``) drives a server that
offers a fixed set of test tools, resources and prompts (``test_simple_text``,
``test_tool_with_progress``, ``test_sampling``, ``test://static-text``,
``test_simple_prompt``, ...). This is that server, written with the Python SDK's low-level
``Server`` so that every reply is exactly what the scenario sources ask for. It serves both
protocol eras on one process (the SDK's dual-era runner decides per connection):

- 2025-11-25 (what the conformance suite speaks): sampling and elicitation are
  server-to-client requests on the calling request's stream; log messages are filtered by
  ``logging/setLevel``; ``resources/subscribe`` is tracked per process.
- 2026-07-28 (what the aggregator's downstream client negotiates): sampling and
  elicitation go through ``InputRequiredResult`` rounds; log messages reach only requests
  that opted in (``_meta`` log level).

Run from the repository root::

    python -m tests.interop.conformance_server                      # stdio
    python -m tests.interop.conformance_server --transport http --port 0

Over HTTP it serves ``http://127.0.0.1:PORT/mcp`` with an in-memory event store (SSE
resumability, ``retry: 100``) and the SDK's DNS-rebinding protection, and prints
``LISTENING <port>`` to stderr once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types import JSONRPCMessage
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from tests.fakes import exit_served

__all__ = ["ConformanceFixture", "InMemoryEventStore", "main"]

Ctx = ServerRequestContext[Any, Any]
ToolResult = types.CallToolResult | types.InputRequiredResult
ToolFn = Callable[[Ctx, types.CallToolRequestParams], Awaitable[ToolResult]]

SERVER_NAME: Final = "mcp-conformance-fixture"
# A 1x1 PNG and a tiny WAV, as the scenarios suggest.
PNG_BASE64: Final = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV_BASE64: Final = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
JSON_SCHEMA_2020_12: Final = "https://json-schema.org/draft/2020-12/schema"

_SEVERITY: Final[dict[str, int]] = {
    level: rank
    for rank, level in enumerate(["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"])
}
_NO_ARGS: Final[dict[str, Any]] = {"type": "object", "properties": {}}

_ELICITATION_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    },
    "required": ["username", "email"],
}
_SEP1034_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
    "required": [],
}
_SEP1330_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {
            "type": "string",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
    "required": [],
}
_JSON_SCHEMA_TOOL_INPUT: Final[dict[str, Any]] = {
    "$schema": JSON_SCHEMA_2020_12,
    "type": "object",
    "$defs": {"address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
    "additionalProperties": False,
}
_COMPLETIONS: Final[dict[str, list[str]]] = {"arg1": ["paris", "park", "party"], "arg2": ["hello", "help", "world"]}


# --------------------------------------------------------------------------- event store


class InMemoryEventStore(EventStore):
    """SSE resumability: every event of every stream, replayable after an event id."""

    def __init__(self) -> None:
        self._events: list[tuple[str, int, JSONRPCMessage | None]] = []

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        event_id = len(self._events) + 1
        self._events.append((stream_id, event_id, message))
        return str(event_id)

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        try:
            after = int(last_event_id)
        except ValueError:
            return None
        stream = next((stream for stream, event_id, _ in self._events if event_id == after), None)
        if stream is None:
            return None
        for stream_id, event_id, message in list(self._events):
            if stream_id == stream and event_id > after and message is not None:
                await send_callback(EventMessage(message, str(event_id)))
        return stream


# --------------------------------------------------------------------------- helpers


def _is_modern(ctx: Ctx) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def _text(text: str, *, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=is_error)


def _str_arg(params: types.CallToolRequestParams, key: str) -> str:
    value = (params.arguments or {}).get(key)
    if not isinstance(value, str):
        raise MCPError(types.INVALID_PARAMS, f"argument {key!r} must be a string")
    return value


def _tool(name: str, description: str, schema: dict[str, Any] | None = None) -> types.Tool:
    return types.Tool(name=name, description=description, input_schema=schema or _NO_ARGS)


def _string_args(*names: str) -> dict[str, Any]:
    return {"type": "object", "properties": {n: {"type": "string"} for n in names}, "required": list(names)}


@dataclass
class _State:
    log_level: str = "debug"
    subscriptions: set[str] = field(default_factory=lambda: set[str]())


# --------------------------------------------------------------------------- the fixture


class ConformanceFixture:
    """Every tool, resource, template and prompt the server scenarios call for."""

    def __init__(self) -> None:
        self.state = _State()
        self._tools: dict[str, tuple[types.Tool, ToolFn]] = {}
        self._register_tools()
        self.server = Server[Any](
            SERVER_NAME,
            version="1.0.0",
            get_tool_input_schema=self._input_schema,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_templates,
            on_read_resource=self._read_resource,
            on_subscribe_resource=self._subscribe,
            on_unsubscribe_resource=self._unsubscribe,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
            on_completion=self._complete,
        )
        # Logging is deprecated at 2026-07-28, but handshake-era clients still set the level.
        self.server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, self._set_level)

    # ----------------------------------------------------------------- tools

    def _register_tools(self) -> None:
        add = self._add
        add(_tool("test_simple_text", "Returns a simple text response."), self._simple_text)
        add(_tool("test_image_content", "Returns a 1x1 PNG image."), self._image)
        add(_tool("test_audio_content", "Returns a tiny WAV clip."), self._audio)
        add(_tool("test_embedded_resource", "Returns an embedded text resource."), self._embedded)
        add(_tool("test_multiple_content_types", "Returns text, image and resource content."), self._mixed)
        add(_tool("test_tool_with_logging", "Sends three info log messages while it runs."), self._logging)
        add(_tool("test_tool_with_progress", "Reports progress 0, 50 and 100 of 100."), self._progress)
        add(_tool("test_error_handling", "Always fails with an error result."), self._error)
        add(_tool("test_sampling", "Asks the client to sample an LLM reply.", _string_args("prompt")), self._sampling)
        add(
            _tool("test_elicitation", "Asks the user for a username and email.", _string_args("message")),
            self._elicitation,
        )
        add(
            _tool("test_elicitation_sep1034_defaults", "Elicitation with defaults for every primitive type."),
            self._elicit_sep1034,
        )
        add(
            _tool("test_elicitation_sep1330_enums", "Elicitation with all five enum schema variants."),
            self._elicit_sep1330,
        )
        add(
            _tool("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features", _JSON_SCHEMA_TOOL_INPUT),
            self._json_schema_tool,
        )
        add(_tool("test_reconnection", "Closes its SSE stream mid-call, then answers."), self._reconnection)

    def _add(self, tool: types.Tool, fn: ToolFn) -> None:
        self._tools[tool.name] = (tool, fn)

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        entry = self._tools.get(name)
        return None if entry is None else entry[0].input_schema

    async def _list_tools(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool for tool, _ in self._tools.values()])

    async def _call_tool(self, ctx: Ctx, params: types.CallToolRequestParams) -> ToolResult:
        entry = self._tools.get(params.name)
        if entry is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        return await entry[1](ctx, params)

    async def _simple_text(self, ctx: Ctx, params: types.CallToolRequestParams) -> ToolResult:
        return _text("This is a simple text response for testing.")

    async def _image(self, ctx: Ctx, params: types.CallToolRequestParams) -> ToolResult:
        return types.CallToolResult(content=[types.ImageContent(data=PNG_BASE64, mime_type="image/png")])

    async def _audio(self, ctx: Ctx, params: types.CallToolRequestParams) -> ToolResult:
        return types.CallToolResult(content=[types.AudioContent(data=WAV_BASE64, mime_type="audio/wav")])

    async def _embedded(self, ctx: Ctx, params: types.CallToolRequestParams) -> ToolResult:
        resource = types.TextResourceContents(
            uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."
        )
        return types.CallToolResult(content=[types.EmbeddedResource(resource=resource)])

    async def _mixed(self, ctx: Ctx, params: types.CallToolRequestParams) -> ToolResult:
        resource = types.TextResourceContents(
            uri="test://mixed-content-resource",
            mime_type="application/json",
            text=json.dumps({"test": "data", "value": 123}),
        )
        return types.CallToolResult(
            content=[
                types.TextContent(text="Multiple content types test:"),
                types.ImageContent(data=PNG_BASE64, mime_type="image/png"),
                types.EmbeddedResource(resource=resource),
            ]
        )

    async def _log(self, ctx: Ctx, level: types.LoggingLevel, message: str) -> None:
        # 2026-07-28: the session drops it unless the request opted in. Handshake era: the
        # level a client set with logging/setLevel filters here.
        if _is_modern(ctx) or _SEVERITY[level] >= _SEVERITY[self.state.log_level]:
            await ctx.session.send_log_message(  # pyright: ignore[reportDeprecated]
                level, message, logger=SERVER_NAME, related_request_id=ctx.request_id
            )

    async def _logging(self, ctx: Ctx, params: types.CallToolRequestParams) -> ToolResult:
        await self._log(ctx, "info", "Tool execution started")
        await anyio.sleep(0.05)
        await self._log(ctx, "info", "Tool processing data")
        await anyio.sleep(0.05)
        await self._log(ctx, "info", "Tool execution completed")
        return _text("Tool with logging executed successfully")

    async def _progress(self, ctx: Ctx, params: types.CallToolRequestParams) -> ToolResult:
        for step, progress in enumerate((0, 50, 100)):
            if step:
                await anyio.sleep(0.05)
            # A no-op when the caller sent no progress token.
            await ctx.session.report_progress(progress, 100, f"Completed step {progress} of 100")
        token = ctx.meta.get("progress_token") if ctx.meta else None
        return _text(f"Progress tool completed (token {token})")

    async def _error(self, ctx: Ctx, params: types.CallToolRequestParams) -> ToolResult:
        return _text("This tool intentionally returns an error for testing", is_error=True)

    async def _json_schema_tool(self, ctx: Ctx, params: types.CallToolRequestParams) -> ToolResult:
        return _text(json.dumps(params.arguments or {}, sort_keys=True))

    async def _reconnection(self, ctx: Ctx, params: types.CallToolRequestParams) -> ToolResult:
        await self._log(ctx, "info", "Before disconnect")
        if ctx.close_sse_stream is not None:  # streamable HTTP with an event store only
            await ctx.close_sse_stream()
        await anyio.sleep(0.2)  # the client reconnects with Last-Event-ID meanwhile
        await self._log(ctx, "info", "After reconnect")
        return _text("Reconnection test completed")

    # ------------------------------------------------------ sampling, elicitation

    async def _ask(self, ctx: Ctx, params: types.CallToolRequestParams, request: types.InputRequest) -> Any:
        """Send ``request`` to the client in the era's way; the answer, or a result to return."""
        caps = ctx.session.client_capabilities
        if _is_modern(ctx):
            response = (params.input_responses or {}).get("input")
            if response is not None:
                return response
            wanted = caps is not None and (
                caps.sampling is not None if isinstance(request, types.CreateMessageRequest) else caps.elicitation
            )
            if not wanted:
                return _text(f"the client does not support {request.method}", is_error=True)
            return types.InputRequiredResult(input_requests={"input": request})
        metadata = ServerMessageMetadata(related_request_id=ctx.request_id)
        try:
            if isinstance(request, types.CreateMessageRequest):
                return await ctx.session.send_request(request, types.CreateMessageResult, metadata=metadata)
            return await ctx.session.send_request(request, types.ElicitResult, metadata=metadata)
        except MCPError as exc:
            return _text(f"{request.method} failed: {exc.message}", is_error=True)

    async def _sampling(self, ctx: Ctx, params: types.CallToolRequestParams) -> ToolResult:
        request = types.CreateMessageRequest(
            params=types.CreateMessageRequestParams(
                messages=[
                    types.SamplingMessage(role="user", content=types.TextContent(text=_str_arg(params, "prompt")))
                ],
                max_tokens=100,
            )
        )
        answer = await self._ask(ctx, params, request)
        if isinstance(answer, types.CallToolResult | types.InputRequiredResult):
            return answer
        if not isinstance(answer, types.CreateMessageResult | types.CreateMessageResultWithTools):
            return _text(f"unexpected sampling answer {type(answer).__name__}", is_error=True)
        blocks: list[Any] = list(answer.content) if isinstance(answer.content, list) else [answer.content]
        reply = "".join(b.text for b in blocks if isinstance(b, types.TextContent)) or "No response"
        return _text(f"LLM response: {reply}")

    async def _elicit(
        self, ctx: Ctx, params: types.CallToolRequestParams, message: str, schema: dict[str, Any], label: str
    ) -> ToolResult:
        request = types.ElicitRequest(params=types.ElicitRequestFormParams(message=message, requested_schema=schema))
        answer = await self._ask(ctx, params, request)
        if isinstance(answer, types.CallToolResult | types.InputRequiredResult):
            return answer
        if not isinstance(answer, types.ElicitResult):
            return _text(f"unexpected elicitation answer {type(answer).__name__}", is_error=True)
        return _text(f"{label}: action={answer.action}, content={json.dumps(answer.content or {})}")

    async def _elicitation(self, ctx: Ctx, params: types.CallToolRequestParams) -> ToolResult:
        return await self._elicit(ctx, params, _str_arg(params, "message"), _ELICITATION_SCHEMA, "User response")

    async def _elicit_sep1034(self, ctx: Ctx, params: types.CallToolRequestParams) -> ToolResult:
        message = "Test client default value handling - please accept with defaults"
        return await self._elicit(ctx, params, message, _SEP1034_SCHEMA, "Elicitation completed")

    async def _elicit_sep1330(self, ctx: Ctx, params: types.CallToolRequestParams) -> ToolResult:
        message = "Please select values using different enum schema types"
        return await self._elicit(ctx, params, message, _SEP1330_SCHEMA, "Elicitation completed")

    # ------------------------------------------------------------- resources

    async def _list_resources(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        def resource(uri: str, name: str, description: str, mime: str) -> types.Resource:
            return types.Resource(uri=uri, name=name, description=description, mime_type=mime)

        return types.ListResourcesResult(
            resources=[
                resource("test://static-text", "static-text", "A static text resource.", "text/plain"),
                resource("test://static-binary", "static-binary", "A static binary resource (PNG).", "image/png"),
                resource("test://watched-resource", "watched-resource", "A resource to subscribe to.", "text/plain"),
            ]
        )

    async def _list_templates(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        template = types.ResourceTemplate(
            uri_template="test://template/{id}/data",
            name="template-data",
            description="Data for an id, substituted into the URI.",
            mime_type="application/json",
        )
        return types.ListResourceTemplatesResult(resource_templates=[template])

    async def _read_resource(self, ctx: Ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        contents: types.TextResourceContents | types.BlobResourceContents
        if uri == "test://static-text":
            text = "This is the content of the static text resource."
            contents = types.TextResourceContents(uri=uri, mime_type="text/plain", text=text)
        elif uri == "test://static-binary":
            contents = types.BlobResourceContents(uri=uri, mime_type="image/png", blob=PNG_BASE64)
        elif uri == "test://watched-resource":
            contents = types.TextResourceContents(uri=uri, mime_type="text/plain", text="Watched resource content")
        elif uri.startswith("test://template/") and uri.endswith("/data"):
            item = uri.removeprefix("test://template/").removesuffix("/data")
            body = json.dumps({"id": item, "templateTest": True, "data": f"Data for ID: {item}"})
            contents = types.TextResourceContents(uri=uri, mime_type="application/json", text=body)
        else:
            raise MCPError(types.INVALID_PARAMS, f"Resource not found: {uri}")
        return types.ReadResourceResult(contents=[contents])

    async def _subscribe(self, ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        self.state.subscriptions.add(str(params.uri))
        return types.EmptyResult()

    async def _unsubscribe(self, ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        self.state.subscriptions.discard(str(params.uri))
        return types.EmptyResult()

    # --------------------------------------------------------------- prompts

    async def _list_prompts(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        def arg(name: str, description: str) -> types.PromptArgument:
            return types.PromptArgument(name=name, description=description, required=True)

        return types.ListPromptsResult(
            prompts=[
                types.Prompt(name="test_simple_prompt", description="A simple prompt without arguments."),
                types.Prompt(
                    name="test_prompt_with_arguments",
                    description="A prompt with two required arguments.",
                    arguments=[arg("arg1", "First test argument"), arg("arg2", "Second test argument")],
                ),
                types.Prompt(
                    name="test_prompt_with_embedded_resource",
                    description="A prompt that embeds a resource.",
                    arguments=[arg("resourceUri", "URI of the resource to embed")],
                ),
                types.Prompt(name="test_prompt_with_image", description="A prompt with an image."),
            ]
        )

    async def _get_prompt(self, ctx: Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        args = params.arguments or {}

        def user(content: types.ContentBlock) -> types.PromptMessage:
            return types.PromptMessage(role="user", content=content)

        def required(key: str) -> str:
            if key not in args:
                raise MCPError(types.INVALID_PARAMS, f"Missing required argument {key!r}")
            return args[key]

        match params.name:
            case "test_simple_prompt":
                messages = [user(types.TextContent(text="This is a simple prompt for testing."))]
            case "test_prompt_with_arguments":
                text = f"Prompt with arguments: arg1='{required('arg1')}', arg2='{required('arg2')}'"
                messages = [user(types.TextContent(text=text))]
            case "test_prompt_with_embedded_resource":
                resource = types.TextResourceContents(
                    uri=required("resourceUri"), mime_type="text/plain", text="Embedded resource content for testing."
                )
                messages = [
                    user(types.EmbeddedResource(resource=resource)),
                    user(types.TextContent(text="Please process the embedded resource above.")),
                ]
            case "test_prompt_with_image":
                messages = [
                    user(types.ImageContent(data=PNG_BASE64, mime_type="image/png")),
                    user(types.TextContent(text="Please analyze the image above.")),
                ]
            case _:
                raise MCPError(types.INVALID_PARAMS, f"Unknown prompt: {params.name}")
        return types.GetPromptResult(messages=messages)

    # ----------------------------------------------------- completion, logging

    async def _complete(self, ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
        candidates = _COMPLETIONS.get(params.argument.name, []) if isinstance(params.ref, types.PromptReference) else []
        values = [v for v in candidates if v.startswith(params.argument.value)]
        return types.CompleteResult(completion=types.Completion(values=values, total=len(values), has_more=False))

    async def _set_level(self, ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        self.state.log_level = params.level
        return types.EmptyResult()


# --------------------------------------------------------------------------- transports


async def serve_stdio(fixture: ConformanceFixture) -> None:
    """Serve one connection over stdin/stdout until stdin closes."""
    async with stdio_server() as (read_stream, write_stream):
        await fixture.server.run(read_stream, write_stream, fixture.server.create_initialization_options())


async def serve_http(fixture: ConformanceFixture, port: int) -> None:
    """Serve streamable HTTP at ``http://127.0.0.1:{port}/mcp``; ``LISTENING <port>`` on stderr."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    bound: int = sock.getsockname()[1]
    app = fixture.server.streamable_http_app(host="127.0.0.1", event_store=InMemoryEventStore(), retry_interval=100)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1))

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.01)
        print(f"LISTENING {bound}", file=sys.stderr, flush=True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(announce)
        await server.serve(sockets=[sock])
        tg.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.interop.conformance_server", description=__doc__)
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    # Logging and sampling are deprecated at 2026-07-28; the scenarios use them on purpose.
    warnings.simplefilter("ignore", MCPDeprecationWarning)
    fixture = ConformanceFixture()
    try:
        if args.transport == "http":
            anyio.run(serve_http, fixture, int(args.port))
        else:
            anyio.run(serve_stdio, fixture)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
    exit_served()
