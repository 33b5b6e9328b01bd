"""What a running instance says about itself: readiness, and the status document.

Readiness (``GET /readyz``) follows one documented rule: every configured server has
finished its first start attempt, and every one is healthy (connected, and answering its
probes). The status document (``GET /status``, behind the same bearer token as ``/mcp``)
gives each server's state, health, breaker and counts, the composites, and the last reload.
Neither carries a secret: configured values never appear, and error texts are masked.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from orchestrator._version import NAME, __version__

if TYPE_CHECKING:
    from orchestrator.downstream import DownstreamPool, ServerStatus
    from orchestrator.server._app import OrchestratorServer
    from orchestrator.server._reload import Reloader

__all__ = ["StatusReporter", "is_ready"]


def is_ready(pool: DownstreamPool) -> bool:
    """Every configured server has finished its first start attempt and is healthy."""
    # Asked every few seconds by load balancers: read the flags, not whole status snapshots.
    return pool.settled and all(server.healthy for server in pool.servers.values())


def _server_entry(status: ServerStatus) -> dict[str, Any]:
    breaker = status.breaker
    return {
        "name": status.server,
        "state": status.state,
        "healthy": status.healthy,
        "health_reason": status.health_reason,
        "protocol_version": status.protocol_version,
        "tools": status.tool_count,
        "restarts": status.restarts,
        "last_error": status.last_error,
        "breaker": None
        if breaker is None
        else {
            "state": breaker.state,
            "retry_in_seconds": None if breaker.retry_in is None else round(breaker.retry_in, 1),
            "reason": breaker.reason,
            "openings": breaker.openings,
        },
    }


class StatusReporter:
    """Builds the status document of one running server."""

    def __init__(self, server: OrchestratorServer, reloader: Reloader | None = None) -> None:
        self._server = server
        self._reloader = reloader
        self._started = time.time()

    def ready(self) -> bool:
        """The readiness rule (see the module docstring)."""
        return is_ready(self._server.pool)

    def document(self) -> dict[str, Any]:
        """The status document, as JSON-ready data."""
        pool = self._server.pool
        composites = self._server.composites
        last = self._reloader.last if self._reloader is not None else None
        config = pool.config
        return {
            "name": NAME,
            "version": __version__,
            "started_at": self._started,
            "uptime_seconds": round(time.time() - self._started, 1),
            "ready": is_ready(pool),
            "config": str(config.source) if config.source is not None else None,
            "servers": [_server_entry(status) for status in pool.statuses()],
            "tools": len(pool.catalog.tools) + len(composites.active),
            "composites": {
                "active": sorted(composites.active),
                "withdrawn": {name: reasons for name, reasons in sorted(composites.withdrawn.items())},
            },
            "last_reload": None
            if last is None
            else {
                "trigger": last.trigger,
                "ok": last.ok,
                "at": last.at,
                "problems": list(last.problems),
                "added": list(last.change.added),
                "removed": list(last.change.removed),
                "restarted": list(last.change.restarted),
                "updated": list(last.change.updated),
            },
        }
