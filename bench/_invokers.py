"""In-process tool invokers for the workflow benches: the figure is the executor's, not a transport's."""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types

__all__ = ["InstantInvoker", "SleepingInvoker"]


def _echo_n(arguments: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(content=[], structured_content={"n": arguments.get("n")})


class InstantInvoker:
    """Every call returns its ``n`` argument at once, without yielding to the event loop."""

    async def call_tool(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        timeout: float | None,
        meta: dict[str, Any] | None,
    ) -> types.CallToolResult:
        return _echo_n(arguments)


class SleepingInvoker:
    """Every call sleeps ``seconds`` and returns its ``n`` argument."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    async def call_tool(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        timeout: float | None,
        meta: dict[str, Any] | None,
    ) -> types.CallToolResult:
        await anyio.sleep(self._seconds)
        return _echo_n(arguments)
