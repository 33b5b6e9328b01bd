"""Fingerprints to and from the store's pin records.

The store keeps plain records (it sits below this package and knows nothing of
fingerprints); these functions turn a live listing into what to pin or what is pending,
stored pins back into a fingerprint to diff a live listing against, and findings into what
the store keeps of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

from orchestrator.store import DefinitionPin, PendingDefinition, StoredFinding
from orchestrator.trust._fingerprint import Fingerprint, FingerprintKind, ServerFingerprint, diff

if TYPE_CHECKING:
    from collections.abc import Iterable

    from orchestrator.store import ServerPins
    from orchestrator.trust._inspect import Finding

__all__ = ["pending_changes", "pinned_fingerprint", "pins_of", "stored_findings"]

_KINDS: frozenset[str] = frozenset(get_args(FingerprintKind))


def pins_of(fingerprint: ServerFingerprint) -> list[DefinitionPin]:
    """The store records that pin every definition of ``fingerprint`` (its name set), with their texts."""
    return [
        DefinitionPin(
            kind=item.kind, name=item.name, digest=item.digest, fields=item.fields, definition=item.definition
        )
        for item in fingerprint.definitions
    ]


def _kind(server: str, kind: str) -> FingerprintKind:
    if kind not in _KINDS:
        raise ValueError(f"the pins of {server!r} hold an unknown kind of definition: {kind!r}")
    return kind  # pyright: ignore[reportReturnType]  # checked against FingerprintKind's values just above


def pinned_fingerprint(pins: ServerPins) -> ServerFingerprint:
    """What ``pins`` vouch for, as a fingerprint to :func:`diff` a live listing against.

    Raises:
        ValueError: A stored pin has a kind this version does not know (a newer version wrote it).
    """
    definitions = tuple(
        Fingerprint(
            kind=_kind(pins.server, item.kind),
            name=item.name,
            digest=item.digest,
            fields=item.fields,
            definition=item.definition,
        )
        for item in pins.definitions
    )
    return ServerFingerprint(identity=pins.identity, definitions=definitions)


def pending_changes(pinned: ServerFingerprint, live: ServerFingerprint) -> list[PendingDefinition]:
    """The store records of what ``live`` says differently from ``pinned``, sorted by kind and name.

    An added or changed definition is recorded with its live digest, field hashes and text; a
    removed one with none of them. The identity is recorded apart (``record_pending`` takes it).
    """
    result = diff(pinned, live)
    differing = {*result.added, *((kind, name) for kind, name, _fields in result.changed)}
    records = [PendingDefinition(kind=kind, name=name, digest=None, fields=None) for kind, name in result.removed]
    records.extend(
        PendingDefinition(
            kind=item.kind, name=item.name, digest=item.digest, fields=item.fields, definition=item.definition
        )
        for item in live.definitions
        if (item.kind, item.name) in differing
    )
    return sorted(records, key=lambda record: (record.kind, record.name))


def stored_findings(findings: Iterable[Finding]) -> list[StoredFinding]:
    """The store records of ``findings``, for ``record_findings`` (each keeps its own server)."""
    return [
        StoredFinding(
            server=item.server,
            kind=item.kind,
            name=item.name,
            check=item.check,
            severity=item.severity,
            field=item.field,
            detail=item.detail,
        )
        for item in findings
    ]
