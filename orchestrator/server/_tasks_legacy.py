"""MCP tasks as the 2025-11-25 protocol has them: the client asks for a task, then polls it.

The handshake declares ``capabilities.tasks`` (list, cancel, task-augmented ``tools/call``);
composite tools say ``execution.taskSupport: "optional"``. A ``tools/call`` with
``params.task`` on a composite starts a durable run and answers ``CreateTaskResult`` at once
(``status: working``); the client's ``ttl`` is not taken: a task is kept as long as its run
(``runs.retention``). ``tasks/get`` reads the run, ``tasks/result`` waits until it is over and
answers exactly what the synchronous call returns (with ``_meta`` naming the task),
``tasks/list`` pages through the caller's runs, newest first, and ``tasks/cancel`` cancels a
running one (it is ``cancelled`` in the journal before the reply).

Statuses: running -> ``working``, or ``input_required`` while an approval step waits (then
``tasks/result`` asks it, see ``_task_inputs``); succeeded -> ``completed``; failed,
interrupted and declined -> ``failed`` (the run's error is the ``statusMessage``, and its
error result is ``tasks/result``'s); cancelled -> ``cancelled``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final, cast

import anyio
import mcp_types as types
from mcp import MCPError
from mcp.shared.message import ServerMessageMetadata
from pydantic import ValidationError

from orchestrator.errors import OrchestratorError
from orchestrator.runs import approval_answer
from orchestrator.server._access import request_principal
from orchestrator.server._durable import run_principal
from orchestrator.server._errors import refused_call_error, request_error
from orchestrator.server._task_inputs import approval_request_params, waits_for_input
from orchestrator.server._tasks import (
    CANCEL_REASON,
    POLL_INTERVAL_MS,
    RELATED_TASK_META_KEY,
    decode_cursor,
    encode_cursor,
    find_task,
    iso_time,
    task_not_found,
    task_outcome,
    ttl_ms,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mcp.server.context import ServerRequestContext

    from orchestrator.runs import RunManager
    from orchestrator.server._tasks import TaskHost
    from orchestrator.store import RunRecord

__all__ = ["TASKS_CAPABILITY", "TASKS_HANDSHAKE_VERSIONS", "LegacyTasks", "legacy_status"]

logger = logging.getLogger(__name__)

TASKS_HANDSHAKE_VERSIONS: Final = frozenset({"2025-11-25"})
"""Handshake versions that have tasks (they came with 2025-11-25)."""

TASKS_CAPABILITY: Final[Mapping[str, Any]] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
"""``capabilities.tasks`` in the handshake."""

_PAGE_SIZE = 50
"""Tasks per ``tasks/list`` page."""

_RESULT_POLL = 1.0
"""Seconds between looks at the journal while ``tasks/result`` waits on a run held elsewhere."""


def _related(task_id: str) -> dict[str, Any]:
    """The ``_meta`` entry tying a message to task ``task_id``."""
    return {RELATED_TASK_META_KEY: {"taskId": task_id}}


def _can_elicit(ctx: ServerRequestContext[Any, Any]) -> bool:
    caps = ctx.session.client_capabilities
    return caps is not None and caps.elicitation is not None


_IMMEDIATE_RESPONSE_META_KEY = "io.modelcontextprotocol/model-immediate-response"
"""``_meta`` key of a ``CreateTaskResult``: what a host may tell the model while the task runs."""


def legacy_status(record: RunRecord) -> str:
    """The 2025-11-25 task status of run ``record``."""
    if record.status == "running":
        return "input_required" if waits_for_input(record) else "working"
    if record.status == "succeeded":
        return "completed"
    if record.status == "cancelled":
        return "cancelled"
    return "failed"  # failed, interrupted, declined: its result is an error result


class LegacyTasks:
    """The 2025-11-25 task methods over the run journal, for one server."""

    def __init__(self, host: TaskHost) -> None:
        self._host = host

    def task(self, record: RunRecord) -> dict[str, Any]:
        """Run ``record`` as a ``Task`` on the wire (``ttl`` is always there: ``null`` is unlimited)."""
        status = legacy_status(record)
        task: dict[str, Any] = {"taskId": record.id, "status": status}
        if status in ("failed", "cancelled") and record.error:
            task["statusMessage"] = record.error
        task.update(
            createdAt=iso_time(record.created_at),
            lastUpdatedAt=iso_time(record.updated_at),
            ttl=ttl_ms(self._host.task_ttl),
            pollInterval=POLL_INTERVAL_MS,
        )
        return task

    @staticmethod
    def advertise(result: dict[str, Any]) -> dict[str, Any]:
        """An ``initialize`` result with ``capabilities.tasks``, when the negotiated version has tasks."""
        capabilities: object = result.get("capabilities")
        if result.get("protocolVersion") in TASKS_HANDSHAKE_VERSIONS and isinstance(capabilities, dict):
            result["capabilities"] = {**cast("dict[str, Any]", capabilities), "tasks": TASKS_CAPABILITY}
        return result

    async def intercept(self, ctx: ServerRequestContext[Any, Any]) -> dict[str, Any] | None:
        """Answer a task-augmented ``tools/call`` with its task; ``None`` for any other call.

        Raises:
            MCPError: -32601 for a tool without task support, -32602 for an unknown (or not
                granted) tool or invalid arguments, -32603 when nothing could start.
        """
        raw = ctx.params or {}
        if not isinstance(raw.get("task"), dict):
            return None
        try:
            params = types.CallToolRequestParams.model_validate(raw, by_name=False)
        except ValidationError:
            return None  # the call itself says what is wrong with it
        principal = request_principal(ctx)
        try:
            if not await self._host.runs_as_task(params.name, principal):
                raise MCPError(
                    code=types.METHOD_NOT_FOUND,
                    message=f"Tool {params.name!r} does not support task-augmented execution",
                )
            started = await self._host.call_as_task(params.name, params.arguments or {}, principal)
        except OrchestratorError as exc:
            raise request_error(exc) from exc
        if isinstance(started, types.CallToolResult):
            raise refused_call_error(started)
        logger.info("task %s started: %r (2025-11-25 tasks)", started.id, params.name)
        immediate = f"{params.name} is running as task {started.id}; its result comes with tasks/result."
        return {"task": self.task(started), "_meta": {_IMMEDIATE_RESPONSE_META_KEY: immediate}}

    async def get(self, ctx: ServerRequestContext[Any, Any], runs: RunManager, task_id: str) -> dict[str, Any]:
        """``tasks/get``: the task as the journal has it now.

        Raises:
            MCPError: -32602 when the caller has no such task; -32603 when the journal cannot be read.
        """
        return self.task(await find_task(runs, ctx, task_id))

    async def result(self, ctx: ServerRequestContext[Any, Any], runs: RunManager, task_id: str) -> dict[str, Any]:
        """``tasks/result``: wait until the task is over, then its call's result, naming the task.

        While it waits, an approval the run asks is sent to the client as an elicitation on
        this request (tied to the task by ``_meta``), and the answer recorded; a client that
        cannot answer elicitations leaves the question in the journal (``orchestrator runs
        approve``, or its timeout, decides).

        Raises:
            MCPError: -32602 when the caller has no such task; -32603 when the journal cannot be read.
        """
        principal = run_principal(request_principal(ctx))
        asked: set[str] = set()
        try:
            while True:
                changed = runs.watch(task_id)
                record = await find_task(runs, ctx, task_id)
                if record.status != "running":
                    break
                for request in runs.pending_approvals(record):
                    if request.step_id not in asked and _can_elicit(ctx):
                        asked.add(request.step_id)
                        answer = await self._ask(ctx, record.id, approval_request_params(request, _related(record.id)))
                        await runs.answer(record.id, principal, request.step_id, approved=answer, by="task client")
                with anyio.move_on_after(_RESULT_POLL):  # a run another process holds changes unseen here
                    await changed.wait()
        except OrchestratorError as exc:
            raise request_error(exc) from exc
        result = task_outcome(record, ctx.protocol_version)
        meta: object = result.get("_meta")
        kept = cast("dict[str, Any]", meta) if isinstance(meta, dict) else {}
        result["_meta"] = {**kept, **_related(record.id)}
        return result

    @staticmethod
    async def _ask(ctx: ServerRequestContext[Any, Any], task_id: str, params: dict[str, Any]) -> bool:
        """Send one approval elicitation to the client; whether it approved (an error declines)."""
        request = types.ElicitRequest(params=types.ElicitRequestFormParams.model_validate(params))
        metadata = ServerMessageMetadata(related_request_id=ctx.request_id)
        try:
            result = await ctx.session.send_request(request, types.ElicitResult, metadata=metadata)
        except MCPError as exc:
            logger.info("task %s: the client could not answer an approval: %s", task_id, exc.message)
            return False
        return approval_answer(result) == "approved"

    async def list(self, ctx: ServerRequestContext[Any, Any], runs: RunManager, cursor: str | None) -> dict[str, Any]:
        """``tasks/list``: a page of the caller's tasks, newest first.

        Raises:
            MCPError: -32602 for a cursor this server did not make; -32603 when the journal
                cannot be read.
        """
        offset = decode_cursor(cursor)
        try:
            records = await runs.list(run_principal(request_principal(ctx)), limit=offset + _PAGE_SIZE + 1)
        except OrchestratorError as exc:
            raise request_error(exc) from exc
        result: dict[str, Any] = {"tasks": [self.task(record) for record in records[offset : offset + _PAGE_SIZE]]}
        if len(records) > offset + _PAGE_SIZE:
            result["nextCursor"] = encode_cursor(offset + _PAGE_SIZE)
        return result

    async def cancel(self, ctx: ServerRequestContext[Any, Any], runs: RunManager, task_id: str) -> dict[str, Any]:
        """``tasks/cancel``: cancel a running task; it is ``cancelled`` in the journal when this answers.

        Raises:
            MCPError: -32602 when the caller has no such task, or it is over already; -32603
                when the journal cannot be read or written.
        """
        record = await find_task(runs, ctx, task_id)
        if record.status == "running":
            try:
                record = await runs.cancel(task_id, run_principal(request_principal(ctx)), CANCEL_REASON)
            except OrchestratorError as exc:
                raise request_error(exc) from exc
            if record is None:
                raise task_not_found(task_id)
            if record.status == "cancelled":
                return self.task(record)
        # Over already (or it ended while being cancelled): the spec's -32602.
        status = legacy_status(record)
        raise MCPError(code=types.INVALID_PARAMS, message=f"Cannot cancel task: already in terminal status {status!r}")
