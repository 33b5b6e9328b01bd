"""The layering rules of DESIGN and the README's "Project layout", checked on every module's imports.

Each top-level room of ``orchestrator/`` has a floor; a module may import its own room and
rooms on lower floors only. Rooms on the same floor do not import each other (the workflow
engine never imports ``downstream``). The rooms of the coming work (``store``, ``auth``,
``trust``, ``runs``) have their floors already, so their first module lands in the right place.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

PACKAGE = Path(__file__).resolve().parents[1] / "orchestrator"

FLOORS: dict[str, int] = {
    # the ground: no orchestrator imports but each other's
    "errors": 0,
    "_version": 0,
    "_files": 0,
    "_sdk_internals": 0,
    "_schema_messages": 0,
    "_masking": 0,
    "_lazy": 0,
    "_cores": 0,  # how many cores this process may use
    "_egress": 0,  # the SSRF guard for URLs fetched on a stranger's say-so
    "_locations": 1,  # words problems of config and workflow files: builds ConfigError
    "tracing": 1,
    "config": 2,
    "catalog": 3,
    "store": 3,  # the one persistence layer: above config and errors only
    "search": 3,  # ranks the tool catalogue for search mode: pure, stdlib and ranking libraries only
    "workflow": 4,
    "downstream": 4,
    "telemetry": 4,  # the OpenTelemetry SDK side; nothing below uses it
    "auth": 5,
    "trust": 5,
    "runs": 5,
    "server": 6,
    "_aggregator": 7,
    "cli": 8,
    "__init__": 9,
    "__main__": 9,
}
FORBIDDEN = {
    ("auth", "downstream"),  # inbound authorization never talks to downstream servers
    ("store", "catalog"),
    ("store", "tracing"),
}


def _room(module: str) -> str:
    parts = module.split(".")
    assert parts[0] == "orchestrator"
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] if node.module == "orchestrator" else []
            for name in names or [node.module]:
                if name.startswith("orchestrator"):
                    yield node.lineno, name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("orchestrator"):
                    yield node.lineno, alias.name


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_top_level_room_has_a_floor() -> None:
    rooms = {path.stem if path.parent == PACKAGE else path.relative_to(PACKAGE).parts[0] for path in _modules()}
    assert rooms - FLOORS.keys() == set()


@pytest.mark.parametrize("path", _modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_imports_point_down_only(path: Path) -> None:
    relative = path.relative_to(PACKAGE)
    here = relative.stem if len(relative.parts) == 1 else relative.parts[0]
    wrong: list[str] = []
    for line, module in _imports(path):
        there = _room(module)
        if there == here:
            continue
        if FLOORS[there] >= FLOORS[here] or (here, there) in FORBIDDEN:
            wrong.append(
                f"{relative}:{line} imports {module} ({here} floor {FLOORS[here]} -> {there} floor {FLOORS[there]})"
            )
    assert wrong == []


SINGLE_HOMES = {"redis": "auth/_redis_ratelimit.py"}
"""Libraries with one module of their own inside a room that ruff's TID251 lets import them all."""


@pytest.mark.parametrize("path", _modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_a_library_with_one_home_is_imported_only_there(path: Path) -> None:
    relative = str(path.relative_to(PACKAGE))
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
    assert [library for library, home in SINGLE_HOMES.items() if library in imported and relative != home] == []
