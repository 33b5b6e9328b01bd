"""``python -m orchestrator.workflow [PATH]``: write the JSON Schema of workflow files.

The default PATH is ``docs/workflow.schema.json``, which a test keeps in step with the models.
"""

from __future__ import annotations

import sys
from pathlib import Path

from orchestrator.workflow._schema import render_workflow_json_schema

DEFAULT_OUTPUT = Path("docs/workflow.schema.json")


def main(argv: list[str]) -> int:
    """Write the schema to ``argv[0]`` (default ``docs/workflow.schema.json``) and say where."""
    output = Path(argv[0]) if argv else DEFAULT_OUTPUT
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_workflow_json_schema(), encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
