"""Checks of a workflow against the downstream tools and JSON Schemas: is it wired right?

Pure module: no I/O. Used by the compiler and again by ``WorkflowPlan.check_against`` when
the catalogue changes. Arguments are checked only where that is decidable: which keys are
given, the literal parts of ``with`` against the tool's ``inputSchema``, and text (an
expression inside a string) against the type the tool expects. Schemas are compiled with
an empty ``$ref`` registry, so no check can fetch anything over the network.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import mcp_types as types
from jsonschema import Draft202012Validator, SchemaError, validators
from referencing import Registry

from orchestrator._schema_messages import explain_error
from orchestrator.catalog import is_app_only
from orchestrator.workflow._spec import AnnotationsSpec

if TYPE_CHECKING:
    from collections.abc import Iterable

    from jsonschema.protocols import Validator

    from orchestrator._locations import KeyPath, Problem
    from orchestrator.catalog import Catalog
    from orchestrator.workflow._expr import Template

__all__ = [
    "AnnotatedStep",
    "WiredStep",
    "argument_problems",
    "derive_annotations",
    "find_tool",
    "is_idempotent_tool",
    "make_validator",
    "may_destroy",
    "name_problems",
    "retry_problems",
    "schema_problem",
    "split_tool_reference",
]

_EMPTY_REGISTRY: Registry[Any] = Registry()
_MAX_MESSAGE = 200


class WiredStep(Protocol):
    """What the wiring checks need to know of a step (a ``StepPlan`` is one)."""

    @property
    def id(self) -> str: ...
    @property
    def server(self) -> str: ...
    @property
    def tool(self) -> str: ...
    @property
    def arguments(self) -> Template: ...
    @property
    def declared_retry(self) -> bool: ...
    @property
    def declared_idempotent(self) -> bool | None: ...


@dataclass(frozen=True, slots=True)
class AnnotatedStep:
    """A step's tool annotations (``None`` when unknown) and whether the step may be repeated."""

    step_id: str
    annotations: types.ToolAnnotations | None
    idempotent: bool | None


def split_tool_reference(reference: str, servers: frozenset[str] | None = None) -> tuple[str, str]:
    """``'<server>.<tool>'`` as (server, tool).

    Server keys may hold dots, so with known ``servers`` the first split whose server exists
    wins; otherwise the reference splits at its first dot.
    """
    if servers:
        for index, char in enumerate(reference):
            if char == "." and reference[:index] in servers:
                return reference[:index], reference[index + 1 :]
    server, _, tool = reference.partition(".")
    return server, tool


