"""What an SDK client needs to use MCP tasks, which the SDK (2.3.0) types but does not run.

2025-11-25: the client asks for a task with ``params.task``; the SDK checks every ``tools/call``
result as a ``CallToolResult``, so the ``CreateTaskResult`` is read through the session's raw
channel (``create_legacy_task``); the ``tasks/*`` methods go through ``send_request`` with the
SDK's own request types. 2026-07-28: ``TasksExtension`` declares
``io.modelcontextprotocol/tasks`` and claims the ``resultType: "task"`` result, so
``Client.call_tool`` polls the task to its result transparently, while
``client.session.call_tool(..., allow_claimed=True)`` hands the task itself to a test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import anyio
import mcp_types as types
from mcp import MCPError
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mcp import Client
    from mcp.client.session import ClientSession

__all__ = [
    "TASKS_EXTENSION",
    "TERMINAL",
    "CreatedTask",
    "TasksExtension",
    "cancel_task",
    "create_legacy_task",
    "get_task",
    "list_tasks",
    "task_result",
    "update_task",
    "wait_for_status",
]

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
TERMINAL = frozenset({"completed", "failed", "cancelled"})
_POLL = 0.05
"""Seconds between polls in tests (shorter than the server's suggestion: tests wait on the server)."""


class _Wire(BaseModel):
    """Any result, its fields as the wire has them."""

    model_config = ConfigDict(extra="allow")


async def _send(session: ClientSession, request: types.Request[Any, Any]) -> dict[str, Any]:
    reply = await session.send_request(request, _Wire)
    return dict(reply.model_extra or {})


class CreatedTask(types.Result):
    """A 2026-07-28 ``CreateTaskResult``: the flat task handle."""

    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    created_at: str
    last_updated_at: str
    ttl_ms: int | None
    poll_interval_ms: int | None = None


class _GetTask(types.GetTaskRequest):
    name_param = "taskId"  # the extension routes task methods by Mcp-Name


class _CancelTask(types.CancelTaskRequest):
    name_param = "taskId"


class _UpdateTaskParams(types.RequestParams):
    task_id: str
    input_responses: dict[str, Any] = Field(default_factory=dict[str, Any])


class _UpdateTask(types.Request[_UpdateTaskParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    params: _UpdateTaskParams
    name_param = "taskId"


async def get_task(session: ClientSession, task_id: str) -> dict[str, Any]:
    """``tasks/get`` as the wire has it (either era).

    Raises:
        MCPError: The server's error.
    """
    return await _send(session, _GetTask(params=types.GetTaskRequestParams(task_id=task_id)))


async def cancel_task(session: ClientSession, task_id: str) -> dict[str, Any]:
    """``tasks/cancel`` (either era).

    Raises:
        MCPError: The server's error.
    """
    return await _send(session, _CancelTask(params=types.CancelTaskRequestParams(task_id=task_id)))


async def update_task(session: ClientSession, task_id: str, responses: dict[str, Any]) -> dict[str, Any]:
    """``tasks/update`` (2026-07-28).

    Raises:
        MCPError: The server's error.
    """
    request = _UpdateTask(params=_UpdateTaskParams(task_id=task_id, input_responses=responses))
    return await _send(session, request)


async def task_result(session: ClientSession, task_id: str) -> dict[str, Any]:
    """``tasks/result`` (2025-11-25): blocks until the task is over.

    Raises:
        MCPError: The server's error.
    """
    request = types.GetTaskPayloadRequest(params=types.GetTaskPayloadRequestParams(task_id=task_id))
    return await _send(session, request)


async def list_tasks(session: ClientSession, cursor: str | None = None) -> dict[str, Any]:
    """One page of ``tasks/list`` (2025-11-25).

    Raises:
        MCPError: The server's error.
    """
    params = types.PaginatedRequestParams(cursor=cursor) if cursor is not None else None
    return await _send(session, types.ListTasksRequest(params=params))


async def create_legacy_task(
    client: Client, name: str, arguments: dict[str, Any], *, ttl: int | None = 60_000
) -> dict[str, Any]:
    """A task-augmented ``tools/call`` on a 2025-11-25 session; its ``CreateTaskResult``.

    Raises:
        MCPError: The server refused the task.
    """
    params: dict[str, Any] = {"name": name, "arguments": arguments, "task": {} if ttl is None else {"ttl": ttl}}
    # The SDK's send_request checks a tools/call result against CallToolResult, which a
    # CreateTaskResult is not: the session's dispatcher sends it as the SDK would, unchecked.
    dispatcher = client.session._dispatcher  # pyright: ignore[reportPrivateUsage]
    headers = {"mcp-protocol-version": client.protocol_version}
    return await dispatcher.send_raw_request("tools/call", params, {"headers": headers})


async def wait_for_status(
    session: ClientSession, task_id: str, statuses: Sequence[str] = tuple(TERMINAL), *, timeout: float = 30.0
) -> dict[str, Any]:
    """Poll ``tasks/get`` until the task's status is one of ``statuses``; that ``tasks/get`` result.

    Raises:
        TimeoutError: Not within ``timeout`` seconds (the last status is in the message).
    """
    last: dict[str, Any] = {}
    with anyio.move_on_after(timeout):
        while True:
            last = await get_task(session, task_id)
            if last["status"] in statuses:
                return last
            await anyio.sleep(_POLL)
    raise TimeoutError(f"task {task_id} did not reach {sorted(statuses)} in {timeout}s; last: {last}")


class TasksExtension(ClientExtension):
    """The 2026-07-28 tasks extension on the client side: a task result is polled to its outcome."""

    identifier = TASKS_EXTENSION

    def claims(self) -> Sequence[ResultClaim[Any]]:
        """The ``resultType: "task"`` of ``tools/call``."""
        return (ResultClaim(result_type="task", model=CreatedTask, resolve=self._resolve),)

    async def _resolve(self, task: CreatedTask, ctx: ClaimContext) -> types.CallToolResult:
        done = await wait_for_status(ctx.session, task.task_id, ("completed", "failed", "cancelled"))
        if done["status"] == "failed":
            error = done["error"]
            raise MCPError(code=error["code"], message=error["message"], data=error.get("data"))
        if done["status"] == "cancelled":
            raise MCPError(code=types.INTERNAL_ERROR, message=f"task {task.task_id} was cancelled")
        return types.CallToolResult.model_validate(done["result"], by_name=False)
