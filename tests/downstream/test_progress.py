"""ProgressRelay: a call's progress reports are forwarded in order, and before the call returns."""

from __future__ import annotations

import anyio
import pytest

from orchestrator.downstream._progress import ProgressRelay

pytestmark = pytest.mark.anyio


async def test_drained_waits_for_every_report_started_and_they_go_out_in_order() -> None:
    forwarded: list[float] = []
    release = anyio.Event()

    async def forward(progress: float, total: float | None, message: str | None) -> None:
        await release.wait()
        forwarded.append(progress)

    relay = ProgressRelay(forward)
    drained = anyio.Event()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for step in (1.0, 2.0, 3.0):
                tg.start_soon(relay, step, 3.0, None)

            async def wait_drained() -> None:
                await relay.drained()
                drained.set()

            tg.start_soon(wait_drained)
            await anyio.wait_all_tasks_blocked()
            assert not drained.is_set()
            release.set()
            await drained.wait()
            assert forwarded == [1.0, 2.0, 3.0]


async def test_drained_returns_at_once_when_nothing_is_in_flight() -> None:
    async def forward(progress: float, total: float | None, message: str | None) -> None:
        return None

    relay = ProgressRelay(forward)
    with anyio.fail_after(1):
        await relay.drained()
        await relay(1.0, None, None)
        await relay.drained()
