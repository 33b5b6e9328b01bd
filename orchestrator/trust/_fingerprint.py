"""Fingerprints of what a downstream server defines, and what changed between two of them.

A definition's digest is the SHA-256 (hex) of the RFC 8785 canonical JSON of its wire form
(``model_dump(mode="json", by_alias=True, exclude_none=True)``): everything the server
controls, so a changed title, schema, annotation, icon or ``_meta`` entry changes it, and key
order or whitespace never does. Each top-level field gets its own hash too, so a report says
which fields changed. A server's fingerprint also holds its identity and its name set: a
renamed tool is one removed and one added, never a silent carry-over.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlsplit

from orchestrator.catalog import VOLATILE_META_KEYS, canonical_json, without_volatile_meta
from orchestrator.config import StdioServerSpec

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from mcp import types as mcp_types

    from orchestrator.config import ServerSpec

__all__ = [
    "DEFINITION_TEXT_LIMIT",
    "VOLATILE_META_KEYS",
    "Fingerprint",
    "FingerprintKind",
    "PinDiff",
    "ServerFingerprint",
    "canonical_json",
    "diff",
    "fingerprint_prompt",
    "fingerprint_server",
    "fingerprint_template",
    "fingerprint_tool",
    "kind_word",
    "server_identity",
]

FingerprintKind = Literal["tool", "prompt", "resource_template"]
"""What a definition is; the pin of each is keyed by kind and name."""

_KIND_WORDS: dict[str, str] = {"tool": "tool", "prompt": "prompt", "resource_template": "resource template"}


def kind_word(kind: str) -> str:
    """A kind of definition in words: ``resource_template`` is "resource template"."""
    return _KIND_WORDS.get(kind, kind)


DEFINITION_TEXT_LIMIT = 256 * 1024
"""Largest canonical definition (UTF-8 bytes) whose text is kept beside its hashes.

The text lets a report show how a definition changed; one bigger than this is pinned by its
hashes alone (a report then names the changed fields only), so a server listing megabytes
of schema cannot fill the state database.
"""


def _sha256(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """One definition as pinned: what it is, its name on its server, and hashes of what it says.

    Attributes:
        kind: ``tool``, ``prompt`` or ``resource_template``.
        name: The definition's name on its own server (not the exposed, namespaced name).
        digest: SHA-256 hex of the canonical JSON of the whole definition, volatile ``_meta``
            keys left out.
        fields: SHA-256 hex of the canonical JSON of each top-level field present
            (``name``, ``description``, ``inputSchema``, ``_meta``, ...).
        definition: The canonical JSON text that ``digest`` hashes, or ``None`` when it is
            over :data:`DEFINITION_TEXT_LIMIT` (or unknown, for a fingerprint made from
            hashes alone). Not part of equality: the digest already says it all.
    """

    kind: FingerprintKind
    name: str
    digest: str
    fields: Mapping[str, str] = field(hash=False)
    definition: str | None = field(default=None, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))

    def changed_fields(self, other: Fingerprint) -> tuple[str, ...]:
        """The fields whose hashes differ from ``other``'s (present in one only counts), sorted."""
        names = set(self.fields) | set(other.fields)
        return tuple(sorted(name for name in names if self.fields.get(name) != other.fields.get(name)))


def _fingerprint(kind: FingerprintKind, name: str, wire: dict[str, Any]) -> Fingerprint:
    definition = without_volatile_meta(wire)
    fields = {key: _sha256(value) for key, value in definition.items()}
    text = canonical_json(definition)
    return Fingerprint(
        kind=kind,
        name=name,
        digest=hashlib.sha256(text).hexdigest(),
        fields=fields,
        definition=text.decode() if len(text) <= DEFINITION_TEXT_LIMIT else None,
    )


def _wire(definition: mcp_types.Tool | mcp_types.Prompt | mcp_types.ResourceTemplate) -> dict[str, Any]:
    return definition.model_dump(mode="json", by_alias=True, exclude_none=True)


def fingerprint_tool(tool: mcp_types.Tool) -> Fingerprint:
    """The fingerprint of a tool as its server lists it.

    Covers name, title, description, inputSchema, outputSchema, annotations, execution, icons
    and ``_meta`` (less :data:`VOLATILE_META_KEYS`).
    """
    return _fingerprint("tool", tool.name, _wire(tool))


def fingerprint_prompt(prompt: mcp_types.Prompt) -> Fingerprint:
    """The fingerprint of a prompt: name, title, description, arguments, icons, ``_meta``."""
    return _fingerprint("prompt", prompt.name, _wire(prompt))


def fingerprint_template(template: mcp_types.ResourceTemplate) -> Fingerprint:
    """The fingerprint of a resource template: name, title, uriTemplate, description, mimeType,
    annotations, icons, ``_meta``."""
    return _fingerprint("resource_template", template.name, _wire(template))


def _url_identity(url: str) -> str:
    # Userinfo is a credential and a query value may be one (``?api_key=``): neither is part of
    # who the server is. Query names stay, so ``?workspace=`` vs ``?team=`` still differ.
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2].lower()
    names = [name for name, _value in parse_qsl(parts.query, keep_blank_values=True)]
    query = "?" + "&".join(names) if names else ""
    return f"{parts.scheme.lower()}://{host}{parts.path}{query}"


