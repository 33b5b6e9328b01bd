"""``doctor``'s look at the pins: definition changes waiting for approval, and check findings.

Reads the state database of the config (``state.url``) the way ``orchestrator pins`` does,
for the configured servers only. A change waiting for approval on a server whose ``trust`` is
``pin`` or ``auto`` is withheld from clients, and a quarantined definition is not served: both
are failures, since a tool someone expects is missing. Changes on a ``warn`` server and
``warn`` findings are warnings. A state database that does not exist yet holds no pins: it
is not created here. One that cannot be read is a failure, since ``serve`` needs it to check
every listing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator import store as state_db
from orchestrator.errors import ConfigError, StoreError
from orchestrator.trust import kind_word, report_pending, show_hidden

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.config import OrchestratorConfig
    from orchestrator.store import StoredFinding
    from orchestrator.trust import ChangeReport

__all__ = ["PinsReport", "ServerPinsReport", "check_pins"]


@dataclass(frozen=True, slots=True)
class ServerPinsReport:
    """What waits, and what was found, for one configured server."""

    server: str
    trust: str
    """The server's ``trust`` mode: ``pin``, ``auto`` or ``warn``."""
    pending: tuple[ChangeReport, ...] = ()
    pending_identity: str | None = None
    findings: tuple[StoredFinding, ...] = ()

    @property
    def waiting(self) -> bool:
        """Whether anything waits for approval."""
        return bool(self.pending) or self.pending_identity is not None

    @property
    def withheld(self) -> bool:
        """Whether what waits is withheld from clients (every mode but ``warn``)."""
        return self.waiting and self.trust != "warn"

    @property
    def quarantined(self) -> tuple[str, ...]:
        """The definitions a ``quarantine`` finding keeps from being served, as ``tool 'name'``."""
        names = {
            f"{kind_word(item.kind)} {show_hidden(item.name)!r}"
            for item in self.findings
            if item.severity == "quarantine"
        }
        return tuple(sorted(names))

    def to_json(self) -> dict[str, object]:
        """One entry of ``pins.servers`` in ``doctor --json``."""
        return {
            "server": self.server,
            "trust": self.trust,
            "pending": [{"kind": c.kind, "name": c.name, "change": c.change} for c in self.pending],
            "pending_identity": self.pending_identity,
            "findings": [
                {
                    "kind": f.kind,
                    "name": f.name,
                    "check": f.check,
                    "severity": f.severity,
                    "field": f.field,
                    "detail": f.detail,
                }
                for f in self.findings
            ],
        }


@dataclass(frozen=True, slots=True)
class PinsReport:
    """Every configured server with something waiting or found; empty when all is clean."""

    servers: tuple[ServerPinsReport, ...] = ()
    problem: str | None = None
    """Why the state database could not be read, or ``None``."""

    @property
    def failures(self) -> list[str]:
        """One line per failure: an unreadable database, withheld changes, quarantined definitions."""
        failed = [] if self.problem is None else ["the pins cannot be read"]
        for server in self.servers:
            if server.withheld:
                failed.append(f"server {server.server!r} has changes waiting for approval")
            if server.quarantined:
                failed.append(f"server {server.server!r} has quarantined definitions")
        return failed

    @property
    def ok(self) -> bool:
        """Nothing withheld, nothing quarantined, and the database readable."""
        return not self.failures

    def to_json(self) -> dict[str, object]:
        """The ``pins`` object of ``doctor --json``."""
        return {"ok": self.ok, "problem": self.problem, "servers": [server.to_json() for server in self.servers]}


async def check_pins(config: OrchestratorConfig, env: Mapping[str, str] | None = None) -> PinsReport:
    """The pins report of ``config``'s servers, read from its state database."""
    env = os.environ if env is None else env
    try:
        url = state_db.state_url(config.state, env, str(config.source or "<config>"))
        if state_db.state_file_missing(url):
            return PinsReport()
        async with state_db.open_store(url) as store:
            pins = {item.server: item for item in await state_db.list_pins(store.engine)}
            findings = await state_db.list_findings(store.engine)
    except (ConfigError, StoreError) as exc:
        return PinsReport(problem=str(exc))
    found: dict[str, list[StoredFinding]] = {}
    for item in findings:
        found.setdefault(item.server, []).append(item)
    reports: list[ServerPinsReport] = []
    for key, spec in config.servers.items():
        if spec.disabled:
            continue
        server_pins = pins.get(key)
        report = ServerPinsReport(
            server=key,
            trust=spec.trust,
            pending=tuple(report_pending(server_pins)) if server_pins else (),
            pending_identity=server_pins.pending_identity if server_pins else None,
            findings=tuple(found.get(key, ())),
        )
        if report.waiting or report.findings:
            reports.append(report)
    return PinsReport(servers=tuple(reports))
