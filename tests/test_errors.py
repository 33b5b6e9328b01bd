"""The exception tree drawn in ``orchestrator.errors`` is the tree the code defines, and every class is used."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import orchestrator
from orchestrator import errors
from orchestrator.errors import OrchestratorError

_PACKAGE = Path(orchestrator.__file__).parent
_BRANCH = re.compile(r"^(?P<indent>[ │]*)[├└]── (?P<name>\w+)")


def _drawn_tree() -> dict[str, str]:
    """Class -> parent, as the module docstring draws it."""
    assert errors.__doc__ is not None
    lines = errors.__doc__.splitlines()
    root_at = next(i for i, line in enumerate(lines) if line.strip() == OrchestratorError.__name__)
    parents: dict[str, str] = {}
    path = [OrchestratorError.__name__]
    for line in lines[root_at + 1 :]:
        match = _BRANCH.match(line[4:])  # the drawing is indented by four spaces
        if match is None:
            if not line.strip():
                break
            continue  # a description running on to a second line
        depth = len(match["indent"]) // 4 + 1
        del path[depth:]
        parents[match["name"]] = path[-1]
        path.append(match["name"])
    return parents


def _defined_tree() -> dict[str, str]:
    """Class -> parent, for every subclass of ``OrchestratorError`` in the package."""
    for module in pkgutil.walk_packages([str(_PACKAGE)], prefix="orchestrator."):
        # Scripts, not modules: `__main__` runs a command, and Alembic runs the migrations itself.
        if not module.name.endswith("__main__") and ".migrations" not in module.name:
            importlib.import_module(module.name)
    parents: dict[str, str] = {}
    pending = [OrchestratorError]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            parents[sub.__name__] = cls.__name__
            pending.append(sub)
    return parents


def test_the_drawn_tree_is_the_defined_tree() -> None:
    assert _drawn_tree() == _defined_tree()


def test_every_error_class_is_raised_somewhere_or_is_a_base_of_others() -> None:
    source = "\n".join(path.read_text(encoding="utf-8") for path in _PACKAGE.rglob("*.py"))
    tree = _defined_tree()
    bases = set(tree.values())
    unused = [name for name in tree if name not in bases and not re.search(rf"(?<!class )\b{name}\(", source)]
    assert unused == []
