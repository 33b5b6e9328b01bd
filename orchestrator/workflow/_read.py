"""Read a workflow file, or its text, into a ``WorkflowDraft``: the spec as far as it validates, and its problems.

The only I/O of the workflow package: it reads files, nothing else. YAML is read by
``orchestrator._locations.read_yaml``, so each key's line is known and a problem reads
``path:line: key.path: message`` as config problems do. YAML timestamps stay strings (a
workflow is JSON data), and duplicate keys are problems.

A file with format problems is not given up on: each value that failed validation is
dropped (so its default applies), and a required one is replaced by a placeholder, until
what is left validates. That salvaged spec lets the later checks (wiring, live tools) run
on every part that parsed, so one run reports every problem; ``broken`` names the places
whose later problems would only repeat the format problem, so they are not reported.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

from pydantic import BaseModel, ValidationError

from orchestrator._locations import (
    MISSING_KEY,
    KeyPath,
    LineMap,
    Problem,
    UnreadableSource,
    format_problem,
    read_text,
    read_yaml,
    unknown_key,
    validator_message,
)
from orchestrator.workflow._spec import (
    AnnotationsSpec,
    ApproveSpec,
    DefaultsSpec,
    LimitsSpec,
    OutputSpec,
    RetrySpec,
    SourceInfo,
    StepSpec,
    WorkflowSpec,
)

__all__ = ["WorkflowDraft", "read_workflow", "read_workflow_data", "read_workflow_text"]

_LOADER_OWNED_KEYS = ("source",)
_SALVAGE_ROUNDS: Final = 5
"""Rounds of dropping invalid values; each round fixes every error pydantic reported in the last."""
_PLACEHOLDER_TOOL: Final = "(invalid).(invalid)"
"""Stands in for a step's unusable ``tool``; no configured server can be called ``(invalid)``."""
_PLACEHOLDERS: Final[dict[KeyPath, object]] = {
    ("version",): 1,
    ("name",): "invalid_name",
    ("description",): "(invalid)",
    ("steps", "*", "tool"): _PLACEHOLDER_TOOL,
}
"""What stands in for a required value that is missing or invalid, so the rest can be checked."""
_DROPPED: Final = object()
"""Marks a list item to remove once a salvage round is done."""


def _model_keys(*models: type[BaseModel]) -> set[str]:
    return {info.alias or name for model in models for name, info in model.model_fields.items() if name != "source"}


_KEYS_BY_PLACE: dict[KeyPath, set[str]] = {
    (): _model_keys(WorkflowSpec),
    ("defaults",): _model_keys(DefaultsSpec),
    ("defaults", "retry"): _model_keys(RetrySpec),
    ("limits",): _model_keys(LimitsSpec),
    ("output",): _model_keys(OutputSpec),
    ("annotations",): _model_keys(AnnotationsSpec),
    ("steps", "*"): _model_keys(StepSpec),
    ("steps", "*", "retry"): _model_keys(RetrySpec),
    ("steps", "*", "approve"): _model_keys(ApproveSpec),
}


@dataclass(frozen=True, slots=True)
class WorkflowDraft:
    """A workflow file as far as it could be read.

    Attributes:
        path: The file, as named in messages.
        spec: The spec; salvaged (invalid values dropped or replaced) when ``problems`` is not
            empty; ``None`` when nothing usable was left (unreadable file, no steps...).
        problems: Format problems, located by key path.
        fatal: Problems that stopped reading (unreadable, not YAML, not a mapping), already
            worded; when set, ``spec`` is ``None`` and ``problems`` is empty.
        broken: Key paths that were dropped or replaced; later problems under them are echoes.
        lines: 1-based line of each key and list item.
    """

    path: str
    spec: WorkflowSpec | None
    problems: tuple[Problem, ...] = ()
    fatal: tuple[str, ...] = ()
    broken: frozenset[KeyPath] = field(default_factory=lambda: frozenset[KeyPath]())
    lines: LineMap = field(default_factory=lambda: {})

    @property
    def ok(self) -> bool:
        """Whether the file is a valid workflow as far as its format goes."""
        return self.spec is not None and not self.problems and not self.fatal


def read_workflow(path: str | Path) -> WorkflowDraft:
    """Read and validate one workflow file, salvaging what validates.

    Never raises for what is in the file: every problem is in the draft.

    Args:
        path: A YAML file.

    Returns:
        The draft; its ``spec`` carries ``source`` (the path and the line of every key).
    """
    name = str(path)
    try:
        text = read_text(Path(path))
    except UnreadableSource as exc:
        return WorkflowDraft(name, None, fatal=(exc.problem(name),))
    return read_workflow_text(text, name)


def read_workflow_text(text: str, name: str) -> WorkflowDraft:
    """Read and validate a workflow given as text (a run's snapshot of its file), salvaging what validates.

    Never raises for what is in the text: every problem is in the draft.

    Args:
        text: The workflow as YAML (or JSON).
        name: What messages call it, in place of a file's path.

    Returns:
        The draft; its ``spec`` carries ``source`` (``name`` and the line of every key).
    """
    try:
        read = read_yaml(text)
    except UnreadableSource as exc:
        return WorkflowDraft(name, None, fatal=(exc.problem(name),))
    return _read_document(read.data, name, read.lines, list(read.problems))


def read_workflow_data(data: object, name: str) -> WorkflowDraft:
    """Validate a workflow given as data (a JSON object, as a model writes one), salvaging what validates.

    As ``read_workflow_text``, with no lines to name: problems read ``name: key.path: message``.

    Args:
        data: The workflow as parsed JSON.
        name: What messages call it.

    Returns:
        The draft; its ``spec`` carries ``source`` (``name``, no lines).
    """
    return _read_document(data, name, {}, [])


