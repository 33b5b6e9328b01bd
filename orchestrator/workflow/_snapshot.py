"""A workflow as a run keeps it: the declared spec as canonical JSON, read back to resume the run.

A run resumes against the workflow it started with, not the file as it is now: the file may
have been edited, or removed, while the run waited.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from orchestrator.errors import WorkflowDefinitionError
from orchestrator.workflow._spec import SourceInfo, WorkflowSpec

__all__ = ["spec_from_snapshot", "workflow_snapshot"]


def workflow_snapshot(spec: WorkflowSpec) -> str:
    """``spec`` as declared (keys as written in files, defaults left out), as JSON text."""
    declared = spec.model_dump(mode="json", by_alias=True, exclude={"source"}, exclude_defaults=True)
    return json.dumps(declared, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def spec_from_snapshot(snapshot: str, label: str) -> WorkflowSpec:
    """The spec ``workflow_snapshot`` wrote; ``label`` names it in messages (e.g. ``run 1234…``).

    Raises:
        WorkflowDefinitionError: The snapshot is not a workflow this version reads.
    """
    try:
        spec = WorkflowSpec.model_validate(json.loads(snapshot))
    except (ValueError, ValidationError) as exc:
        raise WorkflowDefinitionError(
            label, [f"{label}: the workflow kept with the run cannot be read: {exc}"]
        ) from None
    return spec.model_copy(update={"source": SourceInfo(label)})