def server_identity(spec: ServerSpec) -> str:
    """Who a configured downstream server is: its transport and command line, or its URL.

    A stdio server is ``stdio: <command and args, shell-quoted>``; an HTTP server is
    ``http: <url>`` (``sse: <url>`` for the legacy transport) with userinfo, query values and
    fragment removed. Environment values, header values and the working folder are never part
    of it: they are secrets or surroundings, not the server's identity.
    """
    if isinstance(spec, StdioServerSpec):
        return "stdio: " + shlex.join((spec.command, *spec.args))
    transport = "sse" if spec.type == "sse" else "http"
    return f"{transport}: {_url_identity(spec.url)}"


def _key(fingerprint: Fingerprint) -> tuple[FingerprintKind, str]:
    return fingerprint.kind, fingerprint.name


@dataclass(frozen=True, slots=True)
class ServerFingerprint:
    """Everything pinned about one server: its identity and each definition's fingerprint.

    Attributes:
        identity: :func:`server_identity` of its config entry.
        definitions: The fingerprints, sorted by kind and name; one per (kind, name).
    """

    identity: str
    definitions: tuple[Fingerprint, ...]

    @property
    def names(self) -> frozenset[tuple[FingerprintKind, str]]:
        """The name set: every (kind, name) the server defines."""
        return frozenset(_key(fingerprint) for fingerprint in self.definitions)

    def get(self, kind: FingerprintKind, name: str) -> Fingerprint | None:
        """The fingerprint of ``name`` of ``kind``, or ``None`` if the server does not define it."""
        return next((item for item in self.definitions if _key(item) == (kind, name)), None)


def fingerprint_server(
    identity: str,
    *,
    tools: Iterable[mcp_types.Tool] = (),
    prompts: Iterable[mcp_types.Prompt] = (),
    templates: Iterable[mcp_types.ResourceTemplate] = (),
) -> ServerFingerprint:
    """The fingerprint of a server from what it lists.

    Raises:
        ValueError: The server lists two definitions of one kind under one name: which one a
            pin would vouch for is ambiguous, so neither is fingerprinted.
    """
    fingerprints = [
        *(fingerprint_tool(tool) for tool in tools),
        *(fingerprint_prompt(prompt) for prompt in prompts),
        *(fingerprint_template(template) for template in templates),
    ]
    seen: set[tuple[FingerprintKind, str]] = set()
    for fingerprint in fingerprints:
        if _key(fingerprint) in seen:
            raise ValueError(f"{kind_word(fingerprint.kind)} {fingerprint.name!r} is listed twice")
        seen.add(_key(fingerprint))
    return ServerFingerprint(identity=identity, definitions=tuple(sorted(fingerprints, key=_key)))


@dataclass(frozen=True, slots=True)
class PinDiff:
    """What a live server says that its pins do not.

    Attributes:
        identity_changed: The live identity differs from the pinned one (``(pinned, live)``), or
            ``None``.
        added: Definitions live but not pinned, sorted by kind and name.
        removed: Definitions pinned but no longer live, sorted.
        changed: Definitions in both whose digests differ, each with the fields that changed.
    """

    identity_changed: tuple[str, str] | None = None
    added: tuple[tuple[FingerprintKind, str], ...] = ()
    removed: tuple[tuple[FingerprintKind, str], ...] = ()
    changed: tuple[tuple[FingerprintKind, str, tuple[str, ...]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.identity_changed or self.added or self.removed or self.changed)

    def describe(self) -> list[str]:
        """One readable line per difference, e.g. ``tool 'search': description changed``."""
        lines: list[str] = []
        if self.identity_changed is not None:
            pinned, live = self.identity_changed
            lines.append(f"server identity changed: pinned {pinned!r}, now {live!r}")
        lines.extend(f"{kind_word(kind)} {name!r}: added" for kind, name in self.added)
        lines.extend(f"{kind_word(kind)} {name!r}: removed" for kind, name in self.removed)
        lines.extend(
            f"{kind_word(kind)} {name!r}: " + ", ".join(f"{field_name} changed" for field_name in fields)
            for kind, name, fields in self.changed
        )
        return lines


def diff(pinned: ServerFingerprint, live: ServerFingerprint) -> PinDiff:
    """What changed from ``pinned`` to ``live``: identity, added, removed and changed definitions.

    A definition is matched by kind and name only, so a rename is one removed and one added.
    """
    pinned_by_key = {_key(item): item for item in pinned.definitions}
    live_by_key = {_key(item): item for item in live.definitions}
    changed: list[tuple[FingerprintKind, str, tuple[str, ...]]] = []
    for kind, name in sorted(pinned_by_key.keys() & live_by_key.keys()):
        was, now = pinned_by_key[kind, name], live_by_key[kind, name]
        if was.digest != now.digest:
            changed.append((kind, name, was.changed_fields(now)))
    return PinDiff(
        identity_changed=(pinned.identity, live.identity) if pinned.identity != live.identity else None,
        added=tuple(sorted(live_by_key.keys() - pinned_by_key.keys())),
        removed=tuple(sorted(pinned_by_key.keys() - live_by_key.keys())),
        changed=tuple(changed),
    )
