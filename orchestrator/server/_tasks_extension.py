"""MCP tasks as the 2026-07-28 ``io.modelcontextprotocol/tasks`` extension has them: the server decides.

``server/discover`` lists the extension; a client says it handles tasks by naming the extension
in each request's ``_meta["io.modelcontextprotocol/clientCapabilities"].extensions``. Then every
``tools/call`` of a composite (with durable runs on) is answered with a task: a flat
``resultType: "task"`` result, sent once the run is in the journal (so ``tasks/get`` on it
resolves). A composite is the only tool here that can outlive a request, and a client that
declared the extension has said it handles a task wherever it could get one, so there is no
guessing at durations. A call that cannot start (an unknown tool aside: that is -32602 as
always) gets the error result the synchronous call gives, not a task. Downstream tools, and
clients without the extension, keep the synchronous call.

``tasks/get`` inlines the outcome: ``completed`` with the call's ``result`` (an ``isError``
result too, as the extension says: failed, interrupted and declined runs are completed tasks
whose result is an error), ``cancelled``, or ``working``; ``input_required`` with the
outstanding ``inputRequests`` while a run waits for input (``TaskInputs``).
``tasks/update`` hands ``inputResponses`` to the run, ``tasks/cancel`` cancels a running task
and acknowledges. There is no ``tasks/list`` and no ``tasks/result`` (-32601). A client that did
not declare the extension gets -32021 from every task method.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

import mcp_types as types
from mcp import MCPError
from mcp_types.methods import serialize_server_result
from pydantic import ValidationError

from orchestrator.errors import OrchestratorError, UnknownToolError
from orchestrator.server._access import request_principal
from orchestrator.server._durable import run_principal
from orchestrator.server._errors import request_error, tool_error_result
from orchestrator.server._extensions import client_declares, with_extension
from orchestrator.server._tasks import (
    CANCEL_REASON,
    POLL_INTERVAL_MS,
    TASKS_EXTENSION,
    find_task,
    iso_time,
    task_outcome,
    ttl_ms,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mcp.server.context import ServerRequestContext
    from mcp.server.lowlevel.server import Server

    from orchestrator.runs import RunManager
    from orchestrator.server._tasks import TaskHost, TaskInputs
    from orchestrator.store import RunRecord

__all__ = ["ExtensionTasks"]

logger = logging.getLogger(__name__)


def _mapping(value: object) -> dict[str, Any] | None:
    """``value`` if it is a JSON object."""
    return cast("dict[str, Any]", value) if isinstance(value, dict) else None


def require_tasks(ctx: ServerRequestContext[Any, Any]) -> None:
    """Refuse a task method to a client that did not declare the extension.

    Raises:
        MCPError: -32021 (missing required client capability), naming the extension.
    """
    if client_declares(ctx, TASKS_EXTENSION):
        return
    data = types.MissingRequiredClientCapabilityErrorData(
        required_capabilities=types.ClientCapabilities(extensions={TASKS_EXTENSION: {}})
    )
    raise MCPError(
        code=types.MISSING_REQUIRED_CLIENT_CAPABILITY,
        message=f"Missing required client capability: the {TASKS_EXTENSION} extension",
        data=data.model_dump(mode="json", by_alias=True, exclude_none=True),
    )


class ExtensionTasks:
    """The tasks extension's methods over the run journal, for one server."""

    def __init__(self, host: TaskHost, lowlevel: Server[Any], inputs: Callable[[], TaskInputs]) -> None:
        self._host = host
        self._lowlevel = lowlevel
        self._inputs = inputs

    @staticmethod
    def advertise(result: dict[str, Any]) -> dict[str, Any]:
        """A ``server/discover`` result that lists the extension."""
        return with_extension(result, TASKS_EXTENSION)

    def _task(self, record: RunRecord, status: str) -> dict[str, Any]:
        task: dict[str, Any] = {"taskId": record.id, "status": status}
        if record.error and status != "working":
            task["statusMessage"] = record.error
        task.update(
            createdAt=iso_time(record.created_at),
            lastUpdatedAt=iso_time(record.updated_at),
            ttlMs=ttl_ms(self._host.task_ttl),
            pollIntervalMs=POLL_INTERVAL_MS,
        )
        return task

    def _stamped(self, result: dict[str, Any]) -> dict[str, Any]:
        """``result`` with the ``serverInfo`` stamp every 2026-07-28 result carries (a middleware's own)."""
        kept = _mapping(result.get("_meta")) or {}
        result["_meta"] = {**kept, types.SERVER_INFO_META_KEY: self._lowlevel.server_info_stamp}
        return result

    async def intercept(self, ctx: ServerRequestContext[Any, Any]) -> dict[str, Any] | None:
        """Answer a composite's ``tools/call`` with a task, for a client that declared the extension.

        ``None`` for every other call: it goes on as a synchronous one.

        Raises:
            MCPError: -32602 for a tool the caller may not call.
        """
        if not client_declares(ctx, TASKS_EXTENSION):
            return None
        raw = ctx.params or {}
        name = raw.get("name")
        if not isinstance(name, str) or name not in self._host.composites.names:
            return None
        try:
            params = types.CallToolRequestParams.model_validate(raw, by_name=False)
        except ValidationError:
            return None  # the call itself says what is wrong with it
        principal = request_principal(ctx)
        try:
            started = await self._host.call_as_task(name, params.arguments or {}, principal)
        except UnknownToolError as exc:
            raise request_error(exc) from exc
        except OrchestratorError as exc:  # withdrawn, invalid arguments, no journal: nothing started
            started = tool_error_result(exc)
        if isinstance(started, types.CallToolResult):  # the result the synchronous call gives
            dumped = started.model_dump(mode="json", by_alias=True, exclude_none=True)
            return self._stamped(serialize_server_result("tools/call", ctx.protocol_version, dumped))
        logger.info("task %s started: %r (2026-07-28 tasks extension)", started.id, name)
        return self._stamped({"resultType": "task", **self._task(started, "working")})

    async def get(self, ctx: ServerRequestContext[Any, Any], runs: RunManager, task_id: str) -> dict[str, Any]:
        """``tasks/get``: the task with its outcome (result, or outstanding input) inlined.

        Raises:
            MCPError: -32021 without the extension; -32602 when the caller has no such task;
                -32603 when the journal cannot be read.
        """
        require_tasks(ctx)
        record = await find_task(runs, ctx, task_id)
        if record.status == "running":
            outstanding = self._inputs().outstanding(record)
            if outstanding:
                return {**self._task(record, "input_required"), "inputRequests": dict(outstanding)}
            return self._task(record, "working")
        if record.status == "cancelled":
            return self._task(record, "cancelled")
        return {**self._task(record, "completed"), "result": task_outcome(record, ctx.protocol_version)}

    async def update(
        self, ctx: ServerRequestContext[Any, Any], runs: RunManager, task_id: str, responses: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``tasks/update``: hand ``inputResponses`` to the task's run; an acknowledgement.

        Raises:
            MCPError: -32021 without the extension; -32602 when the caller has no such task;
                -32603 when the journal cannot be read.
        """
        require_tasks(ctx)
        record = await find_task(runs, ctx, task_id)
        await self._inputs().answer(record, responses)
        return {}

    async def cancel(self, ctx: ServerRequestContext[Any, Any], runs: RunManager, task_id: str) -> dict[str, Any]:
        """``tasks/cancel``: cancel the task's run if it is running; an acknowledgement either way.

        Raises:
            MCPError: -32021 without the extension; -32602 when the caller has no such task;
                -32603 when the journal cannot be read or written.
        """
        require_tasks(ctx)
        record = await find_task(runs, ctx, task_id)
        if record.status == "running":
            try:
                await runs.cancel(task_id, run_principal(request_principal(ctx)), CANCEL_REASON)
            except OrchestratorError as exc:
                raise request_error(exc) from exc
        return {}
