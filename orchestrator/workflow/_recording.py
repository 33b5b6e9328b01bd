"""Recordings of a run's downstream calls, and answering a run from one (golden tests, replays).

A ``RecordingInvoker`` wraps the invoker a run would use and keeps one ``RecordedCall`` per
call: what was asked, and what came back (the result as MCP wire JSON, or the error's type
and words). A ``ReplayInvoker`` answers a run from those records alone, so a workflow can be
run again, and a changed workflow checked, with no server started.

The file is JSON Lines (``dump_recording``/``parse_recording``): a header line, then one line
per call. Pure module: no I/O; the command line reads and writes the files. Configured
secrets (headers, environment) never reach a record: only arguments and answers do.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import anyio
import mcp_types as types

from orchestrator.catalog import canonical_json
from orchestrator.errors import (
    DefinitionWithheld,
    DownstreamCircuitOpen,
    DownstreamError,
    DownstreamLoginRequired,
    DownstreamNotConnected,
    DownstreamOutputInvalid,
    DownstreamTimeout,
    DownstreamToolError,
    DownstreamUnavailable,
    RecordingError,
    StepNotGranted,
)
from orchestrator.workflow._run import step_call_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from orchestrator.workflow._plan import WorkflowPlan
    from orchestrator.workflow._run import ToolInvoker

__all__ = [
    "RECORDING_FORMAT",
    "RECORDING_VERSION",
    "RecordedCall",
    "Recording",
    "RecordingHeader",
    "RecordingInvoker",
    "ReplayInvoker",
    "dump_recording",
    "parse_recording",
    "plan_hash",
    "tool_definitions",
]

RECORDING_FORMAT = "mcp-orchestrator-recording"
RECORDING_VERSION = 1
_CANCELLED = "cancelled"
"""``error.type`` of a call cancelled before it answered (its timeout, or the run failing)."""

_ERROR_TYPES: dict[str, type[DownstreamError]] = {
    cls.__name__: cls
    for cls in (
        DownstreamError,
        DownstreamUnavailable,
        DownstreamNotConnected,
        DownstreamLoginRequired,
        DownstreamCircuitOpen,
        DownstreamTimeout,
        StepNotGranted,
        DefinitionWithheld,
        DownstreamToolError,
        DownstreamOutputInvalid,
    )
}
_ERROR_FIELDS = ("code", "timeout", "retry_in", "tool", "field")
"""The attributes some ``DownstreamError`` subclasses carry besides server and message."""


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One downstream call of a run and its answer.

    Attributes:
        server: Config key of the downstream server.
        tool: The server's own tool name.
        arguments: The arguments sent.
        result: The ``CallToolResult`` as MCP wire JSON, or ``None`` if the call raised.
        error: ``{"type", "message", ...}`` of the ``DownstreamError`` raised (``type``
            ``cancelled`` for a call cancelled before it answered), or ``None``.
        duration: Seconds the call took.
        step: The workflow step that made the call, when the call said.
        index: The for_each item index, when the call said.
    """

    server: str
    tool: str
    arguments: dict[str, Any]
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    duration: float = 0.0
    step: str | None = None
    index: int | None = None


@dataclass(frozen=True, slots=True)
class RecordingHeader:
    """The first line of a recording: what was run, on what, and the tools it used.

    Attributes:
        workflow: The workflow's name.
        input: The input the run was given (before defaults).
        recorded_at: When, as an ISO 8601 UTC timestamp.
        plan_hash: ``plan_hash`` of the workflow recorded, or ``None``.
        catalogue_version: The served catalogue's version, or ``None``.
        tools: The definitions (wire JSON) of the tools the workflow calls, by server key.
    """

    workflow: str
    input: dict[str, Any]
    recorded_at: str
    plan_hash: str | None = None
    catalogue_version: str | None = None
    tools: Mapping[str, Sequence[dict[str, Any]]] = field(default_factory=dict[str, "Sequence[dict[str, Any]]"])


@dataclass(frozen=True, slots=True)
class Recording:
    """A parsed recording: its header and its calls, in the order they finished."""

    header: RecordingHeader
    calls: tuple[RecordedCall, ...]


def plan_hash(plan: WorkflowPlan) -> str:
    """SHA-256 of the workflow as declared (its file's content, not where it lies or its line numbers).

    Keys left at their defaults are left out, so a version of the format that adds a key
    (with a default) hashes an unchanged workflow as before.
    """
    declared = plan.spec.model_dump(mode="json", exclude={"source"}, exclude_defaults=True)
    return hashlib.sha256(canonical_json(declared)).hexdigest()


