"""The exposed catalogue as one document, and its version: which definitions a call was made against.

Everything the server exposes (tools, composite tools included, prompts, resources and
resource templates, each in its wire form) is put in one document; the catalogue's digest is
the SHA-256 of that document's RFC 8785 canonical JSON, and its version the first
``VERSION_LENGTH`` hex characters of the digest. Any change to any exposed definition (a
description, a schema, an added or removed tool) changes the version; the order in which
servers listed their definitions, key order and whitespace never do.

``catalogue_digest`` computes the same digest one definition at a time, without the document:
a server that needs only the version of 10,000 tools does not hold a copy of them all.

Does not: decide what is exposed (``build_catalog`` and the server do), know who may see what
(the version is of the whole exposed catalogue, not of one principal's view), or cache (the
server computes it once per change of what it serves).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from orchestrator.catalog._canonical import canonical_json, without_volatile_meta

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    import mcp_types as types

    from orchestrator.catalog._catalog import Catalog

__all__ = [
    "CATALOGUE_FORMAT",
    "DEFINITION_KINDS",
    "VERSION_LENGTH",
    "ExposedCatalogue",
    "catalogue_digest",
    "exposed_catalogue",
]

VERSION_LENGTH: Final = 16
"""Hex characters of the digest in the printed version (64 bits: a collision is not a worry)."""

CATALOGUE_FORMAT: Final = "mcp-orchestrator/catalogue@1"
"""The ``format`` of a saved catalogue document (``orchestrator tools --json``)."""

DEFINITION_KINDS: Final[Mapping[str, str]] = MappingProxyType(
    {"tools": "name", "prompts": "name", "resources": "uri", "resourceTemplates": "uriTemplate"}
)
"""Each list of the document, and the field that identifies one of its definitions."""

_KEY_ATTRIBUTES: Final[Mapping[str, str]] = MappingProxyType(
    {"tools": "name", "prompts": "name", "resources": "uri", "resourceTemplates": "uri_template"}
)
"""The model attribute behind each list's identifying field (``DEFINITION_KINDS``)."""

# RFC 8785 orders an object's keys by their UTF-16 code units.
_CANONICAL_KIND_ORDER: Final = tuple(sorted(DEFINITION_KINDS, key=lambda kind: kind.encode("utf-16-be")))

_Definition = TypeVar("_Definition", bound="types.Tool | types.Prompt | types.Resource | types.ResourceTemplate")


def _wire(definition: types.Tool | types.Prompt | types.Resource | types.ResourceTemplate) -> dict[str, Any]:
    """A definition as the wire carries it, without the volatile ``_meta`` keys."""
    return without_volatile_meta(definition.model_dump(mode="json", by_alias=True, exclude_none=True))


