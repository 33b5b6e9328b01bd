"""Provider-safe exposed names for tools and prompts.

Model APIs accept only ``^[a-zA-Z0-9_-]{1,64}$`` (Cursor: 60), so every name built here
matches ``^[a-zA-Z0-9_-]{1,max_length}$``, whatever the downstream server sent. Names depend
only on the *set* of requests, never on their order, so they are stable across restarts.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from orchestrator.config._models import NamingSpec

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["DEFAULT_NAMING", "AssignedName", "NameNote", "NameRequest", "assign_names", "is_valid_name", "stable_hash"]

NameNote = Literal["renamed", "sanitized", "truncated", "collision"]

HASH_LENGTH = 8
DEFAULT_NAMING = NamingSpec()
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_SAFE = re.compile(r"[A-Za-z0-9_-]+")


def is_valid_name(name: str, max_length: int = 64) -> bool:
    """Whether ``name`` matches ``^[a-zA-Z0-9_-]{1,max_length}$``."""
    return 1 <= len(name) <= max_length and _SAFE.fullmatch(name) is not None


def stable_hash(server: str, original: str, attempt: int = 0) -> str:
    """Eight hex digits of sha256 over (server, original name[, attempt]); stable across runs."""
    key = f"{server}\0{original}" if attempt == 0 else f"{server}\0{original}\0{attempt}"
    # surrogatepass: a downstream's JSON may carry lone surrogates, which must still hash.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LENGTH]


@dataclass(frozen=True, slots=True)
class NameRequest:
    """One tool or prompt asking for an exposed name.

    Attributes:
        server: Config key of the downstream server.
        original: The downstream's own name; (server, original) identifies the request.
        base: The name to expose before prefixing: ``original`` or its rename.
        prefix: Prepended with the separator; ``None`` for an unprefixed name.
        renamed: Whether ``base`` came from a ``rename`` entry.
    """

    server: str
    original: str
    base: str
    prefix: str | None
    renamed: bool = False


@dataclass(frozen=True, slots=True)
class AssignedName:
    """The exposed name given to one request, and why it differs from the plain join."""

    exposed: str
    notes: tuple[NameNote, ...]


@dataclass(frozen=True, slots=True)
class _Candidate:
    request: NameRequest
    stem: str  # the sanitised full name, before any length fitting
    name: str
    notes: tuple[NameNote, ...]


def _with_suffix(stem: str, digest: str, max_length: int) -> str:
    """``stem_digest``, cutting ``stem`` so that the result fits ``max_length``."""
    return f"{stem[: max(0, max_length - len(digest) - 1)]}_{digest}"


def _candidate(request: NameRequest, naming: NamingSpec) -> _Candidate:
    joined = request.base if request.prefix is None else f"{request.prefix}{naming.separator}{request.base}"
    stem = _UNSAFE.sub("_", joined)
    notes: list[NameNote] = ["renamed"] if request.renamed else []
    if stem != joined or not stem:
        notes.append("sanitized")
    name = stem
    if not stem or len(stem) > naming.max_length:
        name = _with_suffix(stem, stable_hash(request.server, request.original), naming.max_length)
        if stem:
            notes.append("truncated")
    return _Candidate(request, stem, name, tuple(notes))


def assign_names(
    requests: Iterable[NameRequest], naming: NamingSpec = DEFAULT_NAMING, reserved: Iterable[str] = ()
) -> dict[tuple[str, str], AssignedName]:
    """Give every request a unique, valid exposed name, deterministically.

    Among requests competing for one name, the first by (server, original) keeps it unless
    the name is reserved (reserved names always win); the others get a hash suffix, re-hashed
    with a counter in the pathological case where the suffixed name is taken too.

    Args:
        requests: Tools (or prompts) to name; (server, original) must be unique.
        naming: Separator and maximum length.
        reserved: Names that no request may take, e.g. composite workflow tools.

    Returns:
        (server, original) -> the assigned name.

    Raises:
        ValueError: Two requests share (server, original).
    """
    candidates = sorted((_candidate(r, naming) for r in requests), key=lambda c: (c.request.server, c.request.original))
    keys = [(c.request.server, c.request.original) for c in candidates]
    if duplicates := sorted({key for key, following in itertools.pairwise(keys) if key == following}):
        raise ValueError(f"duplicate name requests (server, name): {duplicates!r}")
    taken = set(reserved)
    groups: defaultdict[str, list[_Candidate]] = defaultdict(list)
    for candidate in candidates:
        groups[candidate.name].append(candidate)

    assigned: dict[tuple[str, str], AssignedName] = {}
    losers: list[_Candidate] = []
    for name, group in groups.items():
        if name in taken:
            losers.extend(group)
        else:
            taken.add(name)
            winner, *rest = group
            assigned[winner.request.server, winner.request.original] = AssignedName(name, winner.notes)
            losers.extend(rest)

    # Winners are placed first, so a loser's suffixed name can never evict anyone.
    for loser in sorted(losers, key=lambda c: (c.request.server, c.request.original)):
        key = (loser.request.server, loser.request.original)
        attempt = 0
        while (name := _with_suffix(loser.stem, stable_hash(*key, attempt), naming.max_length)) in taken:
            attempt += 1
        taken.add(name)
        notes = loser.notes
        if len(loser.stem) + HASH_LENGTH + 1 > naming.max_length and "truncated" not in notes:
            notes = (*notes, "truncated")
        assigned[key] = AssignedName(name, (*notes, "collision"))
    return assigned
