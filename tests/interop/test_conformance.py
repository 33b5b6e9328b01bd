"""The official MCP conformance suite, directly against our fixture and through the aggregator.

``@modelcontextprotocol/conformance`` (pinned in tests/node/package.json) runs its server
scenarios over streamable HTTP. ``tests/interop/conformance_server.py`` is the fixture they
expect. The same scenarios then run against ``orchestrator serve --transport http`` fronting
that fixture with ``prefix: false``, once with the fixture as a stdio downstream and once
as an HTTP downstream. A transparent proxy passes exactly what the server passes directly;
the counts are recorded in docs/interop.md.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.harness import REPO_ROOT, http_aggregator, write_config
from tests.interop._peers import CONFORMANCE, NODE22, ConformanceRun, conformance_fixture_http, require, run_conformance

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

pytestmark = [pytest.mark.anyio, pytest.mark.npm, pytest.mark.slow]

EXTRA_SCENARIOS = ("json-schema-2020-12",)
"""Pending in the pinned suite (so not in its default run), but a proxy must keep 2020-12
schemas (``$schema``, ``$defs``, ``additionalProperties``) intact, so it runs too."""


def _downstream(kind: str, fixture_url: str) -> dict[str, Any]:
    if kind == "stdio":
        return {
            "command": sys.executable,
            "args": ["-m", "tests.interop.conformance_server"],
            "cwd": str(REPO_ROOT),
            "prefix": False,
        }
    return {"url": fixture_url, "prefix": False}


@pytest.fixture(scope="module")
async def fixture_url() -> AsyncGenerator[str, None]:
    require(NODE22, CONFORMANCE)
    async with conformance_fixture_http() as url:
        yield url


@pytest.fixture(scope="module")
async def direct(fixture_url: str, tmp_path_factory: pytest.TempPathFactory) -> ConformanceRun:
    return await run_conformance(fixture_url, tmp_path_factory.mktemp("direct"), extra_scenarios=EXTRA_SCENARIOS)


@pytest.fixture(scope="module", params=["stdio", "http"], ids=["stdio-downstream", "http-downstream"])
async def via_aggregator(
    request: pytest.FixtureRequest, fixture_url: str, tmp_path_factory: pytest.TempPathFactory
) -> ConformanceRun:
    kind: str = request.param
    work: Path = tmp_path_factory.mktemp(f"via-{kind}")
    config = write_config(work, {"conformance": _downstream(kind, fixture_url)})
    async with http_aggregator(config) as url:
        return await run_conformance(url, work / "results", extra_scenarios=EXTRA_SCENARIOS)


async def test_fixture_passes_every_scenario_directly(direct: ConformanceRun) -> None:
    assert not direct.failing, direct.summary()
    # 30 active scenarios (40 checks) in the pinned suite, plus json-schema-2020-12 (4 checks).
    assert len(direct.scenarios) >= 31, direct.summary()
    assert direct.checks_passed >= 44, direct.summary()


async def test_pass_count_through_the_aggregator_equals_direct(
    direct: ConformanceRun, via_aggregator: ConformanceRun
) -> None:
    assert set(via_aggregator.scenarios) == set(direct.scenarios)
    assert via_aggregator.passing == direct.passing, via_aggregator.summary()
    assert via_aggregator.checks_passed == direct.checks_passed, via_aggregator.summary()