def tool_definitions(
    plan: WorkflowPlan, lookup: Callable[[str, str], types.Tool | None]
) -> dict[str, list[dict[str, Any]]]:
    """The wire definitions of the tools ``plan``'s steps call, by server; ``lookup`` finds a server's tool."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for step in plan.steps.values():
        tool = lookup(step.server, step.tool)
        if tool is not None:
            wire = tool.model_dump(mode="json", by_alias=True, exclude_none=True)
            found.setdefault(step.server, {})[step.tool] = wire
    return {server: [tools[name] for name in sorted(tools)] for server, tools in sorted(found.items())}


class RecordingInvoker:
    """Passes every call to ``inner`` and keeps a ``RecordedCall`` of it in ``calls``."""

    def __init__(self, inner: ToolInvoker, clock: Callable[[], float] = time.monotonic) -> None:
        self._inner = inner
        self._clock = clock
        self.calls: list[RecordedCall] = []

    async def call_tool(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        timeout: float | None,
        meta: dict[str, Any] | None,
    ) -> types.CallToolResult:
        """Call through to the wrapped invoker and record the call.

        Raises:
            DownstreamError: What the wrapped invoker raised (recorded first).
        """
        call = step_call_of(meta)
        step, index = (call.step_id, call.index) if call is not None else (None, None)
        sent = json.loads(json.dumps(arguments))  # a copy the caller cannot change later
        started = self._clock()

        def record(result: dict[str, Any] | None, error: dict[str, Any] | None) -> None:
            duration = round(self._clock() - started, 6)
            self.calls.append(RecordedCall(server, tool, sent, result, error, duration, step, index))

        try:
            result = await self._inner.call_tool(server, tool, arguments, timeout=timeout, meta=meta)
        except DownstreamError as exc:
            record(None, _error_record(exc))
            raise
        except anyio.get_cancelled_exc_class():
            record(None, {"type": _CANCELLED, "message": "cancelled before it answered", "timeout": timeout})
            raise
        record(result.model_dump(mode="json", by_alias=True, exclude_none=True), None)
        return result


class ReplayInvoker:
    """Answers calls from recorded ones: same server, tool and arguments, in the order recorded.

    The same call made twice gets the two recorded answers in turn. A call with no answer
    left raises ``RecordingError`` (not a ``DownstreamError``: no retry or ``on_error`` of the
    workflow may hide it), naming the call and how it differs from the closest recorded one.
    """

    def __init__(self, calls: Iterable[RecordedCall]) -> None:
        self._recorded = tuple(calls)
        self._left: dict[tuple[str, str, bytes], deque[RecordedCall]] = {}
        for call in self._recorded:
            self._left.setdefault(_key(call.server, call.tool, call.arguments), deque()).append(call)

    @property
    def unused(self) -> list[RecordedCall]:
        """Recorded calls no call has consumed yet."""
        return [call for queue in self._left.values() for call in queue]

    async def call_tool(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        timeout: float | None,
        meta: dict[str, Any] | None,
    ) -> types.CallToolResult:
        """The recorded answer to this call.

        Raises:
            DownstreamError: The error recorded for it.
            RecordingError: The recording holds no (more) answers to it.
        """
        queue = self._left.get(_key(server, tool, arguments))
        if not queue:
            raise RecordingError(self._missing(server, tool, arguments, meta, used=queue is not None))
        call = queue.popleft()
        if call.result is not None:
            return types.CallToolResult.model_validate(call.result)
        raise _error_from(call)

    def _missing(
        self, server: str, tool: str, arguments: dict[str, Any], meta: dict[str, Any] | None, *, used: bool
    ) -> str:
        call = step_call_of(meta)
        step, index = (call.step_id, call.index) if call is not None else (None, None)
        where = f" (step {step!r}" + (f", item {index}" if index else "") + ")" if step is not None else ""
        asked = f"no recorded answer for {server}.{tool}{where} with arguments {_short_json(arguments)}"
        if used:
            count = sum(
                1 for c in self._recorded if _key(c.server, c.tool, c.arguments) == _key(server, tool, arguments)
            )
            return f"{asked}: the recording answers this call {count} time(s), all used"
        same_tool = [c for c in self._recorded if (c.server, c.tool) == (server, tool)]
        if not same_tool:
            return f"{asked}: the recording has no call of {server}.{tool}"
        # Fewest differing keys; among those, the call the same step made.
        closest = min(same_tool, key=lambda c: (len(_differing_keys(arguments, c.arguments)), c.step != step))
        differing = ", ".join(_differing_keys(arguments, closest.arguments))
        recorded_at = f" (step {closest.step!r})" if closest.step is not None else ""
        return f"{asked}: the closest recorded call of {server}.{tool}{recorded_at} differs in: {differing}"


def dump_recording(header: RecordingHeader, calls: Iterable[RecordedCall], output: Any = None) -> str:
    """The recording as JSON Lines: the header, one line per call, then the run's output line."""
    first = {
        "format": RECORDING_FORMAT,
        "version": RECORDING_VERSION,
        "workflow": header.workflow,
        "plan_hash": header.plan_hash,
        "input": header.input,
        "recorded_at": header.recorded_at,
        "catalogue_version": header.catalogue_version,
        "tools": {server: list(tools) for server, tools in header.tools.items()},
    }
    lines = [first]
    for call in calls:
        line: dict[str, Any] = {"kind": "call", "server": call.server, "tool": call.tool, "arguments": call.arguments}
        line |= {"result": call.result} if call.result is not None else {"error": call.error}
        line |= {"duration": call.duration, "step": call.step, "index": call.index}
        lines.append(line)
    lines.append({"kind": "output", "output": output})
    return "".join(json.dumps(line, ensure_ascii=False, sort_keys=False) + "\n" for line in lines)


