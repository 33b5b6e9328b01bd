"""What is indexed of a tool: its fields as text, for the lexical index and the embedder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.search._words import name_words

if TYPE_CHECKING:
    import mcp_types

__all__ = ["EMBEDDED_DESCRIPTION_CHARS", "EMBEDDED_PARAMETER_CHARS", "ToolDocument", "document_of"]

EMBEDDED_DESCRIPTION_CHARS = 200
"""How much of a description the embedder reads: the opening says what a tool does, and a passage
costs the embedder about a millisecond per token (200 characters rank the task sets as well as 400
did, and build a quarter faster; the rest still counts in the lexical index)."""

EMBEDDED_PARAMETER_CHARS = 200
"""How much of the parameters' text the word vectors read (what a tool takes says something of what it does)."""

_MAX_SCHEMA_DEPTH = 3


@dataclass(frozen=True, slots=True)
class ToolDocument:
    """A tool's searchable fields."""

    name: str
    """The tool's own name in words, without the prefix of its server (``git status`` for ``git__git_status``)."""
    prefix: str
    """The words of the exposed name's prefix, if any (``git``)."""
    title: str
    description: str
    parameters: str
    """Parameter names (in words) and their descriptions."""
    server: str
    """The server key in words; empty for a composite."""

    def embedding_text(self) -> str:
        """The passage the embedder sees: what the tool is called and what it does.

        The server prefix is left out, so the same tool served under two keys has one text (and
        one embedding); the server's name counts through the lexical index and the server boost.
        """
        parts = [self.name, self.title, self.description[:EMBEDDED_DESCRIPTION_CHARS]]
        return ". ".join(part for part in parts if part)

    def word_vector_text(self) -> str:
        """The passage the word vectors see: the embedder's, and the opening of the parameters' text.

        A mean of word vectors costs nothing per word, so it reads more than the embedder does.
        Each parameter word counts once (in a mean, a word repeated by every parameter's
        description would outweigh the rest). The server prefix is left out here too.
        """
        parameters = " ".join(dict.fromkeys(self.parameters.split()))[:EMBEDDED_PARAMETER_CHARS]
        return self.embedding_text() + (f". parameters: {parameters}" if parameters else "")


def document_of(tool: mcp_types.Tool, server: str | None) -> ToolDocument:
    """The searchable fields of a tool as exposed.

    Args:
        tool: The tool under its exposed name.
        server: Its server key, or None for a composite tool.

    Returns:
        Its document.
    """
    prefix, separator, own = tool.name.rpartition("__")
    own_name = own if separator else tool.name
    title = tool.title or (tool.annotations.title if tool.annotations and tool.annotations.title else None) or ""
    return ToolDocument(
        name=" ".join(name_words(own_name)),
        prefix=" ".join(name_words(prefix)),
        title=title,
        description=tool.description or "",
        parameters=" ".join(_schema_words(tool.input_schema, 0)),
        server=" ".join(name_words(server)) if server else "",
    )


def _schema_words(schema: dict[str, Any], depth: int) -> list[str]:
    words: list[str] = []
    properties = schema.get("properties")
    if depth >= _MAX_SCHEMA_DEPTH or not isinstance(properties, dict):
        return words
    for key, value in properties.items():  # pyright: ignore[reportUnknownVariableType] -- JSON from a server
        words.extend(name_words(str(key)))  # pyright: ignore[reportUnknownArgumentType]
        if isinstance(value, dict):
            words.extend(_property_words(value, depth))  # pyright: ignore[reportUnknownArgumentType]
    return words


def _property_words(prop: dict[str, Any], depth: int) -> list[str]:
    words: list[str] = []
    description = prop.get("description")
    if isinstance(description, str):
        words.append(description)
    words.extend(_schema_words(prop, depth + 1))
    items = prop.get("items")
    if isinstance(items, dict):
        words.extend(_schema_words(items, depth + 1))  # pyright: ignore[reportUnknownArgumentType]
    return words
