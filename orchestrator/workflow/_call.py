"""One step's downstream calls: bounded attempts, error classes, and result values.

Maps the ``DownstreamError`` tree to the error classes retry policies name, bounds each
attempt with ``anyio.move_on_after`` (and passes the same timeout down, so the downstream
can cancel politely), and turns a ``CallToolResult`` into the JSON value steps see.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any, NoReturn

import anyio
import anyio.lowlevel
import mcp_types as types

from orchestrator.errors import (
    DownstreamError,
    DownstreamOutputInvalid,
    DownstreamTimeout,
    DownstreamToolError,
    StepNotGranted,
)
from orchestrator.workflow._retry import Attempt, AttemptFailure, RetryFn, call_with_retries
from orchestrator.workflow._run import ToolInvoker, step_call_meta

if TYPE_CHECKING:
    from collections.abc import Callable

    from orchestrator.workflow._plan import StepPlan

__all__ = ["CallContext", "call_step_tool", "classify_error", "result_value"]

_RATE_LIMITED_CODES = frozenset({429, -32029})
_RATE_LIMITED_TEXT = re.compile(r"\b429\b|rate[ _-]?limit|too many requests", re.IGNORECASE)
_MAX_ERROR_TEXT = 500


@dataclass(frozen=True, slots=True)
class CallContext:
    """What every call of a run shares.

    Attributes:
        run_id: The run, for idempotency keys.
        invoker: Where calls go.
        limiter: Bounds the calls in flight across the run (``limits.max_parallel``).
        count_attempt: Called as each attempt starts, for the step's attempt count.
        on_retry: Told before each retry wait.
    """

    run_id: str
    invoker: ToolInvoker
    limiter: anyio.CapacityLimiter
    count_attempt: Callable[[], None]
    on_retry: RetryFn


async def call_step_tool(
    step: StepPlan, arguments: dict[str, Any], index: int, context: CallContext, deadline_at: float | None
) -> Any:
    """Call the step's tool with ``arguments``, retrying as the step's policy allows.

    Returns:
        The result value (see ``result_value``).

    Raises:
        AttemptFailure: The last attempt's failure once no retry is allowed.
    """
    meta = step_call_meta(context.run_id, step.id, index)

    async def attempt(current: Attempt) -> Any:
        await _acquire(context.limiter)
        try:
            left = current.time_left()
            if left is not None and left <= 0:
                raise AttemptFailure(
                    "timeout", f"deadline of {step.deadline or 0:g}s reached before attempt {current.number}"
                )
            timeout = left if step.timeout is None else step.timeout if left is None else min(step.timeout, left)
            context.count_attempt()
            result: types.CallToolResult | None = None
            try:
                if timeout is None:
                    result = await context.invoker.call_tool(step.server, step.tool, arguments, timeout=None, meta=meta)
                else:
                    with anyio.move_on_after(timeout):
                        result = await context.invoker.call_tool(
                            step.server, step.tool, arguments, timeout=timeout, meta=meta
                        )
            except DownstreamError as exc:
                raise classify_error(exc, step) from None
            if result is None:
                if left is not None and (step.timeout is None or left < step.timeout):
                    _raise_timeout(step, f"deadline of {step.deadline or 0:g}s reached")
                _raise_timeout(step, f"timed out after {timeout or 0:g}s")
        finally:
            context.limiter.release()
        return _checked_value(step, result)

    return await call_with_retries(attempt, step.retry, deadline_at=deadline_at, on_retry=context.on_retry)


async def _acquire(limiter: anyio.CapacityLimiter) -> None:
    """Take a token of ``limiter``, waiting in line only when none is free.

    A free token is taken without the trip through the event loop that ``acquire`` makes
    even when nobody waits; the call that follows is where the task yields. Tokens still go
    in order (``acquire_nowait`` refuses while others wait), and a cancelled step still stops
    here, before its call, as it did in ``acquire``.
    """
    await anyio.lowlevel.checkpoint_if_cancelled()
    try:
        limiter.acquire_nowait()
    except anyio.WouldBlock:
        await limiter.acquire()


def classify_error(exc: DownstreamError, step: StepPlan) -> AttemptFailure:
    """The failure, with its error class, that a downstream error means for ``step``."""
    message = str(exc)
    if isinstance(exc, DownstreamTimeout):
        return _timeout(step, message)
    if isinstance(exc, StepNotGranted):
        # A class no retry policy can name: asking again does not change a grant.
        return AttemptFailure("not_granted", message, server=exc.server)
    if isinstance(exc, DownstreamOutputInvalid):
        # The client's own check of the result failed before `_checked_value` could make it.
        return AttemptFailure("output_invalid", message, server=exc.server)
    if isinstance(exc, DownstreamToolError) and exc.code in _RATE_LIMITED_CODES:
        return AttemptFailure("rate_limited", message, server=exc.server)
    # The server's own words only: a server named "ratelimit-proxy" is no rate limit.
    if _RATE_LIMITED_TEXT.search(exc.detail):
        return AttemptFailure("rate_limited", message, server=exc.server)
    if isinstance(exc, DownstreamToolError):
        return AttemptFailure(f"mcp_error:{exc.code}", message, server=exc.server)
    return AttemptFailure("transport_error", message, server=exc.server)


def result_value(result: types.CallToolResult) -> Any:
    """``structuredContent`` if present, else the single text block parsed as JSON if it parses, else its text.

    No content gives ``None``; several blocks, or a non-text one, give the blocks as JSON objects.
    """
    if result.structured_content is not None:
        return result.structured_content
    if not result.content:
        return None
    if len(result.content) == 1 and isinstance(block := result.content[0], types.TextContent):
        try:
            return json.loads(block.text, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            return block.text
    return [block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in result.content]


def _checked_value(step: StepPlan, result: types.CallToolResult) -> Any:
    if result.is_error:
        texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
        message = f"the tool reported an error: {_short(' '.join(texts)) or '(no text)'}"
        raise AttemptFailure("tool_error", message, server=step.server)
    if step.result_validator is not None:
        if result.structured_content is None:
            message = "the tool has an outputSchema but returned no structuredContent"
            raise AttemptFailure("output_invalid", message, server=step.server)
        errors = [error.message for error in islice(step.result_validator.iter_errors(result.structured_content), 3)]
        if errors:
            message = f"result does not match the tool's outputSchema: {'; '.join(errors)}"
            raise AttemptFailure("output_invalid", message, server=step.server)
    return result_value(result)


def _timeout(step: StepPlan, message: str) -> AttemptFailure:
    # A call that timed out may still have taken effect; only an idempotent one may be repeated.
    unknown = step.idempotent is not True
    return AttemptFailure("timeout", message, unknown_outcome=unknown, server=step.server)


def _raise_timeout(step: StepPlan, message: str) -> NoReturn:
    raise _timeout(step, message)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _short(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 3] + "..."
