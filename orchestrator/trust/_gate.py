"""The trust gate: every listing of a downstream server is judged before it is served.

Two questions per definition. Does it match its pin? On first sight the whole listing is
pinned (trust on first use); later, a definition that changed or was added waits for
approval (``orchestrator pins approve``) and is withheld meanwhile, unless the server's
``trust`` mode says otherwise (``auto`` pins added ones on sight, ``warn`` serves changes and
reports them). Does it pass the definition checks? A finding whose severity is
``quarantine`` withholds it too. What differs is recorded in the store as pending, so the
command line can show and approve it, and the pool re-asks the gate after an approval.

Fails closed: when the pins cannot be read or written (the state database is down, or the
server lists one name twice) nothing of that server is served, and each refusal says why.

Does not: touch the catalogue or route calls (the pool serves what this lets through, and
refuses what it holds back with the reason given here), or write audit records itself (it
tells ``on_change``, which the aggregator points at the audit log).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from orchestrator import store as state_db
from orchestrator.catalog import ServerManifest
from orchestrator.downstream import Admission, Withheld
from orchestrator.errors import StoreError
from orchestrator.trust._fingerprint import fingerprint_server, kind_word, server_identity
from orchestrator.trust._inspect import DEFAULT_SEVERITY, Finding, inspect_definitions
from orchestrator.trust._records import pending_changes, pinned_fingerprint, pins_of, stored_findings

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence

    from sqlalchemy.ext.asyncio import AsyncEngine

    from orchestrator.config import CheckName, CheckSeverity, OrchestratorConfig, ServerSpec
    from orchestrator.downstream import DefinitionKind
    from orchestrator.store import PendingDefinition, ServerPins, Store
    from orchestrator.trust._fingerprint import ServerFingerprint

__all__ = ["ServedChange", "TrustGate"]

logger = logging.getLogger(__name__)

_AUTO_APPROVER = "trust: auto"


@dataclass(frozen=True, slots=True)
class ServedChange:
    """A definition served although it differs from its pin (``trust: warn``), seen for the first time.

    Attributes:
        server: The server's key.
        kind: Tool, prompt or resource template.
        name: Its name on its server.
        change: ``added`` or ``changed``.
        fields: The top-level fields that changed (empty when added).
        digest: The served definition's digest.
    """

    server: str
    kind: str
    name: str
    change: str
    fields: tuple[str, ...]
    digest: str


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What the pins say about one listing."""

    changed: Mapping[tuple[str, str], tuple[str, ...]]  # (kind, name) -> fields that changed
    added: frozenset[tuple[str, str]]
    newly_seen: frozenset[tuple[str, str]]  # among changed and added: not pending before this listing
    digests: Mapping[tuple[str, str], str]  # live digest of each changed or added definition


def _now() -> datetime:
    return datetime.now(UTC)


def _key(kind: str, name: str) -> tuple[str, str]:
    return kind, name


