"""``${{ <JMESPath> }}`` expressions and the JSON templates that hold them.

Pure module: no I/O, no ``eval``, no templating engine. Expressions are compiled once with
``jmespath.compile``; data only ever reaches them as the search context, never as text to
parse, so a value holding ``}}`` or quotes cannot change what an expression does.

A template is any JSON value whose strings may hold expressions. A string that is only
``${{ e }}`` renders as e's JSON value (its type kept); inside a longer string the value is
interpolated (strings as they are, other values JSON-encoded). References to ``steps.<id>``
are found by walking the JMESPath syntax tree, so the compiler can check them against needs.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any, Literal, cast

import jmespath
from jmespath import exceptions as jmespath_errors

from orchestrator.errors import WorkflowError
from orchestrator.workflow._jmespath_tree import References, SyntaxTree, function_problems, references

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator._locations import KeyPath

__all__ = [
    "Expression",
    "ExpressionError",
    "References",
    "Template",
    "compile_expression",
    "compile_template",
    "truthy",
]

_OPEN, _CLOSE = "${{", "}}"
_QUOTES = "'\"`"


class ExpressionError(WorkflowError):
    """An expression or template is invalid, or failed while being evaluated.

    Attributes:
        expression: The JMESPath text, if the problem is in one expression.
        location: Where in the template the bad string sits (keys and indexes); empty at the top.
    """

    def __init__(self, message: str, expression: str | None = None, location: KeyPath = ()) -> None:
        self.expression = expression
        self.location = location
        super().__init__(message)


class Expression:
    """One compiled JMESPath expression (the text between ``${{`` and ``}}``)."""

    __slots__ = ("_parsed", "_references", "text")

    def __init__(self, text: str) -> None:
        """Compile ``text``.

        Raises:
            ExpressionError: A syntax error (with its position), or an unknown function or wrong arity.
        """
        self.text = text
        try:
            parsed = jmespath.compile(text)
        except jmespath_errors.JMESPathError as exc:
            raise ExpressionError(_syntax_message(text, exc), text) from None
        tree = cast("SyntaxTree", parsed.parsed)
        for problem in function_problems(tree):
            raise ExpressionError(f"invalid expression `{text}`: {problem}", text)
        self._parsed = parsed
        self._references = references(tree)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def references(self) -> References:
        """What this expression reads from its context."""
        return self._references

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """Search ``context`` (``input``, ``steps``, ...) and return the JSON value found.

        Raises:
            ExpressionError: A function got a value of the wrong type, or similar.
        """
        try:
            return self._parsed.search(context)
        except jmespath_errors.JMESPathError as exc:
            raise ExpressionError(f"expression `{self.text}` failed: {_runtime_message(exc)}", self.text) from None
        except (TypeError, ValueError) as exc:
            # jmespath compares with Python operators: `"x" < 1` raises TypeError, not a JMESPathError.
            raise ExpressionError(f"expression `{self.text}` failed: {exc}", self.text) from None


TemplateKind = Literal["literal", "expression", "text", "object", "array"]


class Template:
    """A compiled JSON template.

    Attributes:
        kind: ``literal`` (no expression anywhere inside), ``expression`` (a string that is only
            ``${{ e }}``), ``text`` (a string mixing text and expressions), ``object`` or ``array``.
        value: The value of a literal.
        fields: The member templates of an object.
    """

    __slots__ = ("_items", "_parts", "_references", "fields", "kind", "value")

    def __init__(
        self,
        kind: TemplateKind,
        *,
        value: Any = None,
        parts: tuple[str | Expression, ...] = (),
        fields: Mapping[str, Template] | None = None,
        items: tuple[Template, ...] = (),
    ) -> None:
        self.kind: TemplateKind = kind
        self.value: Any = value
        self._parts = parts
        self.fields: Mapping[str, Template] = fields or {}
        self._items = items
        refs = References()
        for part in parts:
            if isinstance(part, Expression):
                refs |= part.references()
        for child in (*self.fields.values(), *items):
            refs |= child.references()
        self._references = refs

    def __repr__(self) -> str:
        return f"Template({self.kind})"

    def references(self) -> References:
        """What rendering this template reads from its context."""
        return self._references

    def render(self, context: Mapping[str, Any]) -> Any:
        """The JSON value of this template in ``context``; containers are always fresh copies.

        Raises:
            ExpressionError: An expression failed while being evaluated.
        """
        if self.kind == "literal":
            return _json_copy(self.value)
        if self.kind == "object":
            return {key: child.render(context) for key, child in self.fields.items()}
        if self.kind == "array":
            return [child.render(context) for child in self._items]
        if self.kind == "expression":
            return cast("Expression", self._parts[0]).evaluate(context)
        return "".join(part if isinstance(part, str) else _as_text(part.evaluate(context)) for part in self._parts)

    def source(self) -> Any:
        """The template as written: JSON whose strings hold ``${{ expression }}``s (normalised spacing)."""
        if self.kind == "literal":
            return copy.deepcopy(self.value)
        if self.kind == "object":
            return {key: child.source() for key, child in self.fields.items()}
        if self.kind == "array":
            return [child.source() for child in self._items]
        return "".join(part if isinstance(part, str) else f"{_OPEN} {part.text} {_CLOSE}" for part in self._parts)

    @property
    def items(self) -> tuple[Template, ...]:
        """The element templates of an array."""
        return self._items


def compile_expression(text: str) -> Expression:
    """Compile a field that must be exactly one ``${{ expression }}`` (``if``, ``for_each``).

    Raises:
        ExpressionError: ``text`` is not a single ``${{ }}``, or the expression is invalid.
    """
    parts = _split(text)
    if len(parts) != 1 or not isinstance(parts[0], Expression):
        raise ExpressionError("must be a single ${{ expression }}, e.g. ${{ input.enabled }}")
    return parts[0]


def compile_template(value: Any) -> Template:
    """Compile a JSON value whose strings may hold ``${{ expression }}``s.

    Raises:
        ExpressionError: An expression is invalid, or ``value`` is not JSON (``location`` says where).
    """
    return _compile(value, ())


def truthy(value: Any) -> bool:
    """JMESPath truth, as ``if`` applies it.

    False, null, and empty strings, arrays and objects are false; every number is true.
    """
    if value is None or value is False:
        return False
    return not (isinstance(value, str | list | dict) and len(cast("str | list[Any] | dict[str, Any]", value)) == 0)


def _compile(value: Any, location: KeyPath) -> Template:
    if isinstance(value, str):
        try:
            parts = _split(value)
        except ExpressionError as exc:
            raise ExpressionError(str(exc), exc.expression, location) from None
        if not any(isinstance(part, Expression) for part in parts):
            return Template("literal", value=value)
        return Template("expression" if len(parts) == 1 else "text", parts=tuple(parts))
    if value is None or isinstance(value, bool | int | float):
        return Template("literal", value=value)
    if isinstance(value, dict):
        fields: dict[str, Template] = {}
        for key, child in cast("dict[object, Any]", value).items():
            if not isinstance(key, str):
                raise ExpressionError(f"object keys must be strings, not {type(key).__name__}", None, location)
            fields[key] = _compile(child, (*location, key))
        if all(child.kind == "literal" for child in fields.values()):
            return Template("literal", value={key: child.value for key, child in fields.items()})
        return Template("object", fields=fields)
    if isinstance(value, list | tuple):
        items = tuple(_compile(child, (*location, index)) for index, child in enumerate(cast("list[Any]", value)))
        if all(child.kind == "literal" for child in items):
            return Template("literal", value=[child.value for child in items])
        return Template("array", items=items)
    raise ExpressionError(f"not a JSON value: {type(value).__name__}", None, location)


def _split(text: str) -> list[str | Expression]:
    """Literal text and expressions, in order; empty literal text is left out."""
    parts: list[str | Expression] = []
    position = 0
    while (start := text.find(_OPEN, position)) != -1:
        end = _closing(text, start + len(_OPEN))
        if end is None:
            # Most often an unclosed quote swallowed the '}}': JMESPath's own error says so best.
            if (naive_end := text.find(_CLOSE, start + len(_OPEN))) != -1:
                Expression(text[start + len(_OPEN) : naive_end].strip())
            raise ExpressionError(f"'{_OPEN}' at character {start + 1} has no closing '{_CLOSE}'")
        source = text[start + len(_OPEN) : end].strip()
        if not source:
            raise ExpressionError(f"empty expression at character {start + 1}")
        if start > position:
            parts.append(text[position:start])
        parts.append(Expression(source))
        position = end + len(_CLOSE)
    if position < len(text):
        parts.append(text[position:])
    return parts


def _closing(text: str, start: int) -> int | None:
    """Index of the ``}}`` closing an expression, skipping braces inside JMESPath literals and hashes."""
    depth, quote, index = 0, "", start
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in _QUOTES:
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0 and text.startswith(_CLOSE, index):
                return index
            depth = max(depth - 1, 0)
        index += 1
    return None


def _json_copy(value: Any) -> Any:
    """A fresh copy of a JSON value: ``copy.deepcopy`` without its memo and dispatch, which JSON does not need."""
    if isinstance(value, dict):
        return {key: _json_copy(child) for key, child in cast("dict[str, Any]", value).items()}
    if isinstance(value, list):
        return [_json_copy(child) for child in cast("list[Any]", value)]
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _syntax_message(text: str, exc: jmespath_errors.JMESPathError) -> str:
    if isinstance(exc, jmespath_errors.LexerError):
        what, position = str(exc.message), cast("int | None", exc.lexer_position)
    elif isinstance(exc, jmespath_errors.IncompleteExpressionError):
        what, position = "the expression is incomplete", len(text)
    elif isinstance(exc, jmespath_errors.ParseError):
        token = f" {exc.token_value!r}" if exc.token_value not in (None, "") else ""
        what, position = f"unexpected token{token}", cast("int | None", exc.lex_position)
    else:
        what, position = "invalid syntax", None
    where = f" at character {position + 1}" if isinstance(position, int) else ""
    return f"invalid expression `{text}`: {what}{where}"


def _runtime_message(exc: jmespath_errors.JMESPathError) -> str:
    return " ".join(str(exc).split())
