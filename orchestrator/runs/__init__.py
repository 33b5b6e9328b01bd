"""Durable workflow runs and MCP tasks.

Owns the journal that sits behind the workflow executor (each step's outcome is written to the
state database before its dependents start), the leases that say which process runs a run,
resuming runs whose process died, approval steps, and the retention of finished runs. The
executor itself stays pure scheduling (``orchestrator.workflow``); the records live in
``orchestrator.store``. Sits above ``store``, ``workflow``, ``catalog`` and ``config``; never
imports ``server`` or ``downstream``.
"""

from __future__ import annotations

from orchestrator.runs._approval import APPROVAL_META, approval_answer, approval_elicitation, approval_text
from orchestrator.runs._journal import JournalWriter, StoreJournal, interrupted_message
from orchestrator.runs._manager import RunHooks, RunManager, RunRequest, new_owner_id

__all__ = [
    "APPROVAL_META",
    "JournalWriter",
    "RunHooks",
    "RunManager",
    "RunRequest",
    "StoreJournal",
    "approval_answer",
    "approval_elicitation",
    "approval_text",
    "interrupted_message",
    "new_owner_id",
]
