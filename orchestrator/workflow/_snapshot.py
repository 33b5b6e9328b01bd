"""A workflow as a run keeps it: the declared spec as JSON, read back by ``load_workflow_text``.

A run resumes against the workflow it started with, not the file as it is now: the file may
have been edited, or removed, while the run waited. JSON is YAML, so the snapshot is read back
like any workflow file, with the same checks and messages.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.workflow._spec import WorkflowSpec

__all__ = ["workflow_snapshot"]


def workflow_snapshot(spec: WorkflowSpec) -> str:
    """``spec`` as declared (keys as written in files, in their order, defaults left out), as JSON text."""
    declared = spec.model_dump(mode="json", by_alias=True, exclude={"source"}, exclude_defaults=True)
    return json.dumps(declared, ensure_ascii=False, separators=(",", ":"))
