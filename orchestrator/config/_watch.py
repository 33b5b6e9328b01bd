"""Watching the config file (and the workflow files it names) for edits, with ``watchfiles``.

Editors save in different ways (write in place, or write a new file and rename it over the
old one), so the folders are watched and the events filtered down to the files that matter.
A burst of events (one save is often several) comes out as one change, after watchfiles'
debounce. Owns no reloading: it only says "these files changed".
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from watchfiles import Change, awatch  # pyright: ignore[reportUnknownVariableType] - a trio type in a default

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from orchestrator.config._models import OrchestratorConfig

__all__ = ["config_watch_paths", "watch_files"]

logger = logging.getLogger(__name__)


def config_watch_paths(config: OrchestratorConfig) -> tuple[Path, ...]:
    """What a config's behaviour depends on: its own file and its workflow files or folders."""
    paths = [config.source] if config.source is not None else []
    paths.extend(config.workflows)
    return tuple(path.resolve() for path in paths)


async def watch_files(
    targets: Iterable[Path], on_change: Callable[[set[Path]], Awaitable[None]], *, debounce_ms: int = 300
) -> None:
    """Call ``on_change`` with the changed paths each time some of ``targets`` change; runs until cancelled.

    A target that is a file is matched exactly (also when an editor replaces it by a
    rename): its folder is watched, not recursively. A target that is a folder matches
    everything below it.

    Args:
        targets: Files and folders (absolute paths).
        on_change: Awaited with each batch of changes; the next batch waits for it.
        debounce_ms: How long a burst of events is gathered into one change.
    """
    watched = tuple(targets)
    files = {target for target in watched if not target.is_dir()}
    folders = [target for target in watched if target.is_dir()]
    parents = sorted({path.parent for path in files if path.parent.is_dir()})

    def matters(change: Change, name: str) -> bool:
        path = Path(name)
        return path in files or any(path.is_relative_to(folder) for folder in folders)

    # watchfiles waits in a worker thread that only this event stops promptly: without it, a
    # cancelled watch would hold up shutdown until its next internal timeout (seconds).
    stop = anyio.Event()

    async def pump(roots: list[Path], recursive: bool) -> None:
        watching = awatch(*roots, watch_filter=matters, debounce=debounce_ms, recursive=recursive, stop_event=stop)
        async for changes in watching:
            changed = {Path(name) for _, name in changes}
            logger.debug("watched files changed: %s", ", ".join(sorted(map(str, changed))))
            await on_change(changed)

    async with anyio.create_task_group() as tg:
        if parents:
            tg.start_soon(pump, parents, False)
        if folders:
            tg.start_soon(pump, folders, True)
        try:
            await anyio.sleep_forever()
        finally:
            stop.set()
