"""The health monitor: probes when idle, unhealthy after failed probes, healthy on the next answer."""

from __future__ import annotations

import anyio
import pytest

from orchestrator.config import HealthSpec
from orchestrator.downstream._health import HealthMonitor

pytestmark = pytest.mark.anyio


class _Changes:
    def __init__(self) -> None:
        self.count = 0
        self.changed = anyio.Event()

    async def __call__(self) -> None:
        self.count += 1
        self.changed.set()

    async def next(self) -> None:
        with anyio.fail_after(5):
            await self.changed.wait()
        self.changed = anyio.Event()


async def test_failed_probes_make_it_unhealthy_and_the_next_answer_healthy_again() -> None:
    changes = _Changes()
    monitor = HealthMonitor("s", HealthSpec(interval=0.01, timeout=0.05, failures=2), changes)
    await monitor.mark_healthy()
    await changes.next()
    answering = anyio.Event()
    probes = 0

    async def probe() -> None:
        nonlocal probes
        probes += 1
        if not answering.is_set():
            await anyio.sleep_forever()  # a hung server: the probe's timeout fires

    async with anyio.create_task_group() as tg:
        tg.start_soon(monitor.probe_while_connected, probe)
        await changes.next()
        assert not monitor.healthy
        assert monitor.reason == "2 health probes failed (last: no answer within the timeout)"
        assert probes >= 2
        answering.set()
        await changes.next()
        assert monitor.healthy
        assert monitor.reason is None
        tg.cancel_scope.cancel()
    assert changes.count == 3


async def test_a_requested_probe_runs_at_once_even_before_the_interval() -> None:
    changes = _Changes()
    monitor = HealthMonitor("s", HealthSpec(interval=3600, timeout=5, failures=1), changes)
    probed = anyio.Event()

    async def probe() -> None:
        probed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(monitor.probe_while_connected, probe)
        monitor.request_probe()
        with anyio.fail_after(5):
            await probed.wait()
        tg.cancel_scope.cancel()


async def test_a_lost_server_not_back_within_the_timeout_is_unhealthy_naming_the_error() -> None:
    changes = _Changes()
    monitor = HealthMonitor("s", HealthSpec(timeout=0.05), changes)
    await monitor.mark_healthy()
    await changes.next()
    await monitor.watch_downtime(anyio.Event(), lambda: "failed to start: FileNotFoundError")
    assert not monitor.healthy
    assert monitor.reason == "not connected for 0.05s (failed to start: FileNotFoundError)"


async def test_a_lost_server_back_in_time_stays_healthy() -> None:
    changes = _Changes()
    monitor = HealthMonitor("s", HealthSpec(timeout=5), changes)
    await monitor.mark_healthy()
    back = anyio.Event()
    back.set()
    await monitor.watch_downtime(back, lambda: None)
    assert monitor.healthy
    assert changes.count == 1
