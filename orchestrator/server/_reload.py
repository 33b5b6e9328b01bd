"""Live reload: a changed config applied to the running server, without dropping a client.

A reload is triggered by an edit of the config file or of a workflow file (watched), or by
SIGHUP. The new config and its workflows are loaded and checked first; a bad edit is logged
with every located problem and the old config keeps serving. A good one is applied: servers
are added, removed or restarted as their entries changed (unchanged ones, and their calls in
flight, are not touched), workflows are replaced, and clients get ``list_changed``.

Settings that belong to the listening socket, the tracing pipeline or the state database and
its run journal (``serve``, ``tracing``, ``state``, ``runs``) cannot change under a running
process: a change to them is logged as needing a restart.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from orchestrator.config import OrchestratorConfig, config_watch_paths, watch_files
from orchestrator.downstream import DownstreamPool, PoolChange
from orchestrator.errors import ConfigError, WorkflowDefinitionError
from orchestrator.server._plans import reserved_tool_names

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.server._app import OrchestratorServer
    from orchestrator.server._composites import Composites
    from orchestrator.tracing import Redactor

__all__ = ["LoadFn", "Loaded", "ReloadRecord", "Reloader"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Loaded:
    """A config with what is built from it, ready to be applied."""

    config: OrchestratorConfig
    composites: Composites
    redactor: Redactor | None = None


LoadFn = Callable[[], Loaded]
"""Reads and checks the config and its workflows again.

Raises ``ConfigError`` or ``WorkflowDefinitionError`` listing every problem."""


@dataclass(frozen=True, slots=True)
class ReloadRecord:
    """How a reload went, for logs and ``orchestrator status``."""

    trigger: str
    ok: bool
    at: float = field(default_factory=time.time)
    problems: tuple[str, ...] = ()
    change: PoolChange = field(default_factory=PoolChange)
    workflows_changed: bool = False


class Reloader:
    """Applies config edits to a running ``OrchestratorServer`` and its pool."""

    def __init__(self, server: OrchestratorServer, pool: DownstreamPool, load: LoadFn) -> None:
        self._server = server
        self._pool = pool
        self._load = load
        self._lock = anyio.Lock()
        self._paths_changed = anyio.Event()
        self.last: ReloadRecord | None = None

    @property
    def config(self) -> OrchestratorConfig:
        """The config being served now."""
        return self._pool.config

    async def reload(self, trigger: str) -> ReloadRecord:
        """Load the config again and apply it; a config with problems changes nothing.

        Args:
            trigger: What asked for the reload, for the log ("SIGHUP", "orchestrator.yaml changed").

        Returns:
            What happened.
        """
        async with self._lock:
            old = self.config
            try:
                loaded = await anyio.to_thread.run_sync(self._load)
            except (ConfigError, WorkflowDefinitionError) as exc:
                problems = tuple(exc.problems) or (str(exc),)
                # Each problem names its file (and line): config and workflow files alike.
                logger.error(
                    "reload (%s) rejected; the previous configuration keeps serving:\n%s",
                    trigger,
                    "\n".join(f"  - {problem}" for problem in problems),
                )
                self.last = ReloadRecord(trigger=trigger, ok=False, problems=problems)
                return self.last
            record = await self._apply(trigger, old, loaded)
            if config_watch_paths(old) != config_watch_paths(loaded.config):
                self._paths_changed.set()
            self.last = record
            return record

    async def _apply(self, trigger: str, old: OrchestratorConfig, loaded: Loaded) -> ReloadRecord:
        for section in ("serve", "tracing", "state", "runs"):
            if getattr(old, section) != getattr(loaded.config, section):
                logger.warning("reload (%s): the %r settings changed; they apply at the next start", trigger, section)
        if self._server.runs is None and loaded.config.runs.journal and loaded.composites.names:
            logger.warning(
                "reload (%s): composite runs are not journalled (nor offered as tasks) until the next start: "
                "the run journal opens when serve starts with composites",
                trigger,
            )
        self._server.set_redactor(loaded.redactor)
        workflows_changed = await self._server.set_composites(loaded.composites)
        change = await self._pool.apply(
            loaded.config, reserved=reserved_tool_names(loaded.config, loaded.composites.names)
        )
        if old.catalog != loaded.config.catalog:  # after the pool has it: the list clients fetch then reads it
            await self._server.catalog_spec_changed()
        parts = [
            f"{label}: {', '.join(keys)}"
            for label, keys in (
                ("added", change.added),
                ("removed", change.removed),
                ("restarted", change.restarted),
                ("updated", change.updated),
            )
            if keys
        ]
        if workflows_changed:
            parts.append("workflows changed")
        logger.info("reload (%s) applied: %s", trigger, "; ".join(parts) if parts else "nothing changed")
        return ReloadRecord(trigger=trigger, ok=True, change=change, workflows_changed=workflows_changed)

    async def watch_signals(self) -> None:
        """Reload on every SIGHUP; runs until cancelled."""
        with anyio.open_signal_receiver(signal.SIGHUP) as signals:
            async for _ in signals:
                logger.info("received SIGHUP; reloading the configuration")
                await self.reload("SIGHUP")

    async def watch_files(self) -> None:
        """Reload whenever the config file or a workflow file changes; runs until cancelled."""
        while True:
            paths = config_watch_paths(self.config)
            self._paths_changed = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch_files, paths, self._on_files_changed)
                await self._paths_changed.wait()  # a reload named other files: watch those
                tg.cancel_scope.cancel()

    async def _on_files_changed(self, changed: set[Path]) -> None:
        names = ", ".join(sorted(path.name for path in changed))
        await self.reload(f"{names} changed")
