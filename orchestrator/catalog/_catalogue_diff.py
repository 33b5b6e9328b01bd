"""What changed between two exposed catalogues: definitions added, removed, and changed field by field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.catalog._exposed import DEFINITION_KINDS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.catalog._exposed import ExposedCatalogue

__all__ = ["DefinitionChange", "diff_catalogues"]


@dataclass(frozen=True, slots=True)
class DefinitionChange:
    """One definition that differs between two catalogues.

    Attributes:
        kind: ``tools``, ``prompts``, ``resources`` or ``resourceTemplates``.
        key: The definition's name (a URI or URI template for resources and templates).
        change: ``added`` (only in the newer), ``removed`` (only in the older) or ``changed``.
        fields: The top-level fields whose values differ (present in one only counts), sorted;
            empty unless ``changed``.
        before: The definition in the older catalogue, if there.
        after: The definition in the newer catalogue, if there.
    """

    kind: str
    key: str
    change: Literal["added", "removed", "changed"]
    fields: tuple[str, ...] = ()
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None


def _by_key(catalogue: ExposedCatalogue, kind: str) -> dict[str, Mapping[str, Any]]:
    key = DEFINITION_KINDS[kind]
    return {str(definition.get(key)): definition for definition in catalogue.definitions.get(kind, ())}


def diff_catalogues(before: ExposedCatalogue, after: ExposedCatalogue) -> list[DefinitionChange]:
    """Every definition added, removed or changed from ``before`` to ``after``, by kind then key.

    Empty exactly when the two digests are equal.
    """
    changes: list[DefinitionChange] = []
    for kind in DEFINITION_KINDS:
        old, new = _by_key(before, kind), _by_key(after, kind)
        for key in sorted(old.keys() | new.keys()):
            if key not in new:
                changes.append(DefinitionChange(kind, key, "removed", before=old[key]))
            elif key not in old:
                changes.append(DefinitionChange(kind, key, "added", after=new[key]))
            elif old[key] != new[key]:
                names = old[key].keys() | new[key].keys()
                fields = tuple(sorted(name for name in names if old[key].get(name) != new[key].get(name)))
                changes.append(DefinitionChange(kind, key, "changed", fields, old[key], new[key]))
    return changes
