"""The fault server's MCP application: tools, resource, prompt, and the two transports.

Imported by `tests.fakes.fault_server` only after the cheap start-up checks
(`--fail-start`, `--stderr-mb`) have run, so a failing server exits without paying for
the SDK import. See `tests.fakes.fault_server` for the era matrix.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel
import mcp_types as types
from mcp.server.caching import CacheableMethod, CacheHint
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.runner import serve_loop
from mcp.server.sse import SseServerTransport
from mcp.server.stdio import stdio_server
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from tests.fakes import garbage_line

__all__ = ["FaultApp", "FaultConfig", "FaultServer", "refuse_modern_era", "serve_http", "serve_stdio"]

Ctx = ServerRequestContext[dict[str, Any], Any]
ToolResult = types.CallToolResult | types.InputRequiredResult
ToolFn = Callable[[Ctx, dict[str, Any], types.CallToolRequestParams], Awaitable[ToolResult]]

EVENTS_FILE_ENV: Final = "FAULT_EVENTS_FILE"
_FLOOD_CHUNK: Final = 64 * 1024
STATIC_URI: Final = "fault://static"
SAMPLE_KEY: Final = "sample"
ELICIT_KEY: Final = "elicit"
ROOTS_KEY: Final = "roots"

_LEVELS: Final[dict[str, types.LoggingLevel]] = {
    "debug": "debug",
    "info": "info",
    "notice": "notice",
    "warning": "warning",
    "error": "error",
    "critical": "critical",
    "alert": "alert",
    "emergency": "emergency",
}
_SEVERITY: Final[dict[str, int]] = {name: rank for rank, name in enumerate(_LEVELS)}

_ELICIT_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {"answer": {"type": "string", "description": "Your answer"}},
    "required": ["answer"],
}


class _ArgError(ValueError):
    """A tool argument is missing or has the wrong type (reported as an `isError` result)."""


@dataclass(frozen=True)
class FaultConfig:
    name: str = "fault"
    extra_tools: tuple[str, ...] = ()
    descriptions: tuple[tuple[str, str], ...] = ()
    list_ttl_ms: int | None = None
    events_file: Path | None = None
    stdout_tools: bool = False
    headers_tool: bool = False
    bad_output_tool: bool = False
    mutation_tools: bool = False
    legacy_only: bool = False
    ops_tools: bool = False
    mark_tool: bool = False
    http_fail_every: int = 0
    call_events: bool = False


@dataclass(frozen=True)
class _ToolSpec:
    tool: types.Tool
    fn: ToolFn


@dataclass
class _State:
    tools: dict[str, _ToolSpec] = field(default_factory=lambda: {})
    legacy_log_level: types.LoggingLevel = "debug"
    grandchildren: list[anyio.abc.Process] = field(default_factory=lambda: [])
    subscribers: list[Any] = field(default_factory=lambda: [])


class FaultServer(Server[dict[str, Any]]):
    """A lowlevel `Server` whose handshake-era capabilities advertise `tools.listChanged`.

    The streamable-HTTP session manager builds its `InitializeResult` from the zero-argument
    `create_initialization_options()`, so the default is changed here rather than at the
    stdio call site only. (At 2026-07-28 the flag derives from `subscriptions/listen` being
    served, which it is.)
    """

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True),
            experimental_capabilities,
            extensions,
        )


# --------------------------------------------------------------------------- helpers


def _is_modern(ctx: Ctx) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def _peer_cancelled(ctx: Ctx) -> bool:
    """Whether the client sent `notifications/cancelled` for this request.

    The dispatcher sets the request's `cancel_requested` event before it cancels the handler
    scope; a handler torn down because the connection closed sees it unset. The SDK exposes
    the event only on the dispatch context the session wraps, hence the duck-typed reach.
    """
    outbound = getattr(ctx.session, "_request_outbound", None)
    event = getattr(outbound, "cancel_requested", None)
    return isinstance(event, anyio.Event) and event.is_set()


async def refuse_modern_era(ctx: Ctx, call_next: CallNext) -> HandlerResult:
    """`--legacy-only`: answer `server/discover` and any 2026-07-28 request like a 2025-11-25 server.

    An SDK client in auto mode takes -32601 on its `server/discover` probe for "no modern
    era here" and falls back to the `initialize` handshake.
    """
    if ctx.request_id is not None and (ctx.method == "server/discover" or _is_modern(ctx)):
        raise MCPError(types.METHOD_NOT_FOUND, "Method not found", data=ctx.method)
    return await call_next(ctx)


def _text(text: str, structured: dict[str, Any] | None = None) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=structured)


def _json_result(structured: dict[str, Any]) -> types.CallToolResult:
    return _text(json.dumps(structured, sort_keys=True), structured)


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)


def _arg(args: Mapping[str, Any], key: str) -> Any:
    if key not in args:
        raise _ArgError(f"missing required argument {key!r}")
    return args[key]


def _str_arg(args: Mapping[str, Any], key: str) -> str:
    value = _arg(args, key)
    if not isinstance(value, str):
        raise _ArgError(f"argument {key!r} must be a string")
    return value


def _num_arg(args: Mapping[str, Any], key: str) -> float:
    value = _arg(args, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _ArgError(f"argument {key!r} must be a number")
    return value


def _int_arg(args: Mapping[str, Any], key: str, default: int | None = None) -> int:
    if key not in args and default is not None:
        return default
    value = _arg(args, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _ArgError(f"argument {key!r} must be an integer")
    return value


def _schema(properties: dict[str, Any] | None = None, required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties or {}}
    if required:
        schema["required"] = required
    return schema


def _annotations(
    *, read_only: bool, idempotent: bool = False, destructive: bool = False, open_world: bool = False
) -> types.ToolAnnotations:
    return types.ToolAnnotations(
        read_only_hint=read_only,
        destructive_hint=None if read_only else destructive,
        idempotent_hint=idempotent,
        open_world_hint=open_world,
    )


_READ_ONLY = _annotations(read_only=True, idempotent=True)


def _sampling_text(result: types.CreateMessageResult | types.CreateMessageResultWithTools) -> str:
    content = result.content
    blocks: list[Any] = list(content) if isinstance(content, list) else [content]
    return "".join(block.text for block in blocks if isinstance(block, types.TextContent))


def _sampling_request(prompt: str) -> types.CreateMessageRequest:
    return types.CreateMessageRequest(
        params=types.CreateMessageRequestParams(
            messages=[types.SamplingMessage(role="user", content=types.TextContent(text=prompt))],
            max_tokens=50,
        )
    )


def _elicit_result(result: types.ElicitResult) -> types.CallToolResult:
    return _json_result({"action": result.action, "content": result.content})


# --------------------------------------------------------------------------- the application


class FaultApp:
    """State and handlers of one fault server process (one instance serves every connection)."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self.wire_fd: int | None = None
        """The stdout pipe (stdio transport only), for the raw-write tools; set by `serve_stdio`."""
        self.bus = InMemorySubscriptionBus()
        self.state = _State()
        self._register_builtin_tools()
        if config.stdout_tools:
            self._register_stdout_tools()
        if config.headers_tool:
            self._register_headers_tool()
        if config.bad_output_tool:
            self._register_bad_output_tool()
        if config.mutation_tools:
            self._register_mutation_tools()
        if config.ops_tools:
            self._register_ops_tools()
        if config.mark_tool:
            self._add(
                types.Tool(
                    name="mark",
                    description="Log `mark <label>` to $FAULT_EVENTS_FILE, wait `seconds`, then return the label.",
                    input_schema=_schema(
                        {"label": {"type": "string"}, "seconds": {"type": "number", "minimum": 0}}, ["label"]
                    ),
                    annotations=_annotations(read_only=False),
                ),
                self._tool_mark,
            )
        for name in config.extra_tools:
            if name in self.state.tools:
                print(f"fault_server: --tools {name!r} clashes with a built-in tool; ignored", file=sys.stderr)
                continue
            self._add_echo_tool(name, "Dummy tool from --tools: returns its arguments as JSON text.")
        for name, description in config.descriptions:
            self._add_echo_tool(name, description)
        cache_hints: dict[CacheableMethod, CacheHint] | None = None
        if config.list_ttl_ms is not None:
            cache_hints = {"tools/list": CacheHint(ttl_ms=config.list_ttl_ms, scope="private")}
        self.server = FaultServer(
            config.name,
            version="1.0.0",
            instructions="Fault-injection MCP server for aggregator tests.",
            cache_hints=cache_hints,
            get_tool_input_schema=self._input_schema,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_read_resource=self._read_resource,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
            on_subscriptions_listen=ListenHandler(self.bus),
            **self._subscription_handlers(),
        )
        # Registered after construction: the constructor keyword is the deprecated overload
        # (logging is deprecated at 2026-07-28, but handshake-era clients still use it).
        self.server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, self._set_level)
        if config.legacy_only:
            self.server.middleware.append(refuse_modern_era)

    # ----------------------------------------------------------------- events file

    def event(self, line: str) -> None:
        path = self.config.events_file
        if path is None:
            return
        with path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()

    # ----------------------------------------------------------------- registry

    def _add(self, tool: types.Tool, fn: ToolFn) -> None:
        self.state.tools[tool.name] = _ToolSpec(tool, fn)

    def _add_echo_tool(self, name: str, description: str) -> None:
        tool = types.Tool(
            name=name,
            description=description,
            input_schema={"type": "object", "additionalProperties": True},
            annotations=_READ_ONLY,
        )
        self._add(tool, self._tool_echo_args)

    def _register_builtin_tools(self) -> None:
        s = _schema
        self._add(
            types.Tool(
                name="echo",
                description="Echo the text back (text content and structuredContent {text}).",
                input_schema=s({"text": {"type": "string"}}, ["text"]),
                output_schema=s({"text": {"type": "string"}}, ["text"]),
                annotations=_READ_ONLY,
            ),
            self._tool_echo,
        )
        self._add(
            types.Tool(
                name="add",
                description="Add two numbers; structuredContent {sum}.",
                input_schema=s({"a": {"type": "number"}, "b": {"type": "number"}}, ["a", "b"]),
                output_schema=s({"sum": {"type": "number"}}, ["sum"]),
                annotations=_READ_ONLY,
            ),
            self._tool_add,
        )
        self._add(
            types.Tool(
                name="slow",
                description="Sleep `seconds`, sending `steps` progress notifications; returns 'done'.",
                input_schema=s(
                    {"seconds": {"type": "number", "minimum": 0}, "steps": {"type": "integer", "minimum": 1}},
                    ["seconds"],
                ),
                annotations=_READ_ONLY,
            ),
            self._tool_slow,
        )
        self._add(
            types.Tool(
                name="hang",
                description="Never returns; records start and cancellation in $FAULT_EVENTS_FILE.",
                input_schema=s(),
                annotations=_annotations(read_only=True),
            ),
            self._tool_hang,
        )
        self._add(
            types.Tool(
                name="crash",
                description="Kill the server process (exit status 1) in the middle of the call.",
                input_schema=s(),
                annotations=_annotations(read_only=False, destructive=True),
            ),
            self._tool_crash,
        )
        self._add(
            types.Tool(
                name="pid",
                description="The server process id; structuredContent {pid}.",
                input_schema=s(),
                output_schema=s({"pid": {"type": "integer"}}, ["pid"]),
                annotations=_READ_ONLY,
            ),
            self._tool_pid,
        )
        self._add(
            types.Tool(
                name="add_tool",
                description="Add an echo-style tool named `name` and announce tools/list_changed.",
                input_schema=s({"name": {"type": "string", "minLength": 1}}, ["name"]),
                annotations=_annotations(read_only=False, idempotent=True),
            ),
            self._tool_add_tool,
        )
        self._add(
            types.Tool(
                name="remove_tool",
                description="Remove the tool named `name` and announce tools/list_changed.",
                input_schema=s({"name": {"type": "string", "minLength": 1}}, ["name"]),
                annotations=_annotations(read_only=False, destructive=True, idempotent=True),
            ),
            self._tool_remove_tool,
        )
        self._add(
            types.Tool(
                name="log",
                description="Send a notifications/message log entry, then return 'logged'.",
                input_schema=s(
                    {"level": {"type": "string", "enum": list(_LEVELS)}, "message": {"type": "string"}},
                    ["level", "message"],
                ),
                annotations=_READ_ONLY,
            ),
            self._tool_log,
        )
        self._add(
            types.Tool(
                name="sample",
                description="Ask the client to sample an LLM reply to `prompt` (max 50 tokens); returns its text. "
                "With `hang_after`, the call then hangs like `hang` instead of returning. With `gate` (a "
                "path), it first records `gated sample <id>` and waits until that file exists.",
                input_schema=s(
                    {"prompt": {"type": "string"}, "hang_after": {"type": "boolean"}, "gate": {"type": "string"}},
                    ["prompt"],
                ),
                annotations=_annotations(read_only=True, open_world=True),
            ),
            self._tool_sample,
        )
        self._add(
            types.Tool(
                name="elicit",
                description="Ask the user (form elicitation with one string field `answer`); returns action+content.",
                input_schema=s({"question": {"type": "string"}}, ["question"]),
                output_schema=s(
                    {
                        "action": {"type": "string", "enum": ["accept", "decline", "cancel"]},
                        "content": {"type": ["object", "null"]},
                    },
                    ["action"],
                ),
                annotations=_annotations(read_only=True, open_world=True),
            ),
            self._tool_elicit,
        )
        self._add(
            types.Tool(
                name="fail",
                description="Return a tool error (isError: true) carrying `message`.",
                input_schema=s({"message": {"type": "string"}}, ["message"]),
                annotations=_READ_ONLY,
            ),
            self._tool_fail,
        )
        self._add(
            types.Tool(
                name="big",
                description="Return a text of exactly `kb` KiB (ASCII).",
                input_schema=s({"kb": {"type": "integer", "minimum": 0}}, ["kb"]),
                annotations=_READ_ONLY,
            ),
            self._tool_big,
        )
        self._add(
            types.Tool(
                name="env",
                description="Whether environment variable `name` is set in the server process (never its value).",
                input_schema=s({"name": {"type": "string"}}, ["name"]),
                output_schema=s({"name": {"type": "string"}, "set": {"type": "boolean"}}, ["name", "set"]),
                annotations=_READ_ONLY,
            ),
            self._tool_env,
        )
        self._add(
            types.Tool(
                name="spawn_grandchild",
                description="Start `sleep 300` in the server's process group; structuredContent {pid}.",
                input_schema=s(),
                output_schema=s({"pid": {"type": "integer"}}, ["pid"]),
                annotations=_annotations(read_only=False),
            ),
            self._tool_spawn_grandchild,
        )

    def _register_stdout_tools(self) -> None:
        """`garbage` and `line_flood` (only with `--stdout-tools`: the default list stays 15 tools)."""
        s = _schema
        self._add(
            types.Tool(
                name="garbage",
                description="Write `n` lines that are not JSON-RPC to stdout (stdio only), then answer normally.",
                input_schema=s({"n": {"type": "integer", "minimum": 0}}, ["n"]),
                annotations=_READ_ONLY,
            ),
            self._tool_garbage,
        )
        self._add(
            types.Tool(
                name="line_flood",
                description="Write `mb` MiB to stdout with no newline (stdio only); the reply is never readable.",
                input_schema=s({"mb": {"type": "number", "minimum": 0}}, ["mb"]),
                annotations=_annotations(read_only=False, destructive=True),
            ),
            self._tool_line_flood,
        )

    def _register_headers_tool(self) -> None:
        """`headers` (only with `--headers-tool`, for the same reason)."""
        self._add(
            types.Tool(
                name="headers",
                description="The HTTP request headers this call arrived with (HTTP transports only); "
                "structuredContent {lower-case name: value}.",
                input_schema=_schema(),
                annotations=_READ_ONLY,
            ),
            self._tool_headers,
        )

    def _register_bad_output_tool(self) -> None:
        """`bad_output` (only with `--bad-output-tool`): a result that breaks the tool's own outputSchema."""
        self._add(
            types.Tool(
                name="bad_output",
                description='Return structuredContent {n: <n>} (default "seven") although the outputSchema '
                "says n is an integer; with `structured: false`, text content only.",
                input_schema=_schema({"n": {}, "structured": {"type": "boolean"}}),
                output_schema=_schema({"n": {"type": "integer"}}, ["n"]),
                annotations=_READ_ONLY,
            ),
            self._tool_bad_output,
        )

    def _register_mutation_tools(self) -> None:
        """`redescribe`, `reschema`, `rename_tool` (only with `--mutation-tools`): a server changing its word."""
        name_arg = {"name": {"type": "string", "minLength": 1}}
        for tool, fn in (
            (
                types.Tool(
                    name="redescribe",
                    description="Give the tool `name` the description `description`; announce tools/list_changed.",
                    input_schema=_schema({**name_arg, "description": {"type": "string"}}, ["name", "description"]),
                    annotations=_annotations(read_only=False, idempotent=True),
                ),
                self._tool_redescribe,
            ),
            (
                types.Tool(
                    name="reschema",
                    description="Add a string property `property` to the tool `name`'s inputSchema; announce it.",
                    input_schema=_schema({**name_arg, "property": {"type": "string"}}, ["name", "property"]),
                    annotations=_annotations(read_only=False, idempotent=True),
                ),
                self._tool_reschema,
            ),
            (
                types.Tool(
                    name="rename_tool",
                    description="Rename the tool `name` to `new_name` (same definition otherwise); announce it.",
                    input_schema=_schema({**name_arg, "new_name": {"type": "string"}}, ["name", "new_name"]),
                    annotations=_annotations(read_only=False, idempotent=True),
                ),
                self._tool_rename,
            ),
            (
                types.Tool(
                    name="reheader",
                    description="Silently (no list_changed) give the tool `name` a string property `property` "
                    "carried in an Mcp-Param header (x-mcp-header), so a stale client's call is a header mismatch.",
                    input_schema=_schema({**name_arg, "property": {"type": "string"}}, ["name", "property"]),
                    annotations=_annotations(read_only=False, idempotent=True),
                ),
                self._tool_reheader,
            ),
        ):
            self._add(tool, fn)

    async def _replace_tool(
        self, ctx: Ctx, name: str, update: dict[str, Any], new_name: str | None = None
    ) -> ToolResult:
        spec = self.state.tools.get(name)
        if spec is None:
            return _text("absent")
        tool = spec.tool.model_copy(update={**update, "name": new_name or name})
        if new_name is not None:
            del self.state.tools[name]
        self.state.tools[tool.name] = _ToolSpec(tool, spec.fn)
        await self._announce_tools_changed(ctx)
        return _text("changed")

    async def _tool_redescribe(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        return await self._replace_tool(ctx, _str_arg(args, "name"), {"description": _str_arg(args, "description")})

    async def _tool_reschema(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        name = _str_arg(args, "name")
        spec = self.state.tools.get(name)
        if spec is None:
            return _text("absent")
        schema = dict(spec.tool.input_schema)
        schema["properties"] = {**schema.get("properties", {}), _str_arg(args, "property"): {"type": "string"}}
        return await self._replace_tool(ctx, name, {"input_schema": schema})

    async def _tool_reheader(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        name, prop = _str_arg(args, "name"), _str_arg(args, "property")
        spec = self.state.tools.get(name)
        if spec is None:
            return _text("absent")
        schema = dict(spec.tool.input_schema)
        header = {"type": "string", "x-mcp-header": prop.capitalize()}
        schema["properties"] = {**schema.get("properties", {}), prop: header}
        self.state.tools[name] = _ToolSpec(spec.tool.model_copy(update={"input_schema": schema}), spec.fn)
        return _text("changed")

    async def _tool_rename(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        return await self._replace_tool(ctx, _str_arg(args, "name"), {}, new_name=_str_arg(args, "new_name"))

    def _register_ops_tools(self) -> None:
        """`freeze` and `touch_resource` (only with `--ops-tools`), for health and subscription tests."""
        self._add(
            types.Tool(
                name="freeze",
                description="Block the whole process for `seconds` (nothing answers, pings included); "
                "then return 'thawed'.",
                input_schema=_schema({"seconds": {"type": "number", "minimum": 0}}, ["seconds"]),
                annotations=_READ_ONLY,
            ),
            self._tool_freeze,
        )
        self._add(
            types.Tool(
                name="touch_resource",
                description=f"Announce notifications/resources/updated for {STATIC_URI} (handshake era).",
                input_schema=_schema(),
                annotations=_annotations(read_only=False, idempotent=True),
            ),
            self._tool_touch_resource,
        )
        self._add(
            types.Tool(
                name="roots",
                description="Ask the client for its roots (roots/list); structuredContent {roots: [uri, ...]}.",
                input_schema=_schema(),
                annotations=_READ_ONLY,
            ),
            self._tool_roots,
        )

    def _subscription_handlers(self) -> dict[str, Any]:
        """With `--ops-tools`: resources/subscribe and unsubscribe, recorded in the events file."""
        if not self.config.ops_tools:
            return {}
        return {"on_subscribe_resource": self._subscribe, "on_unsubscribe_resource": self._unsubscribe}

    async def _subscribe(self, ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        self.state.subscribers.append(ctx.session)
        self.event(f"subscribed {params.uri}")
        return types.EmptyResult()

    async def _unsubscribe(self, ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        self.event(f"unsubscribed {params.uri}")
        return types.EmptyResult()

    # ----------------------------------------------------------------- protocol handlers

    def _input_schema(self, name: str) -> Mapping[str, Any] | None:
        spec = self.state.tools.get(name)
        return None if spec is None else spec.tool.input_schema

    async def _list_tools(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[spec.tool for spec in self.state.tools.values()])

    async def _call_tool(self, ctx: Ctx, params: types.CallToolRequestParams) -> ToolResult:
        spec = self.state.tools.get(params.name)
        if spec is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        if self.config.call_events:
            self.event(f"called {params.name}")
        try:
            return await spec.fn(ctx, params.arguments or {}, params)
        except _ArgError as exc:
            return _error(f"invalid arguments for {params.name}: {exc}")

    async def _list_resources(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        return types.ListResourcesResult(
            resources=[
                types.Resource(uri=STATIC_URI, name="static", description="Always 'static'.", mime_type="text/plain")
            ]
        )

    async def _read_resource(self, ctx: Ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        if params.uri != STATIC_URI:
            raise MCPError(types.INVALID_PARAMS, f"Unknown resource: {params.uri}")
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=STATIC_URI, text="static", mime_type="text/plain")]
        )

    async def _list_prompts(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return types.ListPromptsResult(
            prompts=[
                types.Prompt(
                    name="greet",
                    description="Greet someone by name.",
                    arguments=[types.PromptArgument(name="name", description="Who to greet", required=True)],
                )
            ]
        )

    async def _get_prompt(self, ctx: Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        if params.name != "greet":
            raise MCPError(types.INVALID_PARAMS, f"Unknown prompt: {params.name}")
        who = (params.arguments or {}).get("name")
        if who is None:
            raise MCPError(types.INVALID_PARAMS, "Missing required argument 'name'")
        return types.GetPromptResult(
            description="A greeting",
            messages=[types.PromptMessage(role="user", content=types.TextContent(text=f"Hello, {who}!"))],
        )

    async def _set_level(self, ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        self.state.legacy_log_level = params.level
        return types.EmptyResult()

    async def _announce_tools_changed(self, ctx: Ctx) -> None:
        # 2026-07-28: only `subscriptions/listen` streams carry change notifications. The bus
        # reaches every listen stream of this process, whichever connection opened it.
        await self.bus.publish(ToolsListChanged())
        if not _is_modern(ctx):
            # Handshake era: on the calling connection's standalone channel (other handshake
            # connections of an HTTP server are not told - fine for a fake).
            await ctx.session.send_tool_list_changed()

    # ----------------------------------------------------------------- tools

    async def _tool_echo_args(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        return _text(json.dumps(args, sort_keys=True))

    async def _tool_echo(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        text = _str_arg(args, "text")
        return _text(text, {"text": text})

    async def _tool_add(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        return _json_result({"sum": _num_arg(args, "a") + _num_arg(args, "b")})

    async def _tool_slow(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        seconds = _num_arg(args, "seconds")
        steps = _int_arg(args, "steps", default=5)
        if seconds < 0 or steps < 1:
            raise _ArgError("need seconds >= 0 and steps >= 1")
        for i in range(1, steps + 1):
            await anyio.sleep(seconds / steps)
            # A no-op when the caller sent no progress token.
            await ctx.session.report_progress(i, steps, f"step {i}/{steps}")
        return _text("done")

    async def _tool_hang(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        return await self._hang(ctx)

    async def _hang(self, ctx: Ctx) -> ToolResult:
        with self._recorded(ctx, "hang"):
            await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def _recorded(self, ctx: Ctx, what: str) -> Generator[None]:
        """Log `started <what> <id>`, then `finished <what> <id>`, or `cancelled`/`aborted <what> <id>`
        if the request is torn down."""
        self.event(f"started {what} {ctx.request_id}")
        torn_down = False
        try:
            yield
        except anyio.get_cancelled_exc_class():
            torn_down = True
            self.event(f"{'cancelled' if _peer_cancelled(ctx) else 'aborted'} {what} {ctx.request_id}")
            raise
        finally:
            if not torn_down:  # answered, or refused with an error
                self.event(f"finished {what} {ctx.request_id}")

    async def _tool_crash(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        self.event("crash")
        sys.stderr.flush()
        os._exit(1)

    async def _tool_pid(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        return _json_result({"pid": os.getpid()})

    async def _tool_add_tool(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        name = _str_arg(args, "name")
        if not name:
            raise _ArgError("argument 'name' must not be empty")
        if name in self.state.tools:
            return _text("exists")
        self._add_echo_tool(name, "Added at run time by add_tool: returns its arguments as JSON text.")
        await self._announce_tools_changed(ctx)
        return _text("added")

    async def _tool_remove_tool(
        self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams
    ) -> ToolResult:
        name = _str_arg(args, "name")
        if self.state.tools.pop(name, None) is None:
            return _text("absent")
        await self._announce_tools_changed(ctx)
        return _text("removed")

    async def _tool_log(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        level = _LEVELS.get(_str_arg(args, "level"))
        message = _str_arg(args, "message")
        if level is None:
            raise _ArgError(f"argument 'level' must be one of {list(_LEVELS)}")
        # 2026-07-28: the session drops it unless this request opted in via
        # `_meta["io.modelcontextprotocol/logLevel"]` (the SDK Client's `log_level=`).
        # Handshake era: filtered here by the level the client set with logging/setLevel.
        if _is_modern(ctx) or _SEVERITY[level] >= _SEVERITY[self.state.legacy_log_level]:
            await ctx.session.send_log_message(  # pyright: ignore[reportDeprecated]
                level, message, logger=self.config.name, related_request_id=ctx.request_id
            )
        return _text("logged")

    async def _tool_sample(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        prompt = _str_arg(args, "prompt")
        hang_after = args.get("hang_after") is True
        gate = args.get("gate")
        if isinstance(gate, str) and not (params.input_responses or {}):
            self.event(f"gated sample {ctx.request_id}")
            while not await anyio.Path(gate).exists():  # noqa: ASYNC110 - a test fixture: the test creates it
                await anyio.sleep(0.02)
        if _is_modern(ctx):
            # 2026-07-28 has no server-to-client requests: ask via InputRequiredResult and
            # answer when the client retries the call with `inputResponses`.
            response = (params.input_responses or {}).get(SAMPLE_KEY)
            if response is not None:
                if isinstance(response, types.CreateMessageResult | types.CreateMessageResultWithTools):
                    return await self._hang(ctx) if hang_after else _text(_sampling_text(response))
                return _error(f"sampling: unexpected input response {type(response).__name__}")
            caps = ctx.session.client_capabilities
            if caps is None or caps.sampling is None:
                return _error("sampling failed: the client did not declare the sampling capability")
            return types.InputRequiredResult(input_requests={SAMPLE_KEY: _sampling_request(prompt)})
        caps = ctx.session.client_capabilities
        if caps is None or caps.sampling is None:
            return _error("sampling failed: the client did not declare the sampling capability")
        try:
            with self._recorded(ctx, "sample"):
                result = await ctx.session.create_message(  # pyright: ignore[reportDeprecated]
                    _sampling_request(prompt).params.messages, max_tokens=50, related_request_id=ctx.request_id
                )
        except MCPError as exc:
            return _error(f"sampling failed: {exc}")
        return await self._hang(ctx) if hang_after else _text(_sampling_text(result))

    async def _tool_elicit(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        question = _str_arg(args, "question")
        caps = ctx.session.client_capabilities
        supported = caps is not None and caps.elicitation is not None
        if _is_modern(ctx):
            response = (params.input_responses or {}).get(ELICIT_KEY)
            if response is not None:
                if isinstance(response, types.ElicitResult):
                    return _elicit_result(response)
                return _error(f"elicitation: unexpected input response {type(response).__name__}")
            if not supported:
                return _error("elicitation failed: the client did not declare the elicitation capability")
            request = types.ElicitRequest(
                params=types.ElicitRequestFormParams(message=question, requested_schema=_ELICIT_SCHEMA)
            )
            return types.InputRequiredResult(input_requests={ELICIT_KEY: request})
        if not supported:
            return _error("elicitation failed: the client did not declare the elicitation capability")
        try:
            with self._recorded(ctx, "elicit"):
                result = await ctx.session.elicit_form(question, _ELICIT_SCHEMA, related_request_id=ctx.request_id)
        except MCPError as exc:
            return _error(f"elicitation failed: {exc}")
        return _elicit_result(result)

    async def _tool_fail(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        return _error(_str_arg(args, "message"))

    async def _tool_big(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        kb = _int_arg(args, "kb")
        if kb < 0:
            raise _ArgError("argument 'kb' must be >= 0")
        line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_\n"  # 64 bytes
        return _text((line * (kb * 16))[: kb * 1024])

    async def _tool_garbage(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        n = _int_arg(args, "n")
        if n < 0:
            raise _ArgError("argument 'n' must be >= 0")
        if self.wire_fd is None:
            return _error("garbage needs the stdio transport")
        for i in range(n):
            os.write(self.wire_fd, garbage_line(i))  # < PIPE_BUF: each line lands whole
        return _text(f"wrote {n} garbage lines")

    async def _tool_line_flood(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        mib = _num_arg(args, "mb")
        if mib < 0:
            raise _ArgError("argument 'mb' must be >= 0")
        fd = self.wire_fd
        if fd is None:
            return _error("line_flood needs the stdio transport")
        done = anyio.Event()
        token = anyio.lowlevel.current_token()

        def flood() -> None:
            remaining = int(mib * 1024 * 1024)
            chunk = memoryview(b"x" * _FLOOD_CHUNK)
            try:
                while remaining > 0:  # blocks for as long as nobody drains the pipe
                    remaining -= os.write(fd, chunk[: min(remaining, _FLOOD_CHUNK)])
            except OSError:
                pass  # the reader went away
            finally:
                with contextlib.suppress(RuntimeError):  # the event loop is gone
                    anyio.from_thread.run_sync(done.set, token=token)

        # A daemon thread, not a worker: a write blocked on a full pipe must not keep the
        # process alive after stdin EOF, nor keep the handler from being cancelled.
        threading.Thread(target=flood, name="line_flood", daemon=True).start()
        await done.wait()
        return _text(f"flooded {mib:g} MiB")

    async def _tool_headers(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        # Both HTTP transports (and both eras on them) hand the handler the Starlette request
        # that carried this message; on stdio there is none.
        request = ctx.request
        if not isinstance(request, Request):
            return _error("headers needs an HTTP transport")
        received: dict[str, str] = {}
        for name, value in request.headers.items():  # names come lower-case
            received[name] = f"{received[name]}, {value}" if name in received else value
        return _json_result(received)

    async def _tool_bad_output(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        # The lowlevel server sends the result as it is: checking it against the schema is the client's job.
        value = {"n": args.get("n", "seven")}
        if args.get("structured") is False:
            return _text(json.dumps(value))
        return _json_result(value)

    async def _tool_mark(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        label = _str_arg(args, "label")
        self.event(f"mark {label}")
        await anyio.sleep(_num_arg(args, "seconds") if "seconds" in args else 0)
        return _text(json.dumps({"label": label}))

    async def _tool_freeze(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        seconds = _num_arg(args, "seconds")
        self.event(f"frozen {seconds:g}")
        time.sleep(seconds)  # noqa: ASYNC251 - on purpose: the event loop stops, nothing at all is answered
        self.event("thawed")
        return _text("thawed")

    async def _tool_touch_resource(
        self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams
    ) -> ToolResult:
        await ctx.session.send_resource_updated(STATIC_URI)
        self.event(f"touched {STATIC_URI}")
        return _text("touched")

    async def _tool_roots(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        if _is_modern(ctx):
            response = (params.input_responses or {}).get(ROOTS_KEY)
            if response is None:
                return types.InputRequiredResult(input_requests={ROOTS_KEY: types.ListRootsRequest()})
            if not isinstance(response, types.ListRootsResult):
                return _error(f"roots: unexpected input response {type(response).__name__}")
            result = response
        else:
            try:
                result = await ctx.session.list_roots()  # pyright: ignore[reportDeprecated] - tested on purpose
            except MCPError as exc:
                return _error(f"roots failed: {exc}")
        return _json_result({"roots": [str(root.uri) for root in result.roots]})

    async def _tool_env(self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams) -> ToolResult:
        name = _str_arg(args, "name")
        return _json_result({"name": name, "set": name in os.environ})

    async def _tool_spawn_grandchild(
        self, ctx: Ctx, args: dict[str, Any], params: types.CallToolRequestParams
    ) -> ToolResult:
        # Same process group (no new session); no pipes of ours, so only a group kill stops it.
        child = await anyio.open_process(
            ["sleep", "300"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.state.grandchildren.append(child)
        return _json_result({"pid": child.pid})


# --------------------------------------------------------------------------- transports


async def _serve_streams(
    app: FaultApp,
    read_stream: ReadStream[SessionMessage | Exception],
    write_stream: WriteStream[SessionMessage],
) -> None:
    """Serve one connection over a stream pair (stdio, legacy SSE) until it closes."""
    server = app.server
    if not app.config.legacy_only:
        await server.run(read_stream, write_stream, server.create_initialization_options())
        return
    # The dual-era loop `Server.run` drives would lock the connection modern on the client's
    # enveloped `server/discover` probe, whatever the answer; the handshake-only loop leaves
    # the era to `initialize`.
    async with server.lifespan(server) as lifespan_state:
        await serve_loop(
            server,
            read_stream,
            write_stream,
            lifespan_state=lifespan_state,
            init_options=server.create_initialization_options(),
        )


async def serve_stdio(app: FaultApp) -> None:
    """Serve one connection over stdin/stdout until stdin closes (both eras)."""
    if app.config.stdout_tools:
        # `stdio_server` points fd 1 at stderr while serving; keep the pipe for the raw-write tools.
        app.wire_fd = os.dup(1)  # not inherited by children (O_CLOEXEC)
    try:
        async with stdio_server() as (read_stream, write_stream):
            await _serve_streams(app, read_stream, write_stream)
    finally:
        # Not closed: a line_flood thread may still be blocked writing to it.
        app.wire_fd = None


def _sse_app(app: FaultApp) -> Starlette:
    """The legacy HTTP+SSE transport: `GET /sse` opens a session, `POST /messages/` feeds it."""
    sse = SseServerTransport("/messages/")

    async def handle_sse(request: Request) -> Response:
        send = request._send  # pyright: ignore[reportPrivateUsage]  # the SDK's own recipe (mcp.server.sse)
        async with sse.connect_sse(request.scope, request.receive, send) as (read_stream, write_stream):
            await _serve_streams(app, read_stream, write_stream)
        return Response()

    return Starlette(
        routes=[Route("/sse", endpoint=handle_sse, methods=["GET"]), Mount("/messages/", app=sse.handle_post_message)]
    )


class _FailEvery:
    """Answers every Nth `tools/call` POST with HTTP 503 before the MCP app sees it (a flaky proxy)."""

    def __init__(self, inner: Any, app: FaultApp) -> None:
        self._inner = inner
        self._app = app
        self._calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self._inner(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if b'"tools/call"' in body:
            self._calls += 1
            if self._calls % self._app.config.http_fail_every == 0:
                self._app.event(f"http503 {self._calls}")
                await send({"type": "http.response.start", "status": 503, "headers": [(b"content-length", b"0")]})
                await send({"type": "http.response.body", "body": b""})
                return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self._inner(scope, replay, send)


async def serve_http(app: FaultApp, port: int, *, transport: Literal["http", "sse"] = "http") -> None:
    """Serve HTTP on 127.0.0.1:`port` (0 = pick a free one).

    `http`: streamable HTTP at `/mcp`. `sse`: the legacy HTTP+SSE transport at `/sse` (and
    `/messages/`). Prints `LISTENING <port>` to stderr once uvicorn accepts connections.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY on accept
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    bound_port: int = sock.getsockname()[1]
    asgi_app = _sse_app(app) if transport == "sse" else app.server.streamable_http_app(host="127.0.0.1")
    if app.config.http_fail_every > 0:
        asgi_app = _FailEvery(asgi_app, app)
    config = uvicorn.Config(
        asgi_app,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await anyio.sleep(0.01)
        print(f"LISTENING {bound_port}", file=sys.stderr, flush=True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(announce)
        await server.serve(sockets=[sock])
        tg.cancel_scope.cancel()
