"""The public surface and layering of ``orchestrator.workflow``, and the generated JSON Schema."""

from __future__ import annotations

import ast
import json
import types
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from jsonschema import validators

import orchestrator.workflow as workflow
from orchestrator.workflow._schema import render_workflow_json_schema
from tests.workflow.helpers import DATA

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

PACKAGE = Path(workflow.__file__).parent
REPO_ROOT = PACKAGE.parents[1]
SCHEMA_FILE = REPO_ROOT / "docs" / "workflow.schema.json"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_all_lists_exactly_the_public_names() -> None:
    # Names load on first use: each listed name resolves, and the type checker sees the same names.
    resolved = {name: getattr(workflow, name) for name in workflow.__all__}
    public = {
        name
        for name, value in vars(workflow).items()
        if not name.startswith("_")
        and name not in ("annotations", "TYPE_CHECKING", "lazy_names")
        and not isinstance(value, types.ModuleType)
    }

    assert sorted(workflow.__all__) == sorted(public) == sorted(resolved)
    assert dir(workflow) == sorted(workflow.__all__)
    assert _type_checking_names(PACKAGE / "__init__.py") == set(workflow.__all__)


def _type_checking_names(path: Path) -> set[str]:
    """The names an ``if TYPE_CHECKING:`` block of ``path`` imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom):
                    names.update(alias.asname or alias.name for alias in statement.names)
    return names


def test_package_docstring_says_what_it_owns_and_refuses() -> None:
    assert workflow.__doc__ is not None
    assert "ToolInvoker" in workflow.__doc__
    assert "Does not" in workflow.__doc__


def test_workflow_never_imports_the_downstream_or_server_packages() -> None:
    for module in PACKAGE.glob("*.py"):
        imported = _imports(module)
        assert not {name for name in imported if name.startswith(("orchestrator.downstream", "orchestrator.server"))}, (
            module.name
        )


def test_networkx_lives_only_in_the_compiler_and_tenacity_only_in_the_retry_module() -> None:
    for module in PACKAGE.glob("*.py"):
        roots = {name.split(".")[0] for name in _imports(module)}
        assert ("networkx" in roots) == (module.name == "_compile.py"), module.name
        assert ("tenacity" in roots) == (module.name == "_retry.py"), module.name


def test_committed_json_schema_is_the_generated_one() -> None:
    expected = render_workflow_json_schema()
    committed = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""

    assert committed == expected, "docs/workflow.schema.json is stale: run `python -m orchestrator.workflow`"


def test_json_schema_accepts_the_sample_and_rejects_typos() -> None:
    schema = json.loads(render_workflow_json_schema())
    sample = yaml.safe_load((DATA / "incident_report.yaml").read_text(encoding="utf-8"))
    validator: Validator = validators.validator_for(schema)(schema)

    assert list(validator.iter_errors(sample)) == []
    sample["steps"]["metrics"]["retyr"] = {}
    assert [e.message for e in validator.iter_errors(sample)] == [
        "Additional properties are not allowed ('retyr' was unexpected)"
    ]
