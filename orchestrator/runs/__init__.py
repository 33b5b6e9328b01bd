"""Durable workflow runs and MCP tasks.

Owns the journal that sits behind the workflow executor (each step's outcome is written to the
state database before its dependents start), the leases that say which process runs a run,
resuming runs whose process died, approval steps, and the retention of finished runs. The
executor itself stays pure scheduling (``orchestrator.workflow``); the records live in
``orchestrator.store``. Sits above ``store``, ``workflow``, ``catalog`` and ``config``; never
imports ``server`` or ``downstream``.
"""

from __future__ import annotations

from orchestrator.runs._retention import keep_pruning, prune_finished_runs

__all__ = ["keep_pruning", "prune_finished_runs"]
