"""MCP tasks: what both protocol eras share. A task is a durable run, seen through the protocol.

A task's id is its run's id (32 hex characters from a random UUID: unguessable); its status,
times and result come from the run journal (``orchestrator.runs``), so a task outlives the
request that started it and the process that ran it. A task is bound to the principal that
started it: looked up with anyone else's principal it does not exist, with the same error as
an unknown id (no oracle). Every composite run is a task, a synchronous call's run too: its run
id is in its result's ``_meta``.

The eras differ in everything else (``_tasks_legacy``: 2025-11-25, ``_tasks_extension``: the
2026-07-28 ``io.modelcontextprotocol/tasks`` extension); ``_task_methods`` routes requests to
them. This module maps runs to the values both need, and raises the protocol errors both use.
Deliberately does not: start runs or check grants (the server, through ``TaskHost``), or wait
for input a run needs (``TaskInputs``: approval steps answer there).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC
from typing import TYPE_CHECKING, Any, Protocol, cast

import mcp_types as types
from mcp import MCPError
from mcp_types.methods import serialize_server_result

from orchestrator.errors import OrchestratorError, WorkflowExecutionError
from orchestrator.server._access import request_principal
from orchestrator.server._composites import RUN_META_KEY
from orchestrator.server._durable import run_principal
from orchestrator.server._errors import request_error, tool_error_result
from orchestrator.workflow import RUN_STEP

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from mcp.server.context import ServerRequestContext

    from orchestrator.auth import Principal
    from orchestrator.runs import RunManager
    from orchestrator.server._composites import Composites
    from orchestrator.store import RunRecord

__all__ = [
    "CANCEL_REASON",
    "POLL_INTERVAL_MS",
    "RELATED_TASK_META_KEY",
    "TASKS_EXTENSION",
    "NoTaskInputs",
    "TaskHost",
    "TaskInputs",
    "decode_cursor",
    "encode_cursor",
    "find_task",
    "iso_time",
    "task_not_found",
    "task_outcome",
    "ttl_ms",
]

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
"""The 2026-07-28 tasks extension's identifier (``server/discover`` and the client's per-request capabilities)."""

RELATED_TASK_META_KEY = "io.modelcontextprotocol/related-task"
"""``_meta`` key tying a 2025-11-25 message to its task: ``{"taskId": ...}``."""

POLL_INTERVAL_MS = 1000
"""How often a client is asked to poll ``tasks/get``: workflows take seconds to minutes."""

CANCEL_REASON = "cancelled by tasks/cancel"
"""Why a run cancelled through its task ended (its ``error``, the task's ``statusMessage``)."""


class TaskHost(Protocol):
    """What the task methods need from the server that serves them."""

    runs: RunManager | None
    """Where runs are journalled; ``None``: durable runs are off, and so are tasks."""

    task_ttl: float | None
    """Seconds a task is kept after it was created, at least (``runs.retention``); ``None``: unlimited."""

    composites: Composites

    async def runs_as_task(self, name: str, principal: Principal) -> bool:
        """Whether tool ``name`` can run as a task (a composite, with durable runs on).

        Raises:
            UnknownToolError: ``principal`` may not call ``name``, or there is no such tool.
        """
        ...

    async def call_as_task(
        self, name: str, arguments: dict[str, Any], principal: Principal
    ) -> RunRecord | types.CallToolResult:
        """Start composite ``name`` as a task through a call's checks; a refused call's error result.

        Raises:
            UnknownToolError: ``principal`` may not call ``name``, or it is not a composite.
            OrchestratorError: Nothing started: the composite is withdrawn, the arguments are
                invalid, or the journal cannot be written.
        """
        ...


class TaskInputs(Protocol):
    """Input a running task waits for (an approval step's question): the seam for approvals.

    A 2026-07-28 ``tasks/get`` shows what is outstanding (status ``input_required``) and
    ``tasks/update`` delivers the answers.
    """

    def outstanding(self, record: RunRecord) -> Mapping[str, Any] | None:
        """The input requests run ``record`` waits on, by key; ``None`` when it waits on none."""
        ...

    async def answer(self, record: RunRecord, responses: Mapping[str, Any]) -> None:
        """Deliver ``responses`` (by input request key) to run ``record``.

        Responses to keys that are not outstanding are ignored, as the extension says.
        """
        ...


class NoTaskInputs:
    """No run ever waits for input through its task: nothing is outstanding, every answer is ignored."""

    def outstanding(self, record: RunRecord) -> Mapping[str, Any] | None:
        """Nothing: no input is pending."""
        return None

    async def answer(self, record: RunRecord, responses: Mapping[str, Any]) -> None:
        """Ignore ``responses``: no input is pending (the extension says to ignore such keys)."""
        return


def iso_time(moment: datetime) -> str:
    """``moment`` as an ISO 8601 UTC timestamp (``2026-07-28T10:30:00.125Z``), as tasks carry times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ttl_ms(seconds: float | None) -> int | None:
    """A task's time to live in milliseconds (``None``: unlimited)."""
    return None if seconds is None else round(seconds * 1000)


def task_outcome(record: RunRecord, protocol_version: str) -> dict[str, Any]:
    """The ``tools/call`` result of a finished run, shaped for ``protocol_version``: what the call returns.

    A run that ended without a result (cancelled, or not resumable) gives the error result a
    call would have given: ``isError`` with the run's error, naming the run.
    """
    outcome: Mapping[str, Any] | None = record.outcome
    if outcome is None:
        message = record.error or f"the run ended {record.status}"
        run = {"run_id": record.id, "status": record.status, "failed_step": RUN_STEP}
        error = tool_error_result(WorkflowExecutionError(record.id, RUN_STEP, message), {RUN_META_KEY: run})
        outcome = error.model_dump(mode="json", by_alias=True, exclude_none=True)
    # The same sieve a synchronous result passes through, so the shape is the era's.
    return serialize_server_result("tools/call", protocol_version, outcome)


def task_not_found(task_id: str) -> MCPError:
    """The error for a task that does not exist, or is not the caller's (the spec's -32602)."""
    return MCPError(code=types.INVALID_PARAMS, message=f"Failed to retrieve task: Task not found ({task_id!r})")


def encode_cursor(offset: int) -> str:
    """An opaque ``tasks/list`` cursor for the page that starts at ``offset``."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    """The offset a ``tasks/list`` cursor stands for (0 for none).

    Raises:
        MCPError: Not a cursor this server made (-32602, as the spec says).
    """
    if cursor is None:
        return 0
    try:
        value: object = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, UnicodeError, ValueError):
        value = None
    offset: object = cast("dict[str, Any]", value).get("offset") if isinstance(value, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise MCPError(code=types.INVALID_PARAMS, message=f"Invalid cursor {cursor!r} for tasks/list")
    return offset


async def find_task(runs: RunManager, ctx: ServerRequestContext[Any, Any], task_id: str) -> RunRecord:
    """The run ``task_id`` if the request's principal started it.

    Raises:
        MCPError: -32602 when the principal has no such run (whoever else may have one);
            -32603 when the journal cannot be read.
    """
    try:
        record = await runs.get(task_id, run_principal(request_principal(ctx)))
    except OrchestratorError as exc:
        raise request_error(exc) from exc
    if record is None:
        raise task_not_found(task_id)
    return record
