"""``orchestrator audit`` run as a process against a state database written through the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from orchestrator.auth import Grant, Principal, audit_record
from orchestrator.config import StateSpec
from orchestrator.store import AuditRecord, open_store, state_url, write_audit

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "hunter2-do-not-log"
NOW = datetime.now(UTC).replace(microsecond=0)


def _principal(client_id: str | None, subject: str | None = None) -> Principal:
    return Principal(kind="oauth", client_id=client_id, subject=subject, grant=Grant.of(["*"]))


def _records() -> list[AuditRecord]:
    return [
        audit_record(
            principal=_principal("chatgpt", "owner"),
            tool="db__query",
            arguments={"sql": SECRET, "limit": 5},
            outcome="ok",
            duration=0.0125,
            server="db",
            downstream_tool="query",
            trace_id="a" * 32,
            started_at=NOW - timedelta(hours=3),
        ),
        audit_record(
            principal=_principal("claude"),
            tool="tickets__get",
            arguments={"id": SECRET},
            outcome="DownstreamTimeout",
            duration=2.5,
            server="tickets",
            downstream_tool="get",
            run_id="run-1",
            step_id="details",
            started_at=NOW - timedelta(minutes=30),
        ),
        audit_record(
            principal=_principal("chatgpt", "owner"),
            tool="tickets__get",
            arguments={"id": 7},
            outcome="ok",
            duration=0.2,
            server="tickets",
            downstream_tool="get",
            started_at=NOW - timedelta(minutes=10),
        ),
    ]


@pytest.fixture
def config(home: Path, tmp_path: Path) -> Path:
    """A config whose state database holds the three records of ``_records``."""
    database = tmp_path / "state" / "state.db"
    path = tmp_path / "orchestrator.yaml"
    path.write_text(f"servers: {{}}\nstate: {{url: 'sqlite:///{database}'}}\n", encoding="utf-8")

    async def write() -> None:
        async with open_store(state_url(StateSpec(url=f"sqlite:///{database}"), {})) as store:
            await write_audit(store.engine, _records())

    anyio.run(write)
    return path


def _audit(config: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "audit", "--config", str(config), *options],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
        check=False,
    )


def _json_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _tools(config: Path, *options: str) -> list[tuple[str, str | None]]:
    """The tool and client of each record printed with ``options``, in order."""
    return [(record["tool"], record["client_id"]) for record in _json_lines(_audit(config, "--json", *options))]


def test_the_table_shows_every_record_oldest_first_with_no_argument_value(config: Path) -> None:
    result = _audit(config)

    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["TIME", "(UTC)", "PRINCIPAL", "TOOL", "->", "SERVER/TOOL", "OUTCOME", "DURATION", "TRACE"]
    assert len(rows) == 3
    assert (NOW - timedelta(hours=3)).strftime("%Y-%m-%d %H:%M:%S") in rows[0]
    assert "chatgpt (owner)" in rows[0]
    assert "db__query -> db/query" in rows[0]
    assert "12.5 ms" in rows[0]
    assert "a" * 32 in rows[0]
    assert "tickets__get -> tickets/get [step details]" in rows[1]
    assert "DownstreamTimeout" in rows[1]
    assert "2.50 s" in rows[1]
    assert SECRET not in result.stdout + result.stderr


def test_filters_by_principal_tool_and_time_and_keeps_the_last_records(config: Path) -> None:
    assert _tools(config, "--principal", "chatgpt") == [("db__query", "chatgpt"), ("tickets__get", "chatgpt")]
    assert _tools(config, "--tool", "tickets__get") == [("tickets__get", "claude"), ("tickets__get", "chatgpt")]
    assert _tools(config, "--since", "1h") == [("tickets__get", "claude"), ("tickets__get", "chatgpt")]
    assert _tools(config, "--since", "20m", "--principal", "claude") == []
    since = (NOW - timedelta(hours=4)).isoformat()
    assert _tools(config, "--since", since, "--limit", "2") == [("tickets__get", "claude"), ("tickets__get", "chatgpt")]
    assert _tools(config, "--limit", "1", "--principal", "chatgpt") == [("tickets__get", "chatgpt")]


def test_json_prints_one_object_per_record_with_shapes_and_hashes(config: Path) -> None:
    result = _audit(config, "--json", "--tool", "db__query")

    [record] = _json_lines(result)
    assert SECRET not in result.stdout
    assert datetime.fromisoformat(record["at"]) == NOW - timedelta(hours=3)
    assert record["client_id"] == "chatgpt"
    assert record["subject"] == "owner"
    assert record["argument_shape"] == {"sql": "string", "limit": "integer"}
    assert len(record["argument_hash"]) == 64
    assert (record["server"], record["downstream_tool"], record["outcome"]) == ("db", "query", "ok")
    assert record["duration_ms"] == 12.5
    assert [line["tool"] for line in _json_lines(_audit(config, "--json"))] == [
        "db__query",
        "tickets__get",
        "tickets__get",
    ]


def test_a_bad_option_is_a_usage_error(config: Path) -> None:
    since = _audit(config, "--since", "last tuesday")
    assert since.returncode == 2
    assert "--since: expected a duration" in since.stderr
    limit = _audit(config, "--limit", "0")
    assert limit.returncode == 2
    assert "--limit: must be at least 1" in limit.stderr
