"""Word JSON Schema validation errors as a user can act on them: ``field.path: what is allowed``.

Bottom module (imports only ``jsonschema``): used by the server's argument checks, the
workflow input checks, the workflow wiring checks and the downstream check of a tool's
result against its outputSchema, so one value gets one wording. It also builds the server's
argument validators and recognises the SDK's output-check errors, so that the modules loaded
at every start reach jsonschema only through here.

jsonschema (with referencing, attrs and rpds) costs tens of milliseconds to import, and a
server needs it at its first ``tools/call``, not to start or to list tools. So this module,
which modules loaded at every start import, imports jsonschema inside the functions that use
it, on purpose (the one place that does so), and names its types at module level only for the
type checker; by the time an error is worded, whoever made it has loaded jsonschema already.
The workflow compiler, itself loaded only to compile, imports jsonschema directly.

jsonschema's own messages are kept except where they hide the fix: an ``enum`` or ``const``
is worded with the allowed values in JSON, and an ``anyOf``/``oneOf`` ("is not valid under
any of the given schemas") is summarised from its branches: the allowed values and types
when every branch is a plain enum, const or type, else the branch error that matches best.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final, cast

if TYPE_CHECKING:
    from collections.abc import Iterable

    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

__all__ = ["checked_validator", "describe_error", "describe_errors", "explain_error", "field_path", "schema_violation"]

_MAX_VALUE = 60
_MAX_CHOICES = 20
_TYPE_PHRASES: Final = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
}
_ROOT: Final = "(arguments)"


def checked_validator(schema: dict[str, Any]) -> tuple[Validator | None, str | None]:
    """A validator for ``schema`` that never fetches a ``$ref``, or why ``schema`` is not a valid JSON Schema.

    The schema's ``$schema`` names its draft (2020-12 when it names none). The first call
    loads jsonschema (see the module docstring).
    """
    from jsonschema import Draft202012Validator, SchemaError, validators
    from referencing import Registry

    cls = validators.validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        return None, exc.message
    return cls(schema, registry=Registry()), None


def schema_violation(exc: BaseException | None) -> ValidationError | None:
    """``exc`` if it is jsonschema's error for a value that does not fit its schema, else ``None``.

    For the cause of the SDK client's failed output check, which loaded jsonschema to make it.
    """
    from jsonschema import ValidationError

    return exc if isinstance(exc, ValidationError) else None


def describe_errors(validator: Validator, instance: Any, limit: int) -> list[str]:
    """Every way ``instance`` does not fit ``validator``'s schema, as ``path: message``, at most ``limit``."""
    found: list[str] = []
    for error in validator.iter_errors(instance):
        found.append(describe_error(error))
        if len(found) >= limit:
            break
    return found


def describe_error(error: ValidationError) -> str:
    """One error as ``path: message``; the path is ``(arguments)`` for the whole value."""
    path, message = explain_error(error)
    return f"{field_path(path) or _ROOT}: {message}"


def field_path(path: Iterable[str | int]) -> str:
    """A path into a JSON value as a user reads it: ``filters.status``, ``items[0].id``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def explain_error(error: ValidationError) -> tuple[tuple[str | int, ...], str]:
    """Where the error is (its path into the value, possibly deeper than ``error``'s) and what it is."""
    path = tuple(cast("Iterable[str | int]", error.absolute_path))
    if error.validator == "enum":
        return path, f"{_show(error.instance)} is not one of {_choices(cast('list[Any]', error.validator_value))}"
    if error.validator == "const":
        return path, f"{_show(error.instance)} is not {_show(error.validator_value)}"
    if error.validator in ("anyOf", "oneOf") and error.context:
        allowed = _alternatives(error.context)
        if allowed is not None:
            return path, f"{_show(error.instance)} is not {allowed}"
        # Given the anyOf error itself, best_match descends into the branch that went deepest
        # and fits the value's type; it returns the error itself when no branch stands out.
        from jsonschema.exceptions import best_match  # pyright: ignore[reportUnknownVariableType] - untyped `key` default

        best = cast("ValidationError | None", best_match([error]))
        if best is not None and best is not error:
            return explain_error(best)
    return path, error.message


def _alternatives(branch_errors: list[ValidationError]) -> str | None:
    """What the branches allow, when each is a plain enum, const or type; else None."""
    by_branch: dict[object, list[ValidationError]] = {}
    for error in branch_errors:
        if error.relative_path:
            return None  # a branch that looked inside the value: no one-line summary fits
        by_branch.setdefault(error.relative_schema_path[0], []).append(error)
    values: list[str] = []
    types: list[str] = []
    for errors in by_branch.values():
        kinds = {str(error.validator): error for error in errors}
        if "enum" in kinds:
            values += [_show(v) for v in cast("list[Any]", kinds["enum"].validator_value)]
        elif "const" in kinds:
            values.append(_show(kinds["const"].validator_value))
        elif set(kinds) == {"type"}:
            for kind in _as_list(kinds["type"].validator_value):
                if kind == "null":
                    values.append("null")
                else:
                    types.append(_TYPE_PHRASES.get(kind, repr(kind)))
        else:
            return None
    parts = list(dict.fromkeys(types))
    values = list(dict.fromkeys(values))
    if values:
        parts.append(values[0] if len(values) == 1 else f"one of {_join(values)}")
    return " or ".join(parts) if parts else None


def _choices(values: list[Any]) -> str:
    return _join([_show(value) for value in values])


def _join(shown: list[str]) -> str:
    if len(shown) > _MAX_CHOICES:
        return ", ".join(shown[:_MAX_CHOICES]) + f", ... ({len(shown) - _MAX_CHOICES} more)"
    return ", ".join(shown)


def _as_list(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(item) for item in cast("Iterable[object]", value)] if isinstance(value, list) else []


def _show(value: object) -> str:
    """A value as JSON (what the user wrote), cut short."""
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."
