"""docs/tracing.md describes the demo workflow's trace: every step it names must be a step of that workflow."""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.workflow import load_workflow

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "tracing.md"
DEMO = REPO_ROOT / "workflows" / "incident_report.yaml"

_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)
"""Fenced blocks and inline code: where the doc spells span names."""
_STEP_SPAN = re.compile(r"\bstep ([a-z][a-z0-9_]*)(?:\[\d+\])?")


def _steps_named_in(text: str) -> set[str]:
    return {match.group(1) for code in _CODE.findall(text) for match in _STEP_SPAN.finditer(code)}


def test_every_step_span_the_tracing_doc_names_is_a_step_of_the_demo_workflow() -> None:
    named = _steps_named_in(DOC.read_text(encoding="utf-8"))
    steps = set(load_workflow(DEMO).steps)

    assert named, "the doc names no `step <id>` span: has the check gone stale?"
    assert named <= steps, f"docs/tracing.md names steps that {DEMO.name} does not have: {sorted(named - steps)}"


def test_the_check_reads_step_names_from_code_only() -> None:
    text = "A step that retried.\n```\n├ step latency   INTERNAL\n```\nSee `step ticket_details[0]` and `step <id>`."

    assert _steps_named_in(text) == {"latency", "ticket_details"}
