"""Read workflow files into ``WorkflowSpec``s, with every problem of a file reported at once.

The only I/O of the workflow package: it reads files, nothing else. YAML is composed into
nodes first, so each key's line is known and a problem reads ``path:line: key.path: message``.
YAML timestamps stay strings (a workflow is JSON data), and duplicate keys are problems.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.errors import WorkflowDefinitionError
from orchestrator.workflow._problems import LineMap, Problem, format_problems
from orchestrator.workflow._spec import (
    AnnotationsSpec,
    DefaultsSpec,
    KeyPath,
    LimitsSpec,
    OutputSpec,
    RetrySpec,
    SourceInfo,
    StepSpec,
    WorkflowSpec,
)

__all__ = ["WORKFLOW_SUFFIXES", "load_workflow", "load_workflows", "workflow_files"]

WORKFLOW_SUFFIXES = (".yaml", ".yml")
_LOADER_OWNED_KEYS = ("source",)
_MESSAGE_PREFIXES = ("Value error, ", "Assertion failed, ")
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _JsonLoader(yaml.SafeLoader):
    """A safe loader whose scalars are JSON's: ``2024-01-01`` stays a string."""


_JsonLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


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
}


def load_workflow(path: str | Path) -> WorkflowSpec:
    """Read and validate one workflow file.

    Args:
        path: A YAML file.

    Returns:
        The spec, with ``source`` set to the path and the line of every key.

    Raises:
        WorkflowDefinitionError: The file is unreadable, not YAML, or not a valid workflow; lists
            every problem as ``path:line: key.path: message``.
    """
    name = str(path)
    data, lines, problems = _read(Path(path))
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        raise WorkflowDefinitionError(name, [f"{name}: (top level): expected a mapping, found {found}"])
    document = dict(cast("dict[str, Any]", data))
    for key in _LOADER_OWNED_KEYS:
        if key in document:
            del document[key]
            problems.append(((key,), "unknown key"))
    spec: WorkflowSpec | None = None
    try:
        spec = WorkflowSpec.model_validate(document)
    except ValidationError as exc:
        problems += _validation_problems(exc)
    if problems or spec is None:
        raise WorkflowDefinitionError(name, format_problems(name, problems, lines))
    return spec.model_copy(update={"source": SourceInfo(name, lines)})


def workflow_files(paths: Iterable[str | Path]) -> list[Path]:
    """The workflow files named by ``paths``: files as given, folders by their ``*.yaml``/``*.yml`` (sorted).

    Raises:
        WorkflowDefinitionError: A path does not exist.
    """
    files: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            files += sorted(p for p in entry.iterdir() if p.suffix.lower() in WORKFLOW_SUFFIXES and p.is_file())
        elif entry.exists():
            files.append(entry)
        else:
            raise WorkflowDefinitionError(str(entry), [f"{entry}: (top level): no such file or folder"])
    return files


def load_workflows(paths: Iterable[str | Path]) -> list[WorkflowSpec]:
    """Load every workflow named by ``paths`` (files, or folders of ``*.yaml``/``*.yml``).

    Every file is read, so one error lists the problems of all files; two files defining
    the same composite name are a problem too. A caller that prefers to skip a broken file
    and serve the rest loops over ``workflow_files`` with ``load_workflow`` instead.

    Raises:
        WorkflowDefinitionError: A path does not exist, or some file is invalid; ``path`` is the
            first bad file and ``problems`` holds the problems of every bad file.
    """
    specs: list[WorkflowSpec] = []
    failures: list[WorkflowDefinitionError] = []
    first_file: dict[str, str] = {}
    for file in workflow_files(paths):
        try:
            spec = load_workflow(file)
        except WorkflowDefinitionError as exc:
            failures.append(exc)
            continue
        if (other := first_file.setdefault(spec.name, str(file))) != str(file):
            lines: LineMap = spec.source.lines if spec.source else {}
            message = f"composite {spec.name!r} is also defined in {other}"
            failures.append(
                WorkflowDefinitionError(str(file), format_problems(str(file), [(("name",), message)], lines))
            )
            continue
        specs.append(spec)
    if failures:
        raise WorkflowDefinitionError(failures[0].path, [p for failure in failures for p in failure.problems])
    return specs


def _read(path: Path) -> tuple[object, LineMap, list[Problem]]:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WorkflowDefinitionError(name, [f"{name}: (top level): not UTF-8 text (byte {exc.start})"]) from exc
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise WorkflowDefinitionError(name, [f"{name}: (top level): cannot read the file: {why}"]) from exc
    # Parsed twice: into nodes, which know their lines, and into data. Workflow files are small.
    try:
        node = _JsonLoader(text).get_single_node()
        data: object = yaml.load(text, Loader=_JsonLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}" if mark is not None else ""
        what = " ".join(part for part in (exc.context, exc.problem) if part) or "syntax error"
        raise WorkflowDefinitionError(name, [f"{name}{where}: (top level): invalid YAML: {what}"]) from exc
    except yaml.YAMLError as exc:
        raise WorkflowDefinitionError(name, [f"{name}: (top level): invalid YAML: {type(exc).__name__}"]) from exc
    lines: dict[KeyPath, int] = {}
    problems: list[Problem] = []
    if node is not None:
        _record_lines(node, (), lines, problems)
    return data, lines, problems


def _record_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], problems: list[Problem]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in cast("list[tuple[yaml.Node, yaml.Node]]", node.value):
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key, line = cast("str", key_node.value), key_node.start_mark.line + 1
            if key in seen:
                problems.append(((*path, key), f"duplicate key (first on line {seen[key]})"))
            seen[key] = line
            lines[(*path, key)] = line
            _record_lines(value_node, (*path, key), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(cast("list[yaml.Node]", node.value)):
            lines[(*path, index)] = item.start_mark.line + 1
            _record_lines(item, (*path, index), lines, problems)


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
        keys = sorted(_KEYS_BY_PLACE.get(place, set()))
        close = difflib.get_close_matches(str(path[-1]), keys, n=1, cutoff=0.6)
        return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "too_short" and path == ("steps",):
        return "a workflow needs at least one step"
    for prefix in _MESSAGE_PREFIXES:
        message = message.removeprefix(prefix)
    return f"invalid key: {message}" if is_key else message
