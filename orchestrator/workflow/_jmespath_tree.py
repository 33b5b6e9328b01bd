"""What a compiled JMESPath expression reads, found by walking its syntax tree; pure, no I/O.

JMESPath evaluates most nodes against the current value, but the right side of a
sub-expression, projection, filter or pipe, and ``&expr`` arguments, see the values the left
side yields. Only what is evaluated against the top-level context counts as a reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from jmespath import functions as jmespath_functions

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["References", "SyntaxTree", "function_problems", "references"]

SyntaxTree = dict[str, Any]
"""A node of ``jmespath.compile(...).parsed``: ``type``, ``children`` and ``value``."""

_FUNCTIONS = cast("dict[str, dict[str, Any]]", jmespath_functions.Functions().FUNCTION_TABLE)
# Nodes whose first child is evaluated where the node is, and the rest on what it yields.
_CHAINS = frozenset({"index_expression", "projection", "value_projection", "filter_projection", "flatten", "pipe"})


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


def _children(node: SyntaxTree) -> list[SyntaxTree]:
    raw = cast("list[object]", node.get("children", []))
    return [cast("SyntaxTree", child) for child in raw if isinstance(child, dict)]


def function_problems(node: SyntaxTree) -> Iterator[str]:
    """Calls of unknown functions or with the wrong number of arguments (JMESPath finds them only when run)."""
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
        yield from function_problems(child)


def references(node: SyntaxTree) -> References:
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
        return references(head)
    if kind in _CHAINS and children:
        return references(children[0])
    if kind == "expref":
        return References()  # evaluated on elements, never on the top-level context
    refs = References()
    for child in children:
        refs |= references(child)
    return refs


def _key(node: SyntaxTree) -> str | None:
    """The field name a node selects first, or ``None`` when it selects several or by computation."""
    if node.get("type") == "field":
        return str(node.get("value"))
    children = _children(node)
    if node.get("type") in _CHAINS and children:
        return _key(children[0])
    return None
