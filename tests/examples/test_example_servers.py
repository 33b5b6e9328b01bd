"""The example servers as real subprocesses: tools, schemas, annotations, results, errors, configs.

Each server process costs about a second of CPU to start, so one process per server is
shared by the whole module; only the flaky-analytics and HTTP tests start their own. The
one test that mutates state (``add_comment``) uses a ticket no other test reads.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import jsonschema
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent, TextResourceContents, ToolAnnotations

from examples.data.build_incidents_db import DEFAULT_OUTPUT as SHIPPED_DATABASE
from examples.data.build_incidents_db import build
from orchestrator.config import StdioServerSpec, load_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anyio.abc import ByteReceiveStream

REPO_ROOT = Path(__file__).resolve().parents[2]
CALL_TIMEOUT = 30.0

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
APPEND_ONLY = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
EXPECTED_TOOLS: dict[str, dict[str, ToolAnnotations]] = {
    "incidents_db": {"query": READ_ONLY, "list_services": READ_ONLY, "describe_schema": READ_ONLY},
    "analytics": {"query_metrics": READ_ONLY, "top_errors": READ_ONLY},
    "tracker": {"search_tickets": READ_ONLY, "get_ticket": READ_ONLY, "add_comment": APPEND_ONLY},
}
SERVICES = ["auth", "checkout", "inventory", "notifications", "payments", "search"]


def server_params(module: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", f"examples.servers.{module}"], cwd=REPO_ROOT, env=env
    )


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def incidents_db() -> AsyncIterator[Client]:
    async with Client(server_params("incidents_db"), read_timeout_seconds=CALL_TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
async def analytics() -> AsyncIterator[Client]:
    async with Client(server_params("analytics"), read_timeout_seconds=CALL_TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
async def tracker() -> AsyncIterator[Client]:
    async with Client(server_params("tracker"), read_timeout_seconds=CALL_TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
def clients(incidents_db: Client, analytics: Client, tracker: Client) -> dict[str, Client]:
    """The shared clients by module name, for tests parametrized over servers."""
    return {"incidents_db": incidents_db, "analytics": analytics, "tracker": tracker}


async def call_ok(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Call a tool, insist on success, and check the structured result against the tool's output schema."""
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    schemas = {tool.name: tool.output_schema for tool in (await client.list_tools()).tools}
    schema = schemas[name]
    assert schema is not None
    jsonschema.validate(result.structured_content, schema)
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


# --- every server -------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("module", sorted(EXPECTED_TOOLS))
async def test_server_lists_its_tools_with_schemas_and_honest_annotations(
    module: str, clients: dict[str, Client]
) -> None:
    client = clients[module]
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    assert {name: tool.annotations for name, tool in tools.items()} == EXPECTED_TOOLS[module]
    for tool in tools.values():
        assert len(tool.description or "") > 40, tool.name
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema is not None, tool.name
        assert tool.output_schema["type"] == "object", tool.name
        for name, prop in tool.input_schema.get("properties", {}).items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("module", "tool", "arguments"),
    [
        ("incidents_db", "query", {"sql": "SELECT * FROM deploys ORDER BY id"}),
        ("incidents_db", "list_services", {}),
        ("incidents_db", "describe_schema", {}),
        ("analytics", "query_metrics", {"service": "search", "metric": "requests_per_min", "hours": 48}),
        ("analytics", "top_errors", {"service": "payments", "hours": 72}),
        ("tracker", "search_tickets", {"query": "checkout"}),
        ("tracker", "get_ticket", {"id": "TCK-116"}),
    ],
)
async def test_read_only_tools_return_the_same_result_twice(
    module: str, tool: str, arguments: dict[str, Any], clients: dict[str, Client]
) -> None:
    client = clients[module]
    first = await call_ok(client, tool, arguments)
    assert await call_ok(client, tool, arguments) == first


# --- incidents-db -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_query_returns_named_columns_and_binds_named_params(incidents_db: Client) -> None:
    result = await call_ok(
        incidents_db,
        "query",
        {
            "sql": "SELECT id, severity FROM incidents WHERE resolved_at IS NULL AND service = :service",
            "params": {"service": "checkout"},
        },
    )

    assert result == {
        "columns": ["id", "severity"],
        "rows": [{"id": "INC-1014", "severity": "SEV1"}],
        "row_count": 1,
        "truncated": False,
    }


@pytest.mark.anyio
async def test_query_caps_rows_at_500_and_says_so(incidents_db: Client) -> None:
    result = await call_ok(
        incidents_db,
        "query",
        {"sql": "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 600) SELECT x FROM n"},
    )

    assert result["row_count"] == 500
    assert result["truncated"] is True


