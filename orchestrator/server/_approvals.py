"""Approval steps of a synchronous composite call: asked of the calling client through elicitation.

Owns the approver the server hands a run: the approval goes to the client of the call as the
elicitation ``orchestrator.runs.approval_elicitation`` makes (a form with no fields; accept
approves, decline or cancel declines), on either protocol era (a handshake-era
``elicitation/create`` request, or an input round of a 2026-07-28 call: the ``UpstreamPeer``
hides which), and waits at most ``runs.approval_timeout`` for the answer.

Does not: ask a client that did not declare elicitation (there is no approver then, and a run
with approval steps fails before calling anything), log what an approval shows (it may hold
data of the run), or keep a waiting approval across a restart (that is a durable run's part).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
import mcp_types as types

from orchestrator.runs import approval_answer, approval_elicitation

if TYPE_CHECKING:
    from orchestrator.downstream import UpstreamPeer
    from orchestrator.workflow import ApprovalAnswer, ApprovalRequest, Approver

__all__ = ["ElicitingApprover", "elicitation_approver"]

logger = logging.getLogger(__name__)


class ElicitingApprover:
    """Asks the client of one call, through elicitation, whether a step may run."""

    def __init__(self, peer: UpstreamPeer, timeout: float) -> None:
        """Ask ``peer``, waiting at most ``timeout`` seconds for each answer."""
        self._peer = peer
        self._timeout = timeout

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        """Ask, and wait (bounded) for the answer; no answer in time is ``timeout``."""
        where = f"step {request.step_id!r} of run {request.run_id}"
        with anyio.move_on_after(self._timeout):
            result = await self._peer.elicit(approval_elicitation(request))
            answer = approval_answer(result)
            if isinstance(result, types.ErrorData):
                logger.info("approval of %s: the client answered with an error (%s): declined", where, result.message)
            else:
                logger.info("approval of %s: %s (%s)", where, answer, result.action)
            return answer
        logger.info("approval of %s: no answer within %gs: declined", where, self._timeout)
        return "timeout"


def elicitation_approver(peer: UpstreamPeer | None, timeout: float) -> Approver | None:
    """The approver of a call made by ``peer``'s client, or ``None`` if that client cannot be asked.

    Args:
        peer: The client of the call (``None``: a call made in-process, with nobody to ask).
        timeout: Seconds to wait for each answer (``runs.approval_timeout``).
    """
    if peer is None or not peer.supports_elicitation():
        return None
    return ElicitingApprover(peer, timeout)