class TrustGate:
    """Judges each listing against the server's pins and the definition checks (a ``ManifestGate``).

    Args:
        open_store: Opens (once) and returns the state database holding the pins.
        on_change: Told each change served under ``trust: warn`` when it is first seen (the audit log).
        clock: The current time, aware (tests pass their own).
    """

    def __init__(
        self,
        open_store: Callable[[], Awaitable[Store]],
        *,
        on_change: Callable[[ServedChange], Awaitable[None]] | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._open_store = open_store
        self._on_change = on_change
        self._clock = clock
        self._reported: dict[str, frozenset[Finding]] = {}
        """Server key -> the findings logged for it, so a re-check logs only new ones."""

    async def admit(
        self, manifest: ServerManifest, config: OrchestratorConfig, others: Mapping[str, Collection[str]]
    ) -> Admission:
        """What of ``manifest`` may be served, and why the rest is held back (see the module docstring)."""
        key = manifest.server
        spec = config.enabled_servers().get(key)
        if spec is None:  # stopped by a reload while listing: the pool drops it anyway
            return Admission(manifest)
        severity: dict[CheckName, CheckSeverity] = {**DEFAULT_SEVERITY, **config.trust.checks}
        findings = inspect_definitions(
            key,
            manifest.tools,
            manifest.prompts,
            manifest.resource_templates,
            other_servers=others,
            severity=severity,
            separator=config.naming.separator,
        )
        held: dict[tuple[str, str], str] = {}
        for finding in findings:
            if finding.severity == "quarantine":
                held.setdefault(_key(finding.kind, finding.name), _quarantined(finding))
        try:
            await self._report_findings(key, findings)
            verdict = await self._judge(manifest, spec)
        except (StoreError, ValueError) as exc:
            # Fail closed: with no pins to compare against, nothing of this server is vouched for.
            logger.error("server %r: its pins cannot be checked, so nothing of it is served: %s", key, exc)
            reason = f"its pins cannot be checked ({exc}); nothing of server {key!r} is served until they can"
            return _admission(manifest, dict.fromkeys(_every_definition(manifest), reason))
        if spec.trust == "warn":
            await self._report_served(key, verdict)
        else:
            for kind, name in verdict.added:
                held.setdefault((kind, name), _new_since_pinned(key, kind, name))
            for (kind, name), fields in verdict.changed.items():
                held.setdefault((kind, name), _changed_since_pinned(key, kind, name, fields))
            for kind, name in sorted(verdict.newly_seen):
                logger.warning(
                    "server %r: %s %r withheld until approved (orchestrator pins approve %s %s)",
                    key,
                    kind_word(kind),
                    name,
                    key,
                    name,
                )
        return _admission(manifest, held)

    async def _report_findings(self, key: str, findings: Sequence[Finding]) -> None:
        """Log new findings and keep the server's latest ones in the store (for ``pins`` and ``doctor``).

        Raises:
            StoreError: They cannot be stored.
        """
        current = frozenset(findings)
        reported = self._reported.get(key)
        if reported == current:  # a re-check that found the same: nothing to log or write
            return
        for finding in findings:
            if reported is None or finding not in reported:
                _log_finding(finding)
        engine = (await self._open_store()).engine
        await state_db.record_findings(engine, key, stored_findings(findings), at=self._clock())
        self._reported[key] = current

    async def _judge(self, manifest: ServerManifest, spec: ServerSpec) -> _Verdict:
        """Compare ``manifest`` with the pins of its server, pinning on first sight and recording what differs.

        Raises:
            StoreError: The pins cannot be read or written.
            ValueError: The server lists one name twice, or a stored pin is unreadable.
        """
        key = manifest.server
        live = fingerprint_server(
            server_identity(spec),
            tools=manifest.tools,
            prompts=manifest.prompts,
            templates=manifest.resource_templates,
        )
        engine = (await self._open_store()).engine
        at = self._clock()
        pins = await state_db.read_pins(engine, key)
        first_sight = pins is None
        if pins is None:
            pins = await state_db.pin_first_sight(engine, key, live.identity, pins_of(live), at=at)
        changes = pending_changes(pinned_fingerprint(pins), live)
        if first_sight and not changes and pins.identity == live.identity:  # not another process's pin
            logger.info("server %r pinned on first sight: %d definitions", key, len(pins.definitions))
        if spec.trust == "auto":
            changes = await self._pin_added(engine, pins, live, changes, at)
        if _pending_state(changes, live.identity, pins) != _pending_state(pins.pending, pins.pending_identity, pins):
            await state_db.record_pending(engine, key, live.identity, changes, at=at)
        return _verdict(pins, changes)

    async def _pin_added(
        self,
        engine: AsyncEngine,
        pins: ServerPins,
        live: ServerFingerprint,
        changes: list[PendingDefinition],
        at: datetime,
    ) -> list[PendingDefinition]:
        """Under ``trust: auto``, pin added definitions at once; the changes left to wait."""
        pinned = {_key(item.kind, item.name) for item in pins.definitions}
        added = [item for item in changes if not item.removed and _key(item.kind, item.name) not in pinned]
        if not added:
            return changes
        # Recorded as pending, then approved: the one path by which pins change after first sight.
        await state_db.record_pending(engine, pins.server, live.identity, changes, at=at)
        names = {_key(item.kind, item.name) for item in added}
        await state_db.approve_pins(engine, pins.server, names, at=at, approved_by=_AUTO_APPROVER)
        logger.info("server %r: %d added definitions pinned on sight (trust: auto)", pins.server, len(added))
        await self._announce_pins(pins.server)
        return [item for item in changes if _key(item.kind, item.name) not in names]

    async def _announce_pins(self, key: str) -> None:
        """Tell other processes on a PostgreSQL state database that pins changed (their held-back
        definitions may be served now). Findings and pending changes are not announced: another
        process judges its own listing, and they change nothing it serves."""
        try:
            await state_db.notify(await self._open_store(), "pins", {"server": key})
        except StoreError as exc:  # the approval stands; the others see it at their next recheck
            logger.warning("server %r: could not tell other processes of its new pins: %s", key, exc)

    async def _report_served(self, key: str, verdict: _Verdict) -> None:
        for kind, name in sorted(verdict.newly_seen):
            fields = verdict.changed.get((kind, name), ())
            change = "changed" if (kind, name) in verdict.changed else "added"
            logger.warning(
                "server %r: %s %r %s since pinned%s; served anyway (trust: warn)",
                key,
                kind_word(kind),
                name,
                change,
                f" ({', '.join(fields)})" if fields else "",
            )
            if self._on_change is not None:
                await self._on_change(ServedChange(key, kind, name, change, fields, verdict.digests[kind, name]))


def _pending_state(
    changes: Sequence[PendingDefinition], identity: str | None, pins: ServerPins
) -> tuple[frozenset[tuple[str, str, str | None]], str | None]:
    """What a pending set says, to skip writing it again when a re-listing says the same."""
    waiting_identity = identity if identity is not None and identity != pins.identity else None
    return frozenset((item.kind, item.name, item.digest) for item in changes), waiting_identity


def _verdict(pins: ServerPins, changes: Sequence[PendingDefinition]) -> _Verdict:
    before = {(item.kind, item.name, item.digest) for item in pins.pending}
    pinned = {_key(item.kind, item.name): item for item in pins.definitions}
    changed: dict[tuple[str, str], tuple[str, ...]] = {}
    added: set[tuple[str, str]] = set()
    newly: set[tuple[str, str]] = set()
    digests: dict[tuple[str, str], str] = {}
    for item in changes:
        if item.digest is None:  # removed: nothing to serve or hold back
            continue
        key = _key(item.kind, item.name)
        digests[key] = item.digest
        was = pinned.get(key)
        if was is None:
            added.add(key)
        else:
            names = set(was.fields) | set(item.fields or {})
            changed[key] = tuple(sorted(n for n in names if was.fields.get(n) != (item.fields or {}).get(n)))
        if (item.kind, item.name, item.digest) not in before:
            newly.add(key)
    return _Verdict(changed=changed, added=frozenset(added), newly_seen=frozenset(newly), digests=digests)


def _every_definition(manifest: ServerManifest) -> list[tuple[str, str]]:
    return [
        *(("tool", tool.name) for tool in manifest.tools),
        *(("prompt", prompt.name) for prompt in manifest.prompts),
        *(("resource_template", template.name) for template in manifest.resource_templates),
    ]


def _admission(manifest: ServerManifest, held: Mapping[tuple[str, str], str]) -> Admission:
    """``manifest`` less what ``held`` names, and the held-back definitions with their reasons."""
    if not held:
        return Admission(manifest)
    served = ServerManifest(
        server=manifest.server,
        prefix=manifest.prefix,
        tools=tuple(tool for tool in manifest.tools if ("tool", tool.name) not in held),
        prompts=tuple(prompt for prompt in manifest.prompts if ("prompt", prompt.name) not in held),
        resources=manifest.resources,
        resource_templates=tuple(
            template for template in manifest.resource_templates if ("resource_template", template.name) not in held
        ),
        tool_filter=manifest.tool_filter,
    )
    withheld = tuple(
        Withheld(kind=_definition_kind(kind), name=name, reason=reason) for (kind, name), reason in sorted(held.items())
    )
    return Admission(served, withheld)


def _definition_kind(kind: str) -> DefinitionKind:
    if kind == "tool" or kind == "prompt" or kind == "resource_template":
        return kind
    raise ValueError(f"unknown kind of definition: {kind!r}")


def _approve_hint(key: str, name: str) -> str:
    return (
        f"review it with `orchestrator pins --server {key}` "
        f"and approve it with `orchestrator pins approve {key} {name}`"
    )


def _changed_since_pinned(key: str, kind: str, name: str, fields: Sequence[str]) -> str:
    what = f" ({', '.join(fields)})" if fields else ""
    return (
        f"{kind_word(kind)} {name!r} is withheld: its definition changed since it was pinned{what}; "
        + _approve_hint(key, name)
    )


def _new_since_pinned(key: str, kind: str, name: str) -> str:
    return (
        f"{kind_word(kind)} {name!r} is withheld: it is new since server {key!r} was pinned; "
        + _approve_hint(key, name)
        + " (or set `trust: auto` on the server to pin new definitions on sight)"
    )


def _quarantined(finding: Finding) -> str:
    return (
        f"{kind_word(finding.kind)} {finding.name!r} is quarantined: {finding.check} in {finding.field} "
        f"({finding.detail}); see `orchestrator pins --server {finding.server}`, or set "
        f"`trust.checks.{finding.check}: warn` to serve such definitions"
    )


def _log_finding(finding: Finding) -> None:
    logger.warning(
        "server %r: %s %r: %s in %s (%s): %s",
        finding.server,
        kind_word(finding.kind),
        finding.name,
        finding.check,
        finding.field,
        finding.severity,
        finding.detail,
    )
