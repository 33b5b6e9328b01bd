"""Readable reports of pending pin changes: which fields of a definition changed, and how.

Pure module: no I/O. It reads the canonical JSON texts the pins keep (``definition`` on the
store's records) and writes, per changed top-level field, a compact unified diff: a
description line by line (and sentence by sentence, since descriptions are often one long
line, and an appended instruction is exactly what a reviewer must see), a schema or any other
value as pretty-printed JSON. Every line shown has its invisible characters written as
``<U+XXXX>``: a hidden payload is shown, and a definition cannot drive the terminal that
prints it. Diffs are capped, so one huge change cannot flood a report.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from orchestrator.trust._fingerprint import DEFINITION_TEXT_LIMIT, kind_word
from orchestrator.trust._inspect import show_hidden

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from orchestrator.store import ServerPins

__all__ = ["ChangeKind", "ChangeReport", "describe_change", "report_pending"]

ChangeKind = Literal["added", "changed", "removed"]

MAX_FIELD_LINES = 30
"""Diff lines shown per field; the rest is counted."""
MAX_LINE_CHARS = 160
"""Characters shown per diff line."""

_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+")
_LIMIT_KIB = DEFINITION_TEXT_LIMIT // 1024


def _not_kept(which: str) -> str:
    return f"(the {which} text is not kept, being over {_LIMIT_KIB} KiB: only which fields changed is known)"


@dataclass(frozen=True, slots=True)
class ChangeReport:
    """One pending change of one definition, described for a person.

    Attributes:
        kind: ``tool``, ``prompt`` or ``resource_template``.
        name: The definition's name on its server.
        change: ``added``, ``changed`` or ``removed``.
        fields: The top-level fields that differ (for ``changed``), sorted.
        summary: One line, e.g. ``tool 'search': changed: description``.
        details: The field-by-field diff, each line already indented under its field.
    """

    kind: str
    name: str
    change: ChangeKind
    fields: tuple[str, ...]
    summary: str
    details: tuple[str, ...]

    def lines(self) -> list[str]:
        """The summary, then the details indented by two spaces."""
        return [self.summary, *(f"  {line}" for line in self.details)]


def _parsed(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None  # not written by this version: treated as not kept
    return cast("dict[str, Any]", value) if isinstance(value, dict) else None


def _text_lines(value: object) -> list[str]:
    if isinstance(value, str):
        lines = [part for line in value.splitlines() for part in _SENTENCE_END.split(line)]
    else:
        lines = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    return [show_hidden(line) for line in lines]


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…"


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_FIELD_LINES:
        return [_clip(line) for line in lines]
    hidden = len(lines) - MAX_FIELD_LINES
    return [*(_clip(line) for line in lines[:MAX_FIELD_LINES]), f"… {hidden} more line(s)"]


def _field_diff(pinned: object, live: object, *, present_before: bool, present_now: bool) -> list[str]:
    before = _text_lines(pinned) if present_before else []
    after = _text_lines(live) if present_now else []
    shown: list[str] = []
    for line in difflib.unified_diff(before, after, n=1, lineterm=""):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            if shown:
                shown.append("…")
            continue
        shown.append(f"{line[:1]} {line[1:]}")  # "- text": the mark apart from the text it marks
    return _capped(shown)


def _field_names(
    pinned: Mapping[str, Any] | None, live: Mapping[str, Any] | None, changed_fields: Sequence[str]
) -> tuple[str, ...]:
    if changed_fields:
        return tuple(sorted(changed_fields))
    if pinned is None or live is None:
        return ()
    return tuple(sorted(key for key in pinned.keys() | live.keys() if pinned.get(key) != live.get(key)))


def _changed_details(
    pinned: Mapping[str, Any] | None, live: Mapping[str, Any] | None, fields: Sequence[str]
) -> list[str]:
    if pinned is None or live is None:
        return [_not_kept("pinned" if pinned is None else "live")]
    details: list[str] = []
    for name in fields:
        was, now = name in pinned, name in live
        state = "added" if not was else "removed" if not now else "changed"
        details.append(f"{name} ({state}):")
        diff = _field_diff(pinned.get(name), live.get(name), present_before=was, present_now=now)
        details.extend(f"  {line}" for line in diff)
    return details


def _added_details(live: Mapping[str, Any] | None) -> list[str]:
    if live is None:
        return [f"(its text is not kept, being over {_LIMIT_KIB} KiB)"]
    details: list[str] = []
    for name in sorted(live):
        details.append(f"{name}:")
        details.extend(f"  {line}" for line in _capped(_text_lines(live[name])))
    return details


def _change_report(
    kind: str,
    name: str,
    pinned: str | None,
    live: str | None,
    *,
    change: ChangeKind,
    changed_fields: Sequence[str] = (),
) -> ChangeReport:
    what = f"{kind_word(kind)} {show_hidden(name)!r}"
    if change == "removed":
        summary = f"{what}: removed (no longer listed; approving it removes its pin)"
        return ChangeReport(kind, name, change, (), summary, ())
    if change == "added":
        summary = f"{what}: added (not pinned before; listed fields below)"
        return ChangeReport(kind, name, change, (), summary, tuple(_added_details(_parsed(live))))
    before, after = _parsed(pinned), _parsed(live)
    fields = _field_names(before, after, changed_fields)
    summary = f"{what}: changed" + (f": {', '.join(fields)}" if fields else "")
    return ChangeReport(kind, name, change, fields, summary, tuple(_changed_details(before, after, fields)))


def describe_change(
    kind: str,
    name: str,
    pinned: str | None,
    live: str | None,
    *,
    change: ChangeKind,
    changed_fields: Sequence[str] = (),
) -> list[str]:
    """A readable account of one pending change: a summary line, then per field a compact diff.

    Args:
        kind: ``tool``, ``prompt`` or ``resource_template``.
        name: The definition's name on its server.
        pinned: The pinned canonical JSON text; ``None`` when there is no pin (``added``) or
            its text was not kept.
        live: The live canonical JSON text; ``None`` when it is gone (``removed``) or its
            text was not kept.
        change: What happened to the definition.
        changed_fields: The fields whose hashes differ, when known; otherwise they are found
            by comparing the texts.

    Returns:
        The summary line (e.g. ``tool 'search': changed: description``), then for each
        changed field its name and its diff (``-`` pinned, ``+`` live), indented; a text
        that is not kept is said so in place of its diff.
    """
    report = _change_report(kind, name, pinned, live, change=change, changed_fields=changed_fields)
    return report.lines()


def report_pending(pins: ServerPins) -> list[ChangeReport]:
    """Every pending change of one server, described, sorted by kind and name.

    A pending identity is not among them: it is one line, ``pins.pending_identity``.
    """
    pinned = {(item.kind, item.name): item for item in pins.definitions}
    reports: list[ChangeReport] = []
    for pending in pins.pending:
        pin = pinned.get((pending.kind, pending.name))
        if pending.removed:
            change: ChangeKind = "removed"
        elif pin is None:
            change = "added"
        else:
            change = "changed"
        fields: tuple[str, ...] = ()
        if pin is not None and pending.fields is not None:
            names = set(pin.fields) | set(pending.fields)
            fields = tuple(sorted(n for n in names if pin.fields.get(n) != pending.fields.get(n)))
        reports.append(
            _change_report(
                pending.kind,
                pending.name,
                None if pin is None else pin.definition,
                pending.definition,
                change=change,
                changed_fields=fields,
            )
        )
    return reports
