"""The JSON Schema of workflow files, generated from the models, for editors and docs.

``python -m orchestrator.workflow [PATH]`` writes it (default ``docs/workflow.schema.json``);
a test fails when the committed file is stale. Editors pick it up with
``# yaml-language-server: $schema=<path or URL>`` at the top of a workflow file.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.workflow._spec import WorkflowSpec

__all__ = ["render_workflow_json_schema", "workflow_json_schema"]


def workflow_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a workflow file, keys spelled as files spell them."""
    schema = WorkflowSpec.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def render_workflow_json_schema() -> str:
    """``workflow_json_schema()`` as the exact text of ``docs/workflow.schema.json``."""
    return json.dumps(workflow_json_schema(), indent=2, ensure_ascii=False) + "\n"
