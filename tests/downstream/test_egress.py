"""Downstream HTTP servers behind the egress guard: real servers on 127.0.0.1, the pool's own status."""

from __future__ import annotations

import logging

import anyio
import pytest

from orchestrator.config import OrchestratorConfig
from orchestrator.downstream import DownstreamPool, ServerStatus
from tests.e2e.harness import http_fault_server
from tests.egress.http_probe import probe_server

pytestmark = pytest.mark.anyio

LIMIT = 30.0


def _config(servers: dict[str, object], **sections: object) -> OrchestratorConfig:
    # Validated directly, not loaded: the loader refuses a literal metadata address before anything runs.
    return OrchestratorConfig.model_validate({"servers": servers, **sections})


def _status(pool: DownstreamPool, key: str) -> ServerStatus:
    return next(status for status in pool.statuses() if status.server == key)


async def test_a_downstream_on_loopback_written_in_the_config_is_reached() -> None:
    with anyio.fail_after(LIMIT):
        async with (
            http_fault_server() as (url, _process),
            DownstreamPool.running(_config({"local": {"url": url}})) as pool,
        ):
            await pool.wait_settled(LIMIT)
            result = await pool.call_tool("local__echo", {"text": "over loopback"})
    assert result.structured_content == {"text": "over loopback"}


async def test_a_redirect_to_another_origin_is_not_followed_and_the_server_fails_saying_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)

    def ok(_: object) -> tuple[int, dict[str, str]]:
        return 204, {}

    with anyio.fail_after(LIMIT):
        async with probe_server(ok) as target:

            def redirect(_: object) -> tuple[int, dict[str, str]]:
                return 307, {"Location": f"{target.base}/mcp"}

            async with (
                probe_server(redirect) as server,
                DownstreamPool.running(_config({"moved": {"url": f"{server.base}/mcp", "timeout": "5s"}})) as pool,
            ):
                await pool.wait_settled(LIMIT)
                status = _status(pool, "moved")
    assert status.state != "ready"
    assert status.last_error is not None
    assert "not followed" in status.last_error
    assert f"{target.base}/mcp" in status.last_error
    assert server.received, "the configured server was asked"
    assert target.received == [], "nothing reached the redirect's target"
    refusals = [
        r.getMessage() for r in caplog.records if "redirected to another host, which is refused" in r.getMessage()
    ]
    assert refusals
    assert f"{target.base}/ resolves to a loopback address (127.0.0.1), which a URL learned" in refusals[0]


async def test_a_metadata_address_fails_its_server_at_once_with_the_reason_and_others_keep_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with anyio.fail_after(LIMIT):
        async with (
            http_fault_server() as (url, _process),
            DownstreamPool.running(
                _config({"meta": {"url": "http://169.254.169.254/latest"}, "local": {"url": url}})
            ) as pool,
        ):
            await pool.wait_settled(LIMIT)
            meta = _status(pool, "meta")
            assert _status(pool, "local").state == "ready"
    assert meta.last_error == (
        "failed to start: http://169.254.169.254/ resolves to a link-local/cloud-metadata address "
        "(169.254.169.254); list it in egress.allow to connect anyway"
    )
    assert "Traceback" not in caplog.text