@pytest.mark.anyio
@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM services",
        "UPDATE deploys SET status = 'failed'",
        "INSERT INTO services VALUES ('x', 'y', 1, 'z')",
        "DROP TABLE incidents",
        "WITH doomed AS (SELECT 1) DELETE FROM services",
        "SELECT 1; DROP TABLE services",
        "PRAGMA writable_schema = ON",
        "ATTACH DATABASE ':memory:' AS other",
        "SELECT * FROM pragma_table_info('services')",
    ],
)
async def test_query_refuses_anything_but_one_read_only_select(incidents_db: Client, sql: str) -> None:
    result = await incidents_db.call_tool("query", {"sql": sql})

    assert re.search(r"only a single read-only SELECT|statement refused", error_text(result))
    counts = await call_ok(
        incidents_db,
        "query",
        {"sql": "SELECT (SELECT count(*) FROM services) s, (SELECT count(*) FROM incidents) i"},
    )
    assert counts["rows"] == [{"s": 6, "i": 15}]


@pytest.mark.anyio
async def test_list_services_and_schema_describe_the_database(incidents_db: Client) -> None:
    services = await call_ok(incidents_db, "list_services", {})
    schema = await call_ok(incidents_db, "describe_schema", {})

    assert [s["name"] for s in services["services"]] == SERVICES
    checkout = next(s for s in services["services"] if s["name"] == "checkout")
    assert checkout["current_version"] == "2.15.0"
    assert checkout["open_incidents"] == 1
    tables = {t["name"]: t for t in schema["tables"]}
    assert {name: t["row_count"] for name, t in tables.items()} == {"services": 6, "deploys": 40, "incidents": 15}
    columns = {c["name"]: c for c in tables["incidents"]["columns"]}
    assert columns["resolved_at"]["nullable"] is True
    assert columns["service"]["references"] == "services.name"


def _dump(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def test_builder_is_deterministic_and_matches_the_shipped_database(tmp_path: Path) -> None:
    first, second = tmp_path / "first.sqlite", tmp_path / "second.sqlite"
    build(first)
    build(second)

    assert first.read_bytes() == second.read_bytes()
    assert _dump(first) == _dump(SHIPPED_DATABASE)
    assert SHIPPED_DATABASE.stat().st_size < 100_000


# --- analytics ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_query_metrics_is_aligned_to_the_reference_time_and_shows_the_checkout_spike(
    analytics: Client,
) -> None:
    series = await call_ok(analytics, "query_metrics", {"service": "checkout", "metric": "latency_p99_ms", "hours": 24})

    points = series["points"]
    assert series["unit"] == "ms"
    assert len(points) == 24
    assert (points[0]["ts"], points[-1]["ts"]) == ("2026-11-19T13:00:00Z", "2026-11-20T12:00:00Z")
    values = [p["value"] for p in points]
    assert series["summary"]["min"] == min(values)
    assert series["summary"]["max"] == max(values)
    assert series["summary"]["last"] == values[-1]
    before, during = values[:18], values[19:]  # the spike starts at 07:55Z (INC-1014)
    assert min(during) > 2 * max(before)


@pytest.mark.anyio
async def test_query_metrics_rejects_unknown_services_and_bad_windows(analytics: Client) -> None:
    unknown = await analytics.call_tool("query_metrics", {"service": "billing", "metric": "error_rate"})
    too_long = await analytics.call_tool("query_metrics", {"service": "auth", "metric": "error_rate", "hours": 500})

    assert "unknown service 'billing'" in error_text(unknown)
    assert "hours" in error_text(too_long)


@pytest.mark.anyio
async def test_top_errors_ranks_signatures_by_count(analytics: Client) -> None:
    result = await call_ok(analytics, "top_errors", {"service": "checkout", "hours": 24, "limit": 2})

    counts = [e["count"] for e in result["errors"]]
    assert len(counts) == 2
    assert counts == sorted(counts, reverse=True)
    assert result["total"] >= sum(counts)
    assert result["errors"][0]["signature"].startswith("TimeoutError: payments-client")


@pytest.mark.anyio
async def test_flaky_env_fails_the_first_n_metric_calls_then_serves_the_same_data(analytics: Client) -> None:
    arguments = {"service": "payments", "metric": "error_rate", "hours": 6}
    expected = await call_ok(analytics, "query_metrics", arguments)

    async with Client(
        server_params("analytics", env={"ANALYTICS_FLAKY": "2"}), read_timeout_seconds=CALL_TIMEOUT
    ) as flaky:
        await call_ok(flaky, "top_errors", {"service": "payments"})  # not subject to the switch
        failures = [await flaky.call_tool("query_metrics", arguments) for _ in range(2)]
        recovered = await call_ok(flaky, "query_metrics", arguments)

    assert all("transient upstream error (simulated)" in error_text(f) for f in failures)
    assert recovered == expected  # also deterministic across processes


# --- tracker ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_search_tickets_filters_and_orders_by_priority(tracker: Client) -> None:
    everything = await call_ok(tracker, "search_tickets", {"limit": 100})
    open_checkout = await call_ok(tracker, "search_tickets", {"status": "open", "service": "checkout", "limit": 1})
    linked = await call_ok(tracker, "search_tickets", {"query": "inc-1014"})

    assert everything["total"] == len(everything["items"]) == 20
    assert open_checkout == {
        "items": [
            {
                "id": "TCK-116",
                "title": "Checkout latency spike and errors after 2.15.0",
                "status": "open",
                "priority": "urgent",
                "service": "checkout",
            }
        ],
        "total": 2,
    }
    assert [t["id"] for t in linked["items"]] == ["TCK-116"]


