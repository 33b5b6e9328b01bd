"""Load workflow files into specs, or check them: every problem of a file at once, format and wiring.

A file is read (``_read``: YAML, format, with a salvaged spec when the format has problems)
and, where that found problems, compiled all the same, so its wiring problems (cycles,
unknown steps, reads of steps that are not needs) come in the same report as its format
problems. ``check_workflow`` goes one step further and, given a live catalogue, adds the
problems of tools and arguments too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator._locations import KeyPath, LineMap, Problem, format_problem, format_problems
from orchestrator.errors import WorkflowDefinitionError
from orchestrator.workflow._compile import collect_problems
from orchestrator.workflow._read import WorkflowDraft, read_workflow, read_workflow_data, read_workflow_text

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from orchestrator.catalog import Catalog
    from orchestrator.workflow._plan import WorkflowPlan
    from orchestrator.workflow._spec import WorkflowSpec

__all__ = [
    "WORKFLOW_SUFFIXES",
    "WorkflowCheck",
    "check_workflow",
    "check_workflow_data",
    "load_workflow",
    "load_workflow_text",
    "load_workflows",
    "workflow_files",
]

WORKFLOW_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class WorkflowCheck:
    """What checking one workflow file found.

    Attributes:
        path: The file, as named in messages.
        spec: What the file declares, when it is valid as far as its format goes.
        plan: The compiled plan, when there is no problem at all.
        problems: Every problem, as ``path:line: key.path: message``, in line order.
    """

    path: str
    spec: WorkflowSpec | None
    plan: WorkflowPlan | None
    problems: list[str]


def check_workflow(
    path: str | Path,
    catalog: Catalog | None = None,
    reserved_names: Iterable[str] = frozenset(),
    *,
    unavailable_servers: Iterable[str] = frozenset(),
) -> WorkflowCheck:
    """Check one workflow file: format, wiring and, given ``catalog``, its tools and arguments.

    Every part that can be checked is, whatever the others' problems: a step whose keys
    are fine is checked against its tool even when another step has a typo.

    Args:
        path: A YAML file.
        catalog: The live catalogue, to check tools, retries, arguments and annotation claims.
        reserved_names: Names the composite may not take.
        unavailable_servers: Servers that are configured but not up (their steps are unchecked).

    Returns:
        The check; its ``plan`` is set only when ``problems`` is empty.
    """
    draft = read_workflow(path)
    plan, problems = _check_draft(draft, catalog, reserved_names, frozenset(unavailable_servers))
    return WorkflowCheck(draft.path, draft.spec if draft.ok else None, plan, problems)


def check_workflow_data(
    data: Mapping[str, object],
    name: str,
    catalog: Catalog | None = None,
    *,
    known_problems: Iterable[Problem] = (),
) -> WorkflowCheck:
    """Check a workflow given as data (a JSON object a model wrote), as ``check_workflow`` checks a file.

    Args:
        data: The workflow as parsed JSON.
        name: What messages call it: problems read ``name: key.path: message`` (data has no lines).
        catalog: The live catalogue, to check tools, retries, arguments and annotation claims.
        known_problems: Problems the caller found itself (a tool reference it could not
            resolve, a value over its caps), by key path; they are reported with the others,
            and the checks' own problems at or under their places are not (they would repeat them).

    Returns:
        The check; its ``plan`` is set only when ``problems`` is empty.
    """
    draft = read_workflow_data(dict(data), name)
    known = tuple(known_problems)
    if known and not draft.fatal:
        draft = replace(draft, problems=(*known, *draft.problems), broken=draft.broken | {path for path, _ in known})
    plan, problems = _check_draft(draft, catalog, (), frozenset())
    return WorkflowCheck(draft.path, draft.spec if draft.ok else None, plan, problems)


def load_workflow(path: str | Path) -> WorkflowSpec:
    """Read and validate one workflow file.

    Args:
        path: A YAML file.

    Returns:
        The spec, with ``source`` set to the path and the line of every key.

    Raises:
        WorkflowDefinitionError: The file is unreadable, not YAML, or not a valid workflow; lists
            every problem as ``path:line: key.path: message``: its format problems and, checked
            on the parts that are valid, its wiring problems.
    """
    return _spec_of(read_workflow(path))


def load_workflow_text(text: str, name: str) -> WorkflowSpec:
    """Read and validate a workflow given as text, such as the snapshot a journalled run keeps.

    Args:
        text: The workflow as YAML (or JSON).
        name: What messages call it, in place of a file's path (``run 1f2e…``).

    Returns:
        The spec, with ``source`` set to ``name`` and the line of every key.

    Raises:
        WorkflowDefinitionError: The text is not YAML or not a valid workflow; lists every
            problem as ``name:line: key.path: message``, as ``load_workflow`` does.
    """
    return _spec_of(read_workflow_text(text, name))


def _spec_of(draft: WorkflowDraft) -> WorkflowSpec:
    if draft.ok and draft.spec is not None:
        return draft.spec
    _, problems = _check_draft(draft, None, (), frozenset())
    raise WorkflowDefinitionError(draft.path, problems)


def _check_draft(
    draft: WorkflowDraft, catalog: Catalog | None, reserved_names: Iterable[str], unavailable: frozenset[str]
) -> tuple[WorkflowPlan | None, list[str]]:
    if draft.fatal:
        return None, list(draft.fatal)
    problems: list[Problem] = list(draft.problems)
    plan: WorkflowPlan | None = None
    if draft.spec is not None:
        plan, wiring = collect_problems(
            draft.spec, draft.path, catalog, reserved_names, unavailable_servers=unavailable
        )
        problems += [problem for problem in wiring if not _under(problem[0], draft.broken)]
    if problems:
        return None, format_problems(draft.path, problems, draft.lines)
    return plan, []


def _under(path: KeyPath, broken: frozenset[KeyPath]) -> bool:
    return any(path[: len(place)] == place for place in broken)


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
            raise WorkflowDefinitionError(str(entry), [format_problem(str(entry), None, (), "no such file or folder")])
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
