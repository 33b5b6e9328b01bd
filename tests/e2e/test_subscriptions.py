"""Resource subscriptions are per client: the downstream stays subscribed while anyone is.

Two handshake-era clients subscribe to the same resource of a 2025-11-25 downstream. One
unsubscribing (or going away) leaves the other subscribed, and still told of updates; the
downstream is unsubscribed only when the last one leaves. A 2026-07-28 client's listen stream
that names the resource holds a subscription too, for as long as it is open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import mcp_types as types
import pytest
from mcp import Client

from tests.e2e.harness import Notifications, events_seen, fault_entry, http_aggregator, write_config
from tests.fakes import EVENTS_FILE_ENV, read_events

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

pytestmark = pytest.mark.anyio

URI = "fault://static"


def _updates() -> Notifications:
    return Notifications(types.ResourceUpdatedNotification, lambda message: str(message.params.uri) == URI)


def _count(path: Path, line: str) -> int:
    return sum(1 for event in read_events(path) if event == line)


def _config(tmp_path: Path) -> tuple[Path, Path]:
    events = tmp_path / "events.log"
    entry = fault_entry("--legacy-only", "--ops-tools", env={EVENTS_FILE_ENV: str(events)})
    return write_config(tmp_path, {"f": entry}), events


async def test_one_client_unsubscribing_leaves_the_others_subscription_and_updates_in_place(tmp_path: Path) -> None:
    config, events = _config(tmp_path)
    updates_a, updates_b = _updates(), _updates()
    handler_a: Callable[[object], Awaitable[None]] = updates_a
    handler_b: Callable[[object], Awaitable[None]] = updates_b
    async with (
        http_aggregator(config) as url,
        Client(url, mode="legacy", message_handler=handler_a) as client_a,
        Client(url, mode="legacy", message_handler=handler_b) as client_b,
    ):
        await client_a.subscribe_resource(URI)  # pyright: ignore[reportDeprecated]
        await client_b.subscribe_resource(URI)  # pyright: ignore[reportDeprecated]
        await events_seen(events, f"subscribed {URI}")
        assert _count(events, f"subscribed {URI}") == 1, "the downstream is subscribed once for both"

        await client_a.unsubscribe_resource(URI)  # pyright: ignore[reportDeprecated]
        await client_a.call_tool("f__touch_resource", {})
        await updates_b.reach(1)
        assert _count(events, f"unsubscribed {URI}") == 0, "B still holds the subscription"
        assert updates_a.count == 0

        await client_b.unsubscribe_resource(URI)  # pyright: ignore[reportDeprecated]
        await events_seen(events, f"unsubscribed {URI}")


async def test_a_client_that_goes_away_lets_go_of_its_subscriptions(tmp_path: Path) -> None:
    config, events = _config(tmp_path)
    async with http_aggregator(config) as url:
        async with Client(url, mode="legacy") as client_a, Client(url, mode="legacy") as client_b:
            await client_a.subscribe_resource(URI)  # pyright: ignore[reportDeprecated]
            await client_b.subscribe_resource(URI)  # pyright: ignore[reportDeprecated]
            await client_b.unsubscribe_resource(URI)  # pyright: ignore[reportDeprecated]
            assert _count(events, f"unsubscribed {URI}") == 0
        # Both sessions closed without A unsubscribing: the aggregator lets go for it.
        await events_seen(events, f"unsubscribed {URI}")


async def test_a_2026_listen_stream_naming_the_resource_holds_a_subscription_while_open(tmp_path: Path) -> None:
    config, events = _config(tmp_path)
    async with http_aggregator(config) as url, Client(url) as modern, Client(url, mode="legacy") as legacy:
        async with modern.listen(resource_subscriptions=[URI]) as subscription:
            await events_seen(events, f"subscribed {URI}")
            await legacy.call_tool("f__touch_resource", {})
            with anyio.fail_after(10):
                async for event in subscription:
                    if getattr(event, "uri", None) == URI:
                        break
        await events_seen(events, f"unsubscribed {URI}")
