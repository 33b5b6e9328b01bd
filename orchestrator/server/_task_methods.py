"""Where MCP tasks hook into the low-level server: one middleware and the ``tasks/*`` methods.

The SDK serves no task method in either era, so this module adds them, each routed to the
era of the request: ``_tasks_legacy`` for the 2025-11-25 handshake, ``_tasks_extension`` for
2026-07-28. A task-augmented ``tools/call`` is answered from the middleware (a handler's
``tools/call`` result must be a ``CallToolResult``; a middleware that answers owns its
result), which also puts ``capabilities.tasks`` in the handshake and the extension in
``server/discover``. With durable runs off (``runs.journal: false``, or no composites) none of
this is offered: the methods are not found, and a ``params.task`` is ignored as the spec says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

from orchestrator.server._tasks import NoTaskInputs
from orchestrator.server._tasks_extension import ExtensionTasks
from orchestrator.server._tasks_legacy import LegacyTasks

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
    from mcp.server.lowlevel.server import Server

    from orchestrator.runs import RunManager
    from orchestrator.server._tasks import TaskHost, TaskInputs

__all__ = ["TaskMethods", "UpdateTaskRequestParams"]

_TASK_SUPPORT = types.ToolExecution(task_support="optional")
"""What a composite tool says while tasks are offered: a client may, never must, ask for one."""


class UpdateTaskRequestParams(types.RequestParams):
    """``tasks/update`` of the 2026-07-28 extension (not in the SDK's types)."""

    task_id: str
    input_responses: dict[str, Any] = Field(default_factory=dict[str, Any])


class TaskMethods:
    """Serves MCP tasks for ``host`` on ``lowlevel``, in both eras, while ``host.runs`` is set.

    Attributes:
        inputs: Input that running tasks wait for (an approval step's question); none by default.
    """

    def __init__(self, host: TaskHost, lowlevel: Server[Any]) -> None:
        self._host = host
        self.inputs: TaskInputs = NoTaskInputs()
        self._legacy = LegacyTasks(host)
        self._extension = ExtensionTasks(host, lowlevel, lambda: self.inputs)
        self._listed: tuple[Sequence[types.Tool], list[types.Tool]] | None = None
        lowlevel.middleware.append(self._middleware)
        lowlevel.add_request_handler("tasks/get", types.GetTaskRequestParams, self._get)
        lowlevel.add_request_handler("tasks/result", types.GetTaskPayloadRequestParams, self._result)
        lowlevel.add_request_handler("tasks/list", types.PaginatedRequestParams, self._list)
        lowlevel.add_request_handler("tasks/cancel", types.CancelTaskRequestParams, self._cancel)
        lowlevel.add_request_handler("tasks/update", UpdateTaskRequestParams, self._update)

    def with_task_support(self, composites: Sequence[types.Tool]) -> list[types.Tool]:
        """``composites`` as listed while tasks are offered: ``execution.taskSupport: "optional"``.

        The 2026-07-28 listing drops ``execution`` (the SDK's sieve): there the extension in
        ``server/discover`` says it. Made once per change of the composites.
        """
        cached = self._listed
        if cached is not None and cached[0] is composites:
            return cached[1]
        listed = [tool.model_copy(update={"execution": _TASK_SUPPORT}) for tool in composites]
        self._listed = (composites, listed)
        return listed

    async def _middleware(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if self._host.runs is None:
            return await call_next(ctx)
        modern = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
        if ctx.method == "tools/call":
            era = self._extension if modern else self._legacy
            task = await era.intercept(ctx)
            return task if task is not None else await call_next(ctx)
        result = await call_next(ctx)
        if isinstance(result, dict):
            if ctx.method == "initialize":
                return self._legacy.advertise(result)
            if ctx.method == "server/discover":
                return self._extension.advertise(result)
        return result

    def _runs(self, ctx: ServerRequestContext[Any, Any], *, legacy: bool = True, modern: bool = True) -> RunManager:
        """The run manager, if the request's method is served in its era with tasks on.

        Raises:
            MCPError: -32601: tasks are off, or the method does not exist in the request's era.
        """
        runs = self._host.runs
        allowed = modern if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS else legacy
        if runs is None or not allowed:
            raise MCPError(code=types.METHOD_NOT_FOUND, message="Method not found", data=ctx.method)
        return runs

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: types.GetTaskRequestParams) -> HandlerResult:
        runs = self._runs(ctx)
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return await self._extension.get(ctx, runs, params.task_id)
        return await self._legacy.get(ctx, runs, params.task_id)

    async def _result(
        self, ctx: ServerRequestContext[Any, Any], params: types.GetTaskPayloadRequestParams
    ) -> HandlerResult:
        return await self._legacy.result(ctx, self._runs(ctx, modern=False), params.task_id)

    async def _list(self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams) -> HandlerResult:
        return await self._legacy.list(ctx, self._runs(ctx, modern=False), params.cursor)

    async def _cancel(
        self, ctx: ServerRequestContext[Any, Any], params: types.CancelTaskRequestParams
    ) -> HandlerResult:
        runs = self._runs(ctx)
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return await self._extension.cancel(ctx, runs, params.task_id)
        return await self._legacy.cancel(ctx, runs, params.task_id)

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskRequestParams) -> HandlerResult:
        runs = self._runs(ctx, legacy=False)
        return await self._extension.update(ctx, runs, params.task_id, params.input_responses)