def parse_recording(text: str, where: str) -> tuple[Recording, Any]:
    """A recording and the output recorded with it (``None`` if none) from its JSON Lines.

    Args:
        text: The file's content.
        where: The file's path, for messages.

    Raises:
        RecordingError: It is not a recording of this format and version; names the line.
    """
    header: RecordingHeader | None = None
    calls: list[RecordedCall] = []
    output: Any = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RecordingError(f"{where}:{number}: not JSON: {exc.msg}") from None
        if not isinstance(line, dict):
            raise RecordingError(f"{where}:{number}: expected a JSON object")
        item = cast("dict[str, Any]", line)
        try:
            if header is None:
                header = _header(item, where, number)
            elif item.get("kind") == "call":
                calls.append(_call(item))
            elif item.get("kind") == "output":
                output = item.get("output")
            else:
                raise RecordingError(f"{where}:{number}: unknown line kind {item.get('kind')!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordingError(f"{where}:{number}: malformed line: {exc!r}") from None
    if header is None:
        raise RecordingError(f"{where}: empty file, not a recording")
    return Recording(header, tuple(calls)), output


def _header(item: dict[str, Any], where: str, number: int) -> RecordingHeader:
    if item.get("format") != RECORDING_FORMAT:
        raise RecordingError(f"{where}:{number}: not a recording (its first line has no format {RECORDING_FORMAT!r})")
    if item.get("version") != RECORDING_VERSION:
        raise RecordingError(
            f"{where}:{number}: recording version {item.get('version')!r}, expected {RECORDING_VERSION}"
        )
    return RecordingHeader(
        workflow=str(item["workflow"]),
        input=dict(item.get("input") or {}),
        recorded_at=str(item.get("recorded_at", "")),
        plan_hash=item.get("plan_hash"),
        catalogue_version=item.get("catalogue_version"),
        tools={str(server): list(tools) for server, tools in dict(item.get("tools") or {}).items()},
    )


def _call(item: dict[str, Any]) -> RecordedCall:
    result, error = item.get("result"), item.get("error")
    if (result is None) == (error is None):
        raise ValueError("a call needs exactly one of result and error")
    return RecordedCall(
        server=str(item["server"]),
        tool=str(item["tool"]),
        arguments=dict(item["arguments"]),
        result=result,
        error=error,
        duration=float(item.get("duration") or 0.0),
        step=item.get("step"),
        index=item.get("index"),
    )


def _key(server: str, tool: str, arguments: Mapping[str, Any]) -> tuple[str, str, bytes]:
    return server, tool, canonical_json(dict(arguments))


def _differing_keys(asked: Mapping[str, Any], recorded: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(asked) | set(recorded))
    return [
        key
        for key in keys
        if key not in asked or key not in recorded or canonical_json(asked[key]) != canonical_json(recorded[key])
    ]


def _error_record(exc: DownstreamError) -> dict[str, Any]:
    record: dict[str, Any] = {"type": type(exc).__name__, "message": exc.detail}
    for name in _ERROR_FIELDS:
        if hasattr(exc, name):
            record[name] = getattr(exc, name)
    return record


def _error_from(call: RecordedCall) -> DownstreamError:
    error = call.error or {}
    message = str(error.get("message", ""))
    kind = str(error.get("type", ""))
    if kind == _CANCELLED:
        # Replayed as the timeout it most likely was, without waiting for it.
        return DownstreamTimeout(call.server, f"{message} (recorded)", float(error.get("timeout") or 0.0))
    cls = _ERROR_TYPES.get(kind, DownstreamError)
    if cls is DownstreamToolError:
        return DownstreamToolError(call.server, message, int(error.get("code", 0)))
    if cls is DownstreamTimeout:
        return DownstreamTimeout(call.server, message, float(error.get("timeout") or 0.0))
    if cls is DownstreamCircuitOpen:
        return DownstreamCircuitOpen(call.server, message, float(error.get("retry_in") or 0.0))
    if cls is DefinitionWithheld:
        return DefinitionWithheld(call.server, message, tool=str(error.get("tool", call.tool)))
    if cls is DownstreamOutputInvalid:
        return DownstreamOutputInvalid(
            call.server, message, tool=str(error.get("tool", call.tool)), field=error.get("field")
        )
    return cls(call.server, message)


def _short_json(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."