def _sorted(kind: str, definitions: Iterable[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    key = DEFINITION_KINDS[kind]
    return tuple(sorted(definitions, key=lambda definition: str(definition.get(key, ""))))


def _sorted_models(kind: str, definitions: Iterable[_Definition]) -> list[_Definition]:
    """``definitions`` in the order ``_sorted`` puts their wire forms in (the field is the attribute's value)."""
    attribute = _KEY_ATTRIBUTES[kind]
    return sorted(definitions, key=lambda definition: str(getattr(definition, attribute)))


def _digest(lists: Mapping[str, Iterable[Mapping[str, Any]]]) -> str:
    """SHA-256 hex of the canonical JSON of ``{kind: [definition, ...]}``, fed one definition at a time.

    The bytes hashed are ``canonical_json`` of the whole object: its keys in canonical order,
    each list's items in the order given.
    """
    hasher = hashlib.sha256(b"{")
    for position, kind in enumerate(_CANONICAL_KIND_ORDER):
        hasher.update(b"," if position else b"")
        hasher.update(canonical_json(kind) + b":[")
        for index, definition in enumerate(lists.get(kind, ())):
            hasher.update(b"," if index else b"")
            hasher.update(canonical_json(definition))
        hasher.update(b"]")
    hasher.update(b"}")
    return hasher.hexdigest()


@dataclass(frozen=True, slots=True, eq=False)
class ExposedCatalogue:
    """What the server exposes, as wire-form definitions by kind, with the digest of them all.

    Attributes:
        definitions: ``tools``, ``prompts``, ``resources`` and ``resourceTemplates``, each
            sorted by its identifying field (``DEFINITION_KINDS``).
        digest: SHA-256 hex of the RFC 8785 canonical JSON of ``definitions``.
    """

    definitions: Mapping[str, tuple[Mapping[str, Any], ...]]
    digest: str

    @property
    def version(self) -> str:
        """The catalogue version: the digest's first ``VERSION_LENGTH`` hex characters."""
        return self.digest[:VERSION_LENGTH]

    @classmethod
    def of_definitions(cls, definitions: Mapping[str, Iterable[Mapping[str, Any]]]) -> ExposedCatalogue:
        """The catalogue of wire-form definitions (a saved document's lists, say).

        Raises:
            TypeError: A definition holds something JSON has no form for.
        """
        lists = {kind: _sorted(kind, definitions.get(kind, ())) for kind in DEFINITION_KINDS}
        return cls(MappingProxyType(lists), _digest(lists))

    @classmethod
    def from_document(cls, document: object) -> ExposedCatalogue:
        """The catalogue a saved document (``document()``'s form) holds.

        Its digest is computed again from its definitions: an edited file is compared by
        what it says, not by the version written in it.

        Raises:
            ValueError: ``document`` is not a saved catalogue (the message says what is wrong).
        """
        if not isinstance(document, dict):
            raise ValueError("not a saved catalogue: expected a JSON object (from `orchestrator tools --json`)")
        fields = cast("dict[str, Any]", document)
        if fields.get("format") != CATALOGUE_FORMAT:
            raise ValueError(
                f"not a saved catalogue: 'format' is {fields.get('format')!r}, expected {CATALOGUE_FORMAT!r}"
                " (save one with `orchestrator tools --json > FILE`)"
            )
        lists: dict[str, list[Mapping[str, Any]]] = {}
        for kind, key in DEFINITION_KINDS.items():
            items: object = fields.get(kind, [])
            if not isinstance(items, list):
                raise ValueError(f"not a saved catalogue: {kind!r} is not a list")
            for index, item in enumerate(cast("list[object]", items)):
                if not isinstance(item, dict) or not isinstance(cast("dict[str, Any]", item).get(key), str):
                    raise ValueError(f"not a saved catalogue: {kind}[{index}] is not an object with a string {key!r}")
            lists[kind] = cast("list[Mapping[str, Any]]", items)
        return cls.of_definitions(lists)

    def document(self) -> dict[str, Any]:
        """The catalogue as a JSON document (the form ``orchestrator tools --json`` saves)."""
        return {
            "format": CATALOGUE_FORMAT,
            "version": self.version,
            "digest": self.digest,
            **{kind: [dict(definition) for definition in items] for kind, items in self.definitions.items()},
        }


def catalogue_digest(catalog: Catalog, composite_tools: Iterable[types.Tool] = ()) -> str:
    """``exposed_catalogue(catalog, composite_tools).digest``, holding one definition's wire form at a time."""
    served: dict[str, Iterable[types.Tool | types.Prompt | types.Resource | types.ResourceTemplate]] = {
        "tools": (*catalog.tools, *composite_tools),
        "prompts": catalog.prompts,
        "resources": catalog.resources,
        "resourceTemplates": catalog.resource_templates,
    }
    return _digest({kind: map(_wire, _sorted_models(kind, items)) for kind, items in served.items()})


def exposed_catalogue(catalog: Catalog, composite_tools: Iterable[types.Tool] = ()) -> ExposedCatalogue:
    """Everything served: ``catalog``'s tools, prompts, resources and templates, and the composites."""
    return ExposedCatalogue.of_definitions(
        {
            "tools": [_wire(tool) for tool in (*catalog.tools, *composite_tools)],
            "prompts": [_wire(prompt) for prompt in catalog.prompts],
            "resources": [_wire(resource) for resource in catalog.resources],
            "resourceTemplates": [_wire(template) for template in catalog.resource_templates],
        }
    )
