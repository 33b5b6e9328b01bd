"""Durable workflow runs and MCP tasks.

Owns the journal that sits behind the workflow executor (each step's outcome is written to the
state database before its dependents start), the leases that say which process runs a run,
resuming runs whose process died, approval steps, and the retention of finished runs. The
executor itself stays pure scheduling (``orchestrator.workflow``); the records live in
``orchestrator.store``. Sits above ``store``, ``workflow``, ``catalog`` and ``config``; never
imports ``server`` or ``downstream``.

Names load on first use (PEP 562): the manager and the journal load the state database's
modules, which a server without composite tools never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator._lazy import lazy_names

if TYPE_CHECKING:
    from orchestrator.runs._approval import APPROVAL_META, approval_answer, approval_elicitation, approval_text
    from orchestrator.runs._journal import JournalWriter, StoreJournal, interrupted_message
    from orchestrator.runs._manager import RunManager, new_owner_id
    from orchestrator.runs._request import RunHooks, RunRequest
    from orchestrator.runs._retention import keep_pruning, prune_finished_runs

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
    "keep_pruning",
    "new_owner_id",
    "prune_finished_runs",
]

_HOMES = {
    **dict.fromkeys(
        ("APPROVAL_META", "approval_answer", "approval_elicitation", "approval_text"), "orchestrator.runs._approval"
    ),
    **dict.fromkeys(("JournalWriter", "StoreJournal", "interrupted_message"), "orchestrator.runs._journal"),
    **dict.fromkeys(("RunManager", "new_owner_id"), "orchestrator.runs._manager"),
    **dict.fromkeys(("RunHooks", "RunRequest"), "orchestrator.runs._request"),
    **dict.fromkeys(("keep_pruning", "prune_finished_runs"), "orchestrator.runs._retention"),
}

__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__, globals())