@pytest.mark.anyio
async def test_unknown_ticket_is_a_tool_error(tracker: Client) -> None:
    get = await tracker.call_tool("get_ticket", {"id": "TCK-999"})
    comment = await tracker.call_tool("add_comment", {"id": "TCK-999", "body": "hello"})

    assert "unknown ticket 'TCK-999'" in error_text(get)
    assert "unknown ticket 'TCK-999'" in error_text(comment)


@pytest.mark.anyio
async def test_add_comment_appends_a_new_comment_on_every_call(tracker: Client) -> None:
    before = await call_ok(tracker, "get_ticket", {"id": "TCK-120"})
    first = await call_ok(tracker, "add_comment", {"id": "TCK-120", "body": "Old client removed in #412."})
    second = await call_ok(tracker, "add_comment", {"id": "TCK-120", "body": "Secrets deleted.", "author": "hana.sato"})
    after = await call_ok(tracker, "get_ticket", {"id": "TCK-120"})

    assert first["author"] == "orchestrator"
    assert first["id"] != second["id"]
    assert after["comments"] == [*before["comments"], first, second]
    assert after["updated_at"] == second["created_at"]


@pytest.mark.anyio
async def test_ticket_resources_and_triage_prompt(tracker: Client) -> None:
    templates = (await tracker.list_resource_templates()).resource_templates
    resources = (await tracker.list_resources()).resources
    ticket = await tracker.read_resource("tracker://tickets/TCK-117")
    about = await tracker.read_resource("tracker://about")
    prompt = await tracker.get_prompt("triage_ticket", {"id": "TCK-117"})

    assert [t.uri_template for t in templates] == ["tracker://tickets/{id}"]
    assert [str(r.uri) for r in resources] == ["tracker://about"]
    assert isinstance(ticket.contents[0], TextResourceContents)
    assert '"id": "TCK-117"' in ticket.contents[0].text
    assert isinstance(about.contents[0], TextResourceContents)
    assert about.contents[0].text.startswith("# Tracker")
    content = prompt.messages[0].content
    assert isinstance(content, TextContent)
    assert "TCK-117" in content.text
    with pytest.raises(MCPError, match="unknown ticket"):
        await tracker.read_resource("tracker://tickets/TCK-999")


# --- transports and configs ---------------------------------------------------------------


async def _uvicorn_port(stderr: ByteReceiveStream) -> int:
    seen = b""
    async for chunk in stderr:
        seen += chunk
        if match := re.search(rb"Uvicorn running on http://127\.0\.0\.1:(\d+)", seen):
            return int(match.group(1))
    raise AssertionError(f"server exited before listening:\n{seen.decode(errors='replace')}")


async def _drain(stream: ByteReceiveStream) -> None:
    async for _ in stream:
        pass


@pytest.mark.anyio
async def test_http_transport_serves_the_same_tools_on_loopback() -> None:
    process = await anyio.open_process(
        [sys.executable, "-m", "examples.servers.incidents_db", "--transport", "http", "--port", "0"],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    assert process.stderr is not None
    try:
        async with anyio.create_task_group() as tasks:
            with anyio.fail_after(CALL_TIMEOUT):
                port = await _uvicorn_port(process.stderr)
            tasks.start_soon(_drain, process.stderr)  # keep the pipe from filling up
            async with Client(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=CALL_TIMEOUT) as client:
                tools = [tool.name for tool in (await client.list_tools()).tools]
                services = await call_ok(client, "list_services", {})
                assert sorted(tools) == sorted(EXPECTED_TOOLS["incidents_db"])
                assert len(services["services"]) == 6
            tasks.cancel_scope.cancel()
    finally:
        process.terminate()
        with anyio.fail_after(CALL_TIMEOUT):
            await process.wait()


@pytest.mark.parametrize("file_name", ["orchestrator.yaml", "claude_desktop_config.json"])
def test_example_configs_start_the_example_servers_from_the_repository_root(file_name: str) -> None:
    config = load_config(REPO_ROOT / "examples" / file_name, env={})

    assert list(config.enabled_servers()) == ["db", "metrics", "tickets", "time"]
    for key, module in [("db", "incidents_db"), ("metrics", "analytics"), ("tickets", "tracker")]:
        spec = config.servers[key]
        assert isinstance(spec, StdioServerSpec)
        assert (spec.command, spec.args) == ("python", ("-m", f"examples.servers.{module}"))
        assert spec.cwd is not None
        assert spec.cwd.resolve() == REPO_ROOT
    time = config.servers["time"]
    assert isinstance(time, StdioServerSpec)
    assert time.args == ("-m", "mcp_server_time", "--local-timezone=UTC")
