"""Running ``orchestrator install`` / ``doctor`` in-process, as ``cli.py`` wires them."""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import TYPE_CHECKING, Any, cast

from orchestrator.cli import _doctor
from orchestrator.cli import install as _install

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["orchestrator", "parser", "read_json", "write_json", "write_workflow"]


def parser() -> argparse.ArgumentParser:
    """The subset of the CLI's parser these commands need, built the way ``cli.py`` builds its own."""
    root = argparse.ArgumentParser(prog="orchestrator")
    root.add_argument("-v", "--verbose", action="count", default=0)
    commands = root.add_subparsers(dest="command", required=True)
    _install.add_parser(commands)
    _doctor.add_parser(commands)
    return root


def orchestrator(*argv: str) -> int:
    """Run one command line; return its exit status."""
    args = parser().parse_args(argv)
    return _install.run(args) if args.command == "install" else _doctor.run(args)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file."""
    return cast("dict[str, Any]", json.loads(path.read_text(encoding="utf-8")))


def write_json(path: Path, data: object, indent: int | str | None = 2) -> Path:
    """Write ``data`` as JSON (creating folders) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent) + "\n", encoding="utf-8")
    return path


def write_workflow(folder: Path, name: str, text: str) -> Path:
    """Write a dedented workflow file into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path
