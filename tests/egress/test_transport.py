"""The guarded transport against real HTTP servers on 127.0.0.1 (names resolved by a test resolver)."""

from __future__ import annotations

import anyio
import httpx2
import pytest

from orchestrator._egress import EgressRefused, EgressRules, GuardedTransport
from tests.egress.http_probe import probe_server

pytestmark = pytest.mark.anyio

LIMIT = 10.0


def _ok(_: object) -> tuple[int, dict[str, str]]:
    return 204, {}


class Resolver:
    """Answers from a table that a test may change between requests (DNS rebinding); counts questions."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return self.answers[host]


async def test_a_name_is_resolved_checked_and_connected_to_at_the_checked_address_keeping_the_name() -> None:
    with anyio.fail_after(LIMIT):
        async with probe_server(_ok) as server:
            url = f"http://api.example:{server.port}/mcp"
            resolve = Resolver({"api.example": ["127.0.0.1"]})
            transport = GuardedTransport(EgressRules(), config_urls=[url], resolve=resolve)
            async with httpx2.AsyncClient(transport=transport) as client:
                response = await client.get(url)
    assert response.status_code == 204
    assert resolve.asked == ["api.example"]
    assert [(r.line, r.headers["host"]) for r in server.received] == [
        ("GET /mcp HTTP/1.1", f"api.example:{server.port}")
    ]


async def test_a_name_that_rebinds_to_a_metadata_address_is_refused_before_any_connection() -> None:
    with anyio.fail_after(LIMIT):
        async with probe_server(_ok) as server:
            url = f"http://api.example:{server.port}/mcp"
            resolve = Resolver({"api.example": ["127.0.0.1"]})
            transport = GuardedTransport(EgressRules(), config_urls=[url], resolve=resolve)
            async with httpx2.AsyncClient(transport=transport) as client:
                assert (await client.get(url)).status_code == 204
                resolve.answers["api.example"] = ["169.254.169.254"]
                with pytest.raises(EgressRefused) as caught:
                    await client.get(url)
                resolve.answers["api.example"] = ["127.0.0.1", "fd00:ec2::254"]
                with pytest.raises(EgressRefused, match=r"fd00:ec2::254"):
                    await client.get(url)
    assert str(caught.value) == (
        f"http://api.example:{server.port}/ resolves to a link-local/cloud-metadata address (169.254.169.254); "
        "list it in egress.allow to connect anyway"
    )
    assert len(server.received) == 1


async def test_a_redirect_to_another_loopback_origin_is_learned_and_not_followed() -> None:
    with anyio.fail_after(LIMIT):
        async with probe_server(_ok) as target:

            def redirect(_: object) -> tuple[int, dict[str, str]]:
                return 307, {"Location": f"{target.base}/mcp"}

            async with probe_server(redirect) as server:
                transport = GuardedTransport(EgressRules(), config_urls=[f"{server.base}/mcp"])
                async with httpx2.AsyncClient(transport=transport, follow_redirects=True) as client:
                    with pytest.raises(EgressRefused) as caught:
                        await client.post(f"{server.base}/mcp", json={})
    assert caught.value.origin == "learned"
    assert f"{target.base}/ resolves to a loopback address (127.0.0.1), which a URL learned" in str(caught.value)
    assert len(server.received) == 1
    assert target.received == [], "the refused redirect was not followed"


@pytest.mark.parametrize("allow", [["127.0.0.1"], ["127.0.0.0/8"]])
async def test_egress_allow_lets_a_learned_url_reach_a_listed_address(allow: list[str]) -> None:
    with anyio.fail_after(LIMIT):
        async with probe_server(_ok) as target:

            def redirect(_: object) -> tuple[int, dict[str, str]]:
                return 307, {"Location": f"{target.base}/mcp"}

            async with probe_server(redirect) as server:
                transport = GuardedTransport(EgressRules.from_allow(allow), config_urls=[f"{server.base}/mcp"])
                async with httpx2.AsyncClient(transport=transport, follow_redirects=True) as client:
                    response = await client.post(f"{server.base}/mcp", json={})
    assert response.status_code == 204
    assert len(target.received) == 1


async def test_the_same_redirect_is_followed_when_both_origins_are_in_the_config() -> None:
    with anyio.fail_after(LIMIT):
        async with probe_server(_ok) as target:

            def redirect(_: object) -> tuple[int, dict[str, str]]:
                return 307, {"Location": f"{target.base}/mcp"}

            async with probe_server(redirect) as server:
                config_urls = [f"{server.base}/mcp", f"{target.base}/mcp"]
                transport = GuardedTransport(EgressRules(), config_urls=config_urls)
                async with httpx2.AsyncClient(transport=transport, follow_redirects=True) as client:
                    response = await client.post(f"{server.base}/mcp", json={})
    assert response.status_code == 204
    assert len(target.received) == 1
