"""Approval steps of task-based runs: the question as a task's input request, the answer back.

A run no request waits on keeps its approval's question in the journal (``orchestrator.runs``:
the step is ``waiting``). Through its task the client sees it and answers it:

- 2026-07-28: ``tasks/get`` says ``input_required`` with ``inputRequests``, one elicitation per
  waiting step (key ``approval:<step id>``); ``tasks/update`` carries the ``inputResponses``.
- 2025-11-25: ``tasks/get`` says ``input_required``; ``tasks/result`` then sends the
  elicitation to the client on its own request (tied to the task by ``_meta``) and records the
  answer, and goes on waiting for the result.

An answer for a key nothing waits on is ignored, as the extension says. Whoever answers first
(the client, ``orchestrator runs approve``, another replica) decides.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

import mcp_types as types
from pydantic import ValidationError

from orchestrator.runs import approval_answer, approval_elicitation

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from orchestrator.runs import RunManager
    from orchestrator.store import RunRecord
    from orchestrator.workflow import ApprovalRequest

__all__ = ["APPROVAL_KEY_PREFIX", "ApprovalInputs", "approval_request_params", "waits_for_input"]

logger = logging.getLogger(__name__)

APPROVAL_KEY_PREFIX: Final = "approval:"
"""Key prefix of an approval's input request: ``approval:<step id>``."""


def waits_for_input(record: RunRecord) -> bool:
    """Whether running ``record`` waits for an approval (its task is ``input_required``)."""
    return record.status == "running" and any(step.status == "waiting" for step in record.steps)


def approval_request_params(request: ApprovalRequest, related_task: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``elicitation/create`` params asking ``request``, as JSON (with ``_meta`` extra entries)."""
    params = approval_elicitation(request).model_dump(mode="json", by_alias=True, exclude_none=True)
    if related_task:
        params["_meta"] = {**params.get("_meta", {}), **related_task}
    return params


class ApprovalInputs:
    """``TaskInputs`` over the run journal: the approvals a task's run waits for."""

    def __init__(self, runs: Callable[[], RunManager | None]) -> None:
        self._runs = runs

    def outstanding(self, record: RunRecord) -> Mapping[str, Any] | None:
        """One ``elicitation/create`` request per approval the run waits for, by key."""
        runs = self._runs()
        if runs is None:
            return None
        requests = {
            f"{APPROVAL_KEY_PREFIX}{request.step_id}": {
                "method": "elicitation/create",
                "params": approval_request_params(request),
            }
            for request in runs.pending_approvals(record)
        }
        return requests or None

    async def answer(self, record: RunRecord, responses: Mapping[str, Any]) -> None:
        """Record the answers to the approvals the run waits for; other keys are ignored.

        Raises:
            StoreError: The journal cannot be written.
        """
        runs = self._runs()
        if runs is None:
            return
        waiting = {request.step_id for request in runs.pending_approvals(record)}
        for key, response in responses.items():
            step_id = key.removeprefix(APPROVAL_KEY_PREFIX)
            if not key.startswith(APPROVAL_KEY_PREFIX) or step_id not in waiting:
                continue
            try:
                result = types.ElicitResult.model_validate(response)
            except ValidationError:
                logger.info("task %s: the answer to %s is not an elicitation result; ignored", record.id, key)
                continue
            approved = approval_answer(result) == "approved"
            who = record.principal.client_id or "local"
            await runs.answer(record.id, record.principal, step_id, approved=approved, by=f"task client {who}")
