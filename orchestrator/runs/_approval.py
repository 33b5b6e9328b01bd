"""An approval step as an elicitation request, and the answer read back.

One shape for every way of asking: the synchronous call forwards it to the calling client,
an MCP task hands it out as its pending input (both protocol eras), and ``orchestrator runs``
shows it. The user accepts (approved), declines or cancels (declined); the form has no
fields, since the question is yes or no.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, cast

import mcp_types as types

if TYPE_CHECKING:
    from orchestrator.workflow import ApprovalAnswer, ApprovalRequest

__all__ = ["APPROVAL_META", "approval_answer", "approval_elicitation", "approval_text"]

APPROVAL_META = "io.github.mcp-orchestrator/approval"
"""``_meta`` key of an approval's elicitation: ``{"run_id": ..., "step_id": ..., "tool": ...}``."""

_MAX_SHOWN = 4000


def approval_text(request: ApprovalRequest) -> str:
    """The question in words: the step's message, what it calls, and what it will do."""
    lines = [request.message, "", f"Step {request.step_id!r} calls {request.tool}."]
    if request.destructive:
        lines.append("The tool is marked destructive.")
    if request.shown is not None:
        shown = request.shown if isinstance(request.shown, str) else json.dumps(request.shown, indent=2, default=str)
        if len(shown) > _MAX_SHOWN:
            shown = shown[: _MAX_SHOWN - 3] + "..."
        lines += ["", shown]
    return "\n".join(lines)


def approval_elicitation(request: ApprovalRequest) -> types.ElicitRequestFormParams:
    """The elicitation that asks for ``request``: accept to approve, decline to refuse."""
    meta = {APPROVAL_META: {"run_id": request.run_id, "step_id": request.step_id, "tool": request.tool}}
    return types.ElicitRequestFormParams(
        message=approval_text(request),
        requested_schema={"type": "object", "properties": {}},
        _meta=cast("types.RequestParamsMeta", meta),
    )


def approval_answer(result: types.ElicitResult | types.ErrorData) -> ApprovalAnswer:
    """What an elicitation's answer means for the step: only ``accept`` approves it."""
    if isinstance(result, types.ElicitResult) and result.action == "accept":
        return "approved"
    return "declined"