def find_tool(
    step_id: str, server: str, tool: str, catalog: Catalog, unavailable: frozenset[str] = frozenset()
) -> tuple[types.Tool | None, list[Problem]]:
    """The server's own definition of ``tool``, or a problem saying why there is none.

    ``unavailable`` names servers that are configured but not up: their tools are unknown,
    which is not the same mistake as naming a server that does not exist.
    """
    where: KeyPath = ("steps", step_id, "tool")
    if server in unavailable and server not in catalog.servers:
        return None, [(where, f"server {server!r} is not available, so {server}.{tool} could not be checked")]
    if server not in catalog.servers:
        known = ", ".join(sorted(catalog.servers)) or "none"
        return None, [(where, f"unknown server {server!r} (servers: {known})")]
    found = catalog.original_tool(server, tool)
    if found is None:
        names = [m.original for m in catalog.mappings if m.kind == "tool" and m.server == server]
        close = difflib.get_close_matches(tool, names, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return None, [(where, f"server {server!r} has no tool {tool!r}{hint}")]
    if is_app_only(found):
        # A composite (or a plan) is called by a model; a tool only an app may call is not its to call.
        only_apps = "is for apps only (its _meta.ui.visibility has no 'model'), not for a workflow"
        return None, [(where, f"{server}.{tool} {only_apps}")]
    return found, []


def is_idempotent_tool(tool: types.Tool) -> bool:
    """Whether the tool says repeating a call is safe (``idempotentHint`` or ``readOnlyHint``)."""
    hints = tool.annotations
    return hints is not None and (hints.idempotent_hint is True or hints.read_only_hint is True)


def may_destroy(annotations: types.ToolAnnotations | None) -> bool:
    """Whether a tool with these annotations may be destructive, by MCP's defaults.

    ``destructiveHint`` defaults to true and means something only when ``readOnlyHint`` is
    not true; unknown annotations (``None``) are the defaults, the worst case.
    """
    hints = annotations or types.ToolAnnotations()
    return hints.read_only_hint is not True and hints.destructive_hint is not False


def retry_problems(step: WiredStep, tool: types.Tool | None) -> list[Problem]:
    """A declared ``retry`` on a call that may not be repeated (decided with ``tool`` when known)."""
    if not step.declared_retry:
        return []
    where: KeyPath = ("steps", step.id, "retry")
    if step.declared_idempotent is False:
        return [(where, "a step with idempotent: false cannot retry")]
    if step.declared_idempotent is None and tool is not None and not is_idempotent_tool(tool):
        return [
            (
                where,
                f"retry needs an idempotent call: {step.server}.{step.tool} is not annotated idempotentHint "
                "or readOnlyHint; add idempotent: true to the step if repeating it is safe",
            )
        ]
    return []


def argument_problems(step: WiredStep, tool: types.Tool) -> list[Problem]:
    """What in ``with`` cannot satisfy the tool's ``inputSchema``, as far as that is decidable."""
    where: KeyPath = ("steps", step.id, "with")
    arguments, schema = step.arguments, tool.input_schema
    value: object = arguments.value
    if arguments.kind == "expression":
        return []  # known only at run time
    if arguments.kind == "literal" and isinstance(value, dict):
        literal = cast("dict[str, Any]", value)
        keys, text_keys = set(literal), set[str]()
    elif arguments.kind == "object":
        literal = {k: t.value for k, t in arguments.fields.items() if t.kind == "literal"}
        keys, text_keys = set(arguments.fields), {k for k, t in arguments.fields.items() if t.kind == "text"}
    else:
        return [(where, "must be an object of arguments")]
    validator = make_validator(schema)
    if validator is None:
        return []  # a broken schema is the downstream's to judge
    problems: list[Problem] = []
    properties = cast("dict[str, Any]", schema.get("properties") or {})
    required = [name for name in cast("list[str]", schema.get("required") or []) if name not in keys]
    for name in required:
        problems.append((where, f"missing required argument {name!r} of {step.server}.{step.tool}"))
    if schema.get("additionalProperties") is False and not schema.get("patternProperties"):
        takes = ", ".join(sorted(properties)) or "no arguments"
        for name in sorted(keys - set(properties)):
            problems.append(((*where, name), f"unknown argument {name!r} (the tool takes: {takes})"))
    for error in validator.iter_errors(literal):
        path, message = explain_error(error)
        if path:
            problems.append(((*where, *path), _short(message)))
    for name in sorted(text_keys):
        expected = _types_of(properties.get(name))
        if expected and "string" not in expected:
            problems.append(
                (
                    (*where, name),
                    f"is text (an expression inside a string) but the tool expects {' or '.join(expected)}",
                )
            )
    return problems


def name_problems(name: str, catalog: Catalog | None, reserved_names: Iterable[str]) -> list[Problem]:
    """A composite name taken by a reserved name or by an exposed catalogue tool."""
    if name in set(reserved_names):
        return [(("name",), f"composite name {name!r} is reserved")]
    if catalog is not None:
        for mapping in catalog.mappings:
            if mapping.kind == "tool" and mapping.exposed == name:
                return [
                    (("name",), f"composite name {name!r} clashes with tool {mapping.original!r} of {mapping.server!r}")
                ]
    return []


def derive_annotations(
    steps: Iterable[AnnotatedStep], claim: AnnotationsSpec | None, checked: bool
) -> tuple[types.ToolAnnotations, list[Problem]]:
    """The composite's annotations, derived conservatively, and claims in the file they contradict.

    Read-only only if every step is; destructive if any is; idempotent only if every step may be
    repeated; open-world if any is. Unknown annotations count as MCP's defaults (the worst case).
    A claim may only be more conservative; contradictions are problems when ``checked`` (the
    steps' annotations are known from a catalogue).
    """
    not_read_only: str | None = None
    destructive: str | None = None
    not_idempotent: str | None = None
    open_world: str | None = None
    for step in steps:
        hints = step.annotations or types.ToolAnnotations()
        read_only = hints.read_only_hint is True
        not_read_only = not_read_only or (None if read_only else step.step_id)
        destructive = destructive or (step.step_id if may_destroy(hints) else None)
        not_idempotent = not_idempotent or (None if read_only or step.idempotent is True else step.step_id)
        open_world = open_world or (None if hints.open_world_hint is False else step.step_id)
    claim = claim or AnnotationsSpec()
    problems: list[Problem] = []
    if checked:
        for key, claimed, culprit, why in (
            ("readOnlyHint", claim.read_only_hint is True, not_read_only, "is not read-only"),
            ("destructiveHint", claim.destructive_hint is False, destructive, "may be destructive"),
            ("idempotentHint", claim.idempotent_hint is True, not_idempotent, "is not idempotent"),
            ("openWorldHint", claim.open_world_hint is False, open_world, "is open-world"),
        ):
            if claimed and culprit is not None:
                problems.append((("annotations", key), f"cannot be claimed: step {culprit!r} {why}"))
    read_only = not_read_only is None and claim.read_only_hint is not False
    annotations = types.ToolAnnotations(
        title=claim.title,
        read_only_hint=read_only,
        destructive_hint=not read_only and (destructive is not None or claim.destructive_hint is True),
        idempotent_hint=not_idempotent is None and claim.idempotent_hint is not False,
        open_world_hint=open_world is not None or claim.open_world_hint is True,
    )
    return annotations, problems


def schema_problem(schema: dict[str, Any], *, object_type: bool = True) -> str | None:
    """Why ``schema`` is not a valid JSON Schema (of ``type: object`` when asked), or ``None``."""
    try:
        validators.validator_for(schema, default=Draft202012Validator).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"not a valid JSON Schema{f' at {where}' if where else ''}: {_short(exc.message)}"
    if object_type and schema.get("type") != "object":
        return "must be a JSON Schema with type: object"
    return None


def make_validator(schema: dict[str, Any]) -> Validator | None:
    """A validator for ``schema``, or ``None`` if the schema itself is invalid."""
    cls = validators.validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError:
        return None
    return cls(schema, registry=_EMPTY_REGISTRY)


def _types_of(schema: object) -> list[str]:
    if not isinstance(schema, dict):
        return []
    kind = cast("dict[str, Any]", schema).get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [str(k) for k in cast("list[object]", kind)]
    return []


def _short(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."