def _read_document(data: object, name: str, lines: LineMap, problems: list[Problem]) -> WorkflowDraft:
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        return WorkflowDraft(name, None, fatal=(format_problem(name, None, (), f"expected a mapping, found {found}"),))
    document = dict(cast("dict[str, Any]", data))
    for key in _LOADER_OWNED_KEYS:
        if key in document:
            del document[key]
            problems.append(((key,), "unknown key"))
    try:
        spec: WorkflowSpec | None = WorkflowSpec.model_validate(document)
        broken: set[KeyPath] = set()
    except ValidationError as exc:
        problems += _validation_problems(exc)
        spec, broken = _salvage(document, exc)
    if spec is not None:
        spec = spec.model_copy(update={"source": SourceInfo(name, lines)})
    return WorkflowDraft(name, spec, tuple(problems), broken=frozenset(broken), lines=lines)


def _validation_problems(error: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for details in error.errors(include_url=False):
        loc = details["loc"]
        is_key = "[key]" in loc
        path: KeyPath = tuple(part for part in loc if part != "[key]")
        problems.append((path, _message(details["type"], details["msg"], path, is_key)))
    return problems


def _message(kind: str, message: str, path: KeyPath, is_key: bool) -> str:
    if kind == "extra_forbidden":
        place = ("steps", "*", *path[2:-1]) if path[:1] == ("steps",) else path[:-1]
        return unknown_key(str(path[-1]), _KEYS_BY_PLACE.get(place, set()))
    if kind == "missing":
        return MISSING_KEY
    if kind == "too_short" and path == ("steps",):
        return "a workflow needs at least one step"
    message = validator_message(message)
    return f"invalid key: {message}" if is_key else message


# ------------------------------------------------------------------- salvage


def _salvage(document: dict[str, Any], error: ValidationError) -> tuple[WorkflowSpec | None, set[KeyPath]]:
    """The spec left when every invalid value is dropped or replaced, and the places touched."""
    salvaged = copy.deepcopy(document)
    broken: set[KeyPath] = set()
    for _ in range(_SALVAGE_ROUNDS):
        for details in error.errors(include_url=False):
            if not _repair(salvaged, details["loc"], details["type"] == "missing", broken):
                return None, broken
        _purge(salvaged)
        try:
            return WorkflowSpec.model_validate(salvaged), broken
        except ValidationError as again:
            error = again
    return None, broken


def _repair(document: dict[str, Any], loc: tuple[str | int, ...], missing: bool, broken: set[KeyPath]) -> bool:
    """Drop or replace the value at ``loc``; False when the file has nothing left worth checking."""
    if "[key]" in loc:  # an invalid step id: the step cannot be kept under that name
        path: KeyPath = tuple(part for part in loc if part != "[key]")
        _drop(document, path)
        broken.add(path)
        return True
    path = tuple(loc)
    if not path or (path[0] == "steps" and len(path) == 1):
        return False  # no steps map: nothing to wire
    if path[0] == "steps" and len(path) == 2:
        # A step that is not a mapping: keep its id (others may name it), check nothing in it.
        _put(document, path, {"tool": _PLACEHOLDER_TOOL})
        broken.add(path)
        return True
    placeholder = _PLACEHOLDERS.get(("steps", "*", *path[2:]) if path[0] == "steps" else path)
    if placeholder is not None:
        _put(document, path, placeholder)
    elif missing:
        return _repair(document, path[:-1], False, broken)  # nothing to stand in: the enclosing value goes
    else:
        path = _deepest_present(document, path) or path
        _drop(document, path)
    broken.add(path)
    if path[0] == "steps" and path[2:3] == ("needs",) and len(path) == 3:
        # Without its needs, a step's references would all look like reads of non-ancestors.
        broken.update((*path[:2], key) for key in ("with", "if", "for_each"))
    return True


def _deepest_present(document: object, path: KeyPath) -> KeyPath:
    """The longest prefix of ``path`` that exists in ``document`` (pydantic may add type tags to a loc)."""
    node, found = document, 0
    for part in path:
        if isinstance(node, dict) and part in node:
            node = cast("dict[Any, Any]", node)[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(cast("list[Any]", node)):
            node = cast("list[Any]", node)[part]
        else:
            break
        found += 1
    return path[:found]


def _parent(document: object, path: KeyPath) -> object:
    node = document
    for part in path[:-1]:
        if isinstance(node, dict):
            node = cast("dict[Any, Any]", node).get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(cast("list[Any]", node)):
            node = cast("list[Any]", node)[part]
        else:
            return None
    return node


def _drop(document: object, path: KeyPath) -> None:
    if not path:
        return
    parent = _parent(document, path)
    if isinstance(parent, dict):
        cast("dict[Any, Any]", parent).pop(path[-1], None)
    elif isinstance(parent, list) and isinstance(path[-1], int) and 0 <= path[-1] < len(cast("list[Any]", parent)):
        # Marked, not removed yet, so the indexes of this round's other errors stay right.
        cast("list[Any]", parent)[path[-1]] = _DROPPED


def _purge(node: object) -> None:
    """Remove the list items ``_drop`` marked."""
    if isinstance(node, dict):
        for value in cast("dict[Any, Any]", node).values():
            _purge(value)
    elif isinstance(node, list):
        items = cast("list[Any]", node)
        items[:] = [item for item in items if item is not _DROPPED]
        for item in items:
            _purge(item)


def _put(document: object, path: KeyPath, value: object) -> None:
    parent = _parent(document, path)
    if isinstance(parent, dict):
        cast("dict[Any, Any]", parent)[path[-1]] = value
