"""``orchestrator tools --json`` and ``--diff FILE``: the served catalogue saved, and compared with a saved one.

The saved form is ``ExposedCatalogue.document()`` (every exposed definition in its wire form,
with the catalogue version) plus ``mappings``, the exposed names' servers and original names.
A diff names each definition added, removed or changed, the fields that changed, and shows a
changed description line by line.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.catalog import ExposedCatalogue, diff_catalogues
from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.catalog import Catalog, DefinitionChange

__all__ = ["catalogue_document", "diff_as_json", "read_saved_catalogue", "render_diff"]

_KIND_WORDS = {"tools": "tool", "prompts": "prompt", "resources": "resource", "resourceTemplates": "resource template"}


def catalogue_document(exposed: ExposedCatalogue, catalog: Catalog) -> dict[str, Any]:
    """What ``tools --json`` prints: the exposed catalogue, and where each downstream tool's name goes."""
    descriptions = {str(tool.get("name")): str(tool.get("description") or "") for tool in exposed.definitions["tools"]}
    mappings = [
        {
            "name": mapping.exposed,
            "server": mapping.server,
            "tool": mapping.original,
            "description": descriptions.get(mapping.exposed, ""),
        }
        for mapping in catalog.mappings
        if mapping.kind == "tool"
    ]
    mappings.sort(key=lambda row: str(row["name"]))
    return {**exposed.document(), "mappings": mappings}


def read_saved_catalogue(path: str) -> ExposedCatalogue:
    """The catalogue saved in ``path`` by ``orchestrator tools --json``.

    Raises:
        UsageError: The file cannot be read, is not JSON, or is not a saved catalogue.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}", "--diff") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not JSON: line {exc.lineno} column {exc.colno}: {exc.msg}", "--diff") from None
    try:
        return ExposedCatalogue.from_document(document)
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}", "--diff") from None


def _description_diff(change: DefinitionChange) -> list[str]:
    before = str((change.before or {}).get("description") or "")
    after = str((change.after or {}).get("description") or "")
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), "saved description", "live description", lineterm=""
    )
    return [f"      {line}" for line in lines]


def render_diff(saved: ExposedCatalogue, live: ExposedCatalogue, path: str) -> list[str]:
    """The lines ``tools --diff`` prints: a verdict, then one line per changed definition."""
    changes = diff_catalogues(saved, live)
    if not changes:
        return [f"catalogue unchanged: version {live.version} (same as {path})"]
    lines = [f"catalogue changed: {path} has version {saved.version}, the live catalogue {live.version}"]
    for change in changes:
        what = f"{_KIND_WORDS[change.kind]} {change.key}"
        if change.change != "changed":
            lines.append(f"  {change.change:<8} {what}")
            continue
        lines.append(f"  changed  {what}: {', '.join(change.fields)}")
        if "description" in change.fields:
            lines.extend(_description_diff(change))
    return lines


def diff_as_json(saved: ExposedCatalogue, live: ExposedCatalogue) -> dict[str, Any]:
    """``tools --diff FILE --json``: both versions and the changes, without the definitions."""
    return {
        "saved_version": saved.version,
        "live_version": live.version,
        "changes": [
            {"kind": change.kind, "key": change.key, "change": change.change, "fields": list(change.fields)}
            for change in diff_catalogues(saved, live)
        ],
    }
