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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath import functions as jmespath_functions

from orchestrator.errors import WorkflowError
from orchestrator.workflow._spec import KeyPath

__all__ = ["Expression", "ExpressionError", "References", "Template", "compile_expression", "compile_template"]

_OPEN, _CLOSE = "${{", "}}"
_QUOTES = "'\"`"
_FUNCTIONS = cast("dict[str, dict[str, Any]]", jmespath_functions.Functions().FUNCTION_TABLE)
# Nodes whose first child is evaluated where the node is, and the rest on what it yields.
_CHAINS = frozenset({"index_expression", "projection", "value_projection", "filter_projection", "flatten", "pipe"})
_Node = dict[str, Any]


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


@dataclass(frozen=True, slots=True)
class References:
    """What an expression or template reads from its context.

    Attributes:
        names: Top-level names read (``input``, ``steps``, the for_each variable, ``index``...).
        steps: Step ids read as ``steps.<id>``.
        all_steps: ``steps`` is read without naming one step (``steps.*``, ``keys(steps)``).
        whole_context: ``@`` is used at the top level, reading everything.
    """

    names: frozenset[str] = frozenset()
    steps: frozenset[str] = frozenset()
    all_steps: bool = False
    whole_context: bool = False

    def __or__(self, other: References) -> References:
        return References(
            self.names | other.names,
            self.steps | other.steps,
            self.all_steps or other.all_steps,
            self.whole_context or other.whole_context,
        )


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
        tree = cast("_Node", parsed.parsed)
        for problem in _function_problems(tree):
            raise ExpressionError(f"invalid expression `{text}`: {problem}", text)
        self._parsed = parsed
        self._references = _references(tree)

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
            return copy.deepcopy(self.value)
        if self.kind == "object":
            return {key: child.render(context) for key, child in self.fields.items()}
        if self.kind == "array":
            return [child.render(context) for child in self._items]
        if self.kind == "expression":
            return cast("Expression", self._parts[0]).evaluate(context)
        return "".join(part if isinstance(part, str) else _as_text(part.evaluate(context)) for part in self._parts)


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


def _children(node: _Node) -> list[_Node]:
    raw = cast("list[object]", node.get("children", []))
    return [cast("_Node", child) for child in raw if isinstance(child, dict)]


def _function_problems(node: _Node) -> Iterator[str]:
    if node.get("type") == "function_expression":
        name, arguments = str(node.get("value")), len(_children(node))
        entry = _FUNCTIONS.get(name)
        if entry is None:
            yield f"unknown function {name}()"
        else:
            signature = cast("tuple[dict[str, Any], ...]", entry["signature"])
            variadic = bool(signature and signature[-1].get("variadic"))
            if (arguments < len(signature)) if variadic else (arguments != len(signature)):
                expected = f"at least {len(signature)}" if variadic else str(len(signature))
                yield f"{name}() takes {expected} argument(s), not {arguments}"
    for child in _children(node):
        yield from _function_problems(child)


def _references(node: _Node) -> References:
    """What ``node`` reads when evaluated against the top-level context."""
    kind = node.get("type")
    children = _children(node)
    if kind == "field":
        name = str(node.get("value"))
        return References(frozenset({name}), all_steps=name == "steps")
    if kind in {"current", "identity"}:
        return References(whole_context=True)
    if kind == "subexpression" and children:
        head, rest = children[0], children[1:]
        if head.get("type") == "field":
            name = str(head.get("value"))
            if name != "steps":
                return References(frozenset({name}))
            step = _key(rest[0]) if rest else None
            return References(frozenset({name}), frozenset({step}) if step else frozenset(), all_steps=step is None)
        return _references(head)
    if kind in _CHAINS and children:
        return _references(children[0])
    if kind == "expref":
        return References()  # evaluated on elements, never on the top-level context
    refs = References()
    for child in children:
        refs |= _references(child)
    return refs


def _key(node: _Node) -> str | None:
    """The field name a node selects first, or ``None`` when it selects several or by computation."""
    if node.get("type") == "field":
        return str(node.get("value"))
    children = _children(node)
    if node.get("type") in _CHAINS and children:
        return _key(children[0])
    return None
