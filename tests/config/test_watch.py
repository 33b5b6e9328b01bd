"""Watching config and workflow files: edits are reported, other files are not, stopping is prompt."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.config import watch_files

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


async def test_an_edit_of_a_watched_file_or_of_a_file_in_a_watched_folder_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "orchestrator.yaml"
    config.write_text("servers: {}\n", encoding="utf-8")
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (tmp_path / "unrelated.txt").write_text("x", encoding="utf-8")
    seen: list[set[Path]] = []
    changed = anyio.Event()
    started = 0.0

    async def on_change(paths: set[Path]) -> None:
        seen.append(paths)
        changed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: watch_files([config, workflows], on_change, debounce_ms=50))
        # Edits keep coming until one is seen: the watcher may start after the first write.
        with anyio.fail_after(10):
            while not changed.is_set():
                (tmp_path / "unrelated.txt").write_text(str(time.time()), encoding="utf-8")
                config.write_text(f"servers: {{}}  # {time.time()}\n", encoding="utf-8")
                with anyio.move_on_after(0.5):
                    await changed.wait()
        assert all(path == config for batch in seen for path in batch)
        changed = anyio.Event()
        with anyio.fail_after(10):
            while not changed.is_set():
                (workflows / "new.yaml").write_text(str(time.time()), encoding="utf-8")
                with anyio.move_on_after(0.5):
                    await changed.wait()
        assert workflows / "new.yaml" in seen[-1]
        started = time.monotonic()
        tg.cancel_scope.cancel()
    assert time.monotonic() - started < 1.0, "stopping a watch must not wait for watchfiles' own timeout"
