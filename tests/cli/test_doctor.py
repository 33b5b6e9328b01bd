"""``orchestrator doctor``: every server started once, names, workflows and tracing checked."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
import pytest

from orchestrator import Aggregator, load_config
from tests.cli.helpers import orchestrator, write_workflow
from tests.e2e.harness import fault_entry, write_config
from tests.fakes import EVENTS_FILE_ENV, read_events
from tests.otlp_receiver import OtlpReceiver

if TYPE_CHECKING:
    from collections.abc import Generator

pytestmark = pytest.mark.usefixtures("home")

GOOD_WORKFLOW = """
    version: 1
    name: shout
    description: Echo a message back.
    input: {type: object, required: [message], properties: {message: {type: string}}}
    steps:
      say:
        tool: f.echo
        with: {text: "${{ input.message }}"}
    output:
      value: "${{ steps.say.result }}"
"""

BROKEN_WORKFLOW = """
    version: 1
    name: broken_flow
    description: Calls a tool nobody offers.
    steps:
      first:
        tool: f.no_such_tool
"""


def _doctor_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    status = orchestrator("doctor", "--json", "--timeout", "20", *args)
    return status, cast("dict[str, Any]", json.loads(capsys.readouterr().out))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def collector() -> Generator[tuple[str, list[tuple[bytes, dict[str, str]]]]]:
    """A stand-in OTLP/HTTP endpoint that answers 200, as collectors do, and records each request."""
    seen: list[tuple[bytes, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((body, {k.lower(): v for k, v in self.headers.items()}))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_doctor_names_a_broken_server_and_a_broken_workflow_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = Path.cwd()
    write_workflow(work / "workflows", "shout", GOOD_WORKFLOW)
    write_workflow(work / "workflows", "broken", BROKEN_WORKFLOW)
    write_config(
        work,
        {
            "f": fault_entry(),
            "missing": {"command": str(work / "no-such-server")},
            "crashes": fault_entry("--fail-start"),
        },
        workflows=["workflows"],
    )

    assert orchestrator("doctor", "--timeout", "20") == 1

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1] == "  ✓ read as an orchestrator config (every key checked)", out
    assert any(line.startswith("  ✓ f ") and "protocol" in line and "tools" in line for line in lines), out
    assert any(line.startswith("  ✗ missing ") and "no-such-server" in line for line in lines), out
    assert any(line.startswith("  ✗ crashes ") for line in lines), out
    assert "stderr (last lines):" in out, "the failing server's stderr tail is shown"
    assert any(line.startswith("  ✗ broken_flow ") for line in lines), out
    assert "steps.first.tool: server 'f' has no tool 'no_such_tool'" in out
    assert any(line.startswith("  ✓ shout ") for line in lines), out
    assert "3 problem(s)" in out
    assert "\033[" not in out, "no colours when stdout is not a terminal"


def test_doctor_json_lists_the_same_findings(capsys: pytest.CaptureFixture[str]) -> None:
    work = Path.cwd()
    write_workflow(work / "workflows", "broken", BROKEN_WORKFLOW)
    write_config(work, {"f": fault_entry(), "crashes": fault_entry("--fail-start")}, workflows=["workflows"])

    status, report = _doctor_json(capsys)

    assert status == 1
    assert report["ok"] is False
    servers = {s["name"]: s for s in report["servers"]}
    assert servers["f"]["ok"] is True
    assert servers["f"]["tool_count"] > 0
    assert servers["f"]["protocol_version"]
    assert servers["crashes"]["ok"] is False
    assert servers["crashes"]["stderr_tail"]
    assert servers["crashes"]["seconds"] is not None
    [workflow] = report["workflows"]
    assert workflow["name"] == "broken_flow"
    assert workflow["ok"] is False
    assert any("no_such_tool" in p for p in workflow["problems"])


def test_doctor_exits_0_on_a_healthy_config_and_checks_the_tracing_endpoint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    work = Path.cwd()
    write_workflow(work / "workflows", "shout", GOOD_WORKFLOW)
    write_config(work, {"f": fault_entry(), "old": {"command": "gone", "disabled": True}}, workflows=["workflows"])
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        status, report = _doctor_json(capsys)
        assert receiver.spans == [], "the probe exports nothing"

    assert status == 0, report
    assert report["ok"] is True
    assert report["config"] == {
        "path": str(work / "orchestrator.yaml"),
        "ok": True,
        "problems": [],
        "kind": "orchestrator",
        "ignored_keys": [],
        "ignored_entry_keys": [],
        "notes": [],
    }
    assert [(s["name"], s["state"]) for s in report["servers"]] == [("f", "ready"), ("old", "disabled")]
    assert report["workflows"] == [
        {"name": "shout", "file": str(work / "workflows" / "shout.yaml"), "ok": True, "problems": []}
    ]
    [check] = report["tracing"]["checks"]
    assert check["ok"] is True
    assert check["target"] == f"http/protobuf {receiver.traces_url}"
    assert "answered HTTP" in check["detail"]


def test_doctor_fails_fast_when_the_tracing_endpoint_does_not_answer(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(Path.cwd(), {"f": fault_entry()}, tracing={"exporter": "otlp"})
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://user:pw@127.0.0.1:{_free_port()}/v1/traces")
    started = time.monotonic()

    status, report = _doctor_json(capsys)

    assert time.monotonic() - started < 15
    assert status == 1
    [check] = report["tracing"]["checks"]
    assert check["ok"] is False
    assert "pw" not in check["target"], "credentials in the URL are never shown"


def test_changed_names_are_reported_as_warnings_not_failures(capsys: pytest.CaptureFixture[str]) -> None:
    long_name = "a_tool_name_that_is_far_too_long_to_fit_once_the_server_prefix_is_added"
    write_config(
        Path.cwd(),
        {
            "f": fault_entry("--tools", f"odd.name,{long_name}", tools={"rename": {"echo": "say"}}),
            "g": fault_entry("--tools", "say", prefix="f"),
        },
    )
    status, report = _doctor_json(capsys)
    assert status == 0, report
    notes = {(n["server"], n["original"]): set(n["notes"]) for n in report["names"]}
    assert notes[("f", "odd.name")] == {"sanitized"}
    assert "truncated" in notes[("f", long_name)]
    assert "renamed" in notes[("f", "echo")]
    assert any("collision" in n for n in notes.values())


def test_an_invalid_config_is_a_failure_with_its_problems(capsys: pytest.CaptureFixture[str]) -> None:
    write_config(Path.cwd(), {"f": {"command": "x", "colour": "red"}})
    status, report = _doctor_json(capsys)
    assert status == 1
    assert report["config"]["ok"] is False
    assert any("colour" in p for p in report["config"]["problems"])
    assert report["servers"] == []


def test_no_config_at_all_is_a_failure_that_says_what_was_tried(capsys: pytest.CaptureFixture[str]) -> None:
    assert orchestrator("doctor") == 1
    assert "no configuration file found" in capsys.readouterr().out


def test_the_tracing_probe_is_an_empty_export_without_credentials(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    collector: tuple[str, list[tuple[bytes, dict[str, str]]]],
) -> None:
    url, seen = collector
    write_config(Path.cwd(), {"f": fault_entry()}, tracing={"exporter": "otlp", "endpoint": url})
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer s3cret")

    status, report = _doctor_json(capsys)

    assert status == 0, report
    assert report["tracing"]["checks"][0]["detail"].startswith("answered HTTP 200")
    [(body, headers)] = seen
    assert body == b""
    assert headers["content-type"] == "application/x-protobuf"
    assert "authorization" not in headers


def test_doctor_reports_the_auth_mode_and_whether_its_urls_answer(capsys: pytest.CaptureFixture[str]) -> None:
    work = Path.cwd()
    issuer = f"http://127.0.0.1:{_free_port()}"  # nothing serves there: serve is not running
    write_config(work, {"f": fault_entry()}, serve={"auth": {"oauth": {"issuer": issuer}}})
    status, report = _doctor_json(capsys)
    auth = report["auth"]
    assert (auth["mode"], auth["issuer"], auth["resource_url"]) == ("oauth", issuer, f"{issuer}/mcp")
    assert [(c["url"], c["ok"], c["required"]) for c in auth["checks"]] == [
        (f"{issuer}/.well-known/oauth-authorization-server", False, False),
        (f"{issuer}/.well-known/oauth-protected-resource/mcp", False, False),
    ]
    assert status == 0, "metadata not answering before serve runs is a warning"
    orchestrator("doctor", "--timeout", "20")
    assert "is serve, and the tunnel or proxy, running?" in capsys.readouterr().out


def test_doctor_fails_when_the_identity_providers_keys_cannot_be_fetched(capsys: pytest.CaptureFixture[str]) -> None:
    work = Path.cwd()
    jwt = {
        "issuer": "https://idp.example",
        "jwks_url": f"http://127.0.0.1:{_free_port()}/certs",
        "audience": "https://mcp.example/mcp",
    }
    write_config(work, {"f": fault_entry()}, serve={"auth": {"jwt": jwt}})
    status, report = _doctor_json(capsys)
    assert status == 1
    assert report["auth"]["mode"] == "jwt"
    [keys, metadata] = report["auth"]["checks"]
    assert (keys["what"], keys["ok"], keys["required"]) == ("signing keys (JWKS)", False, True)
    assert metadata["required"] is False
    assert report["ok"] is False
    assert report["auth"]["ok"] is False


def _spawned(events: Path) -> int:
    return sum(line.startswith("spawned ") for line in read_events(events))


async def _learn(config: Path) -> None:
    """Run the aggregator once: the lazy server is started to learn its listing, which is kept."""
    with anyio.fail_after(30):
        async with Aggregator(load_config(config)) as aggregator:
            await aggregator.wait_for_servers()


def test_doctor_shows_a_lazy_server_with_a_kept_listing_cold_and_starts_it_only_when_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = Path.cwd()
    events = work / "events"
    lazy = fault_entry("--start-event", env={EVENTS_FILE_ENV: str(events)}, start="lazy")
    config = write_config(work, {"lazy": lazy, "f": fault_entry()})
    anyio.run(_learn, config)
    assert _spawned(events) == 1

    status, report = _doctor_json(capsys)
    assert status == 0, report
    servers = {s["name"]: s for s in report["servers"]}
    assert (servers["lazy"]["ok"], servers["lazy"]["state"], servers["lazy"]["tool_count"]) == (True, "cold", 15)
    assert servers["f"]["state"] == "ready"
    assert _spawned(events) == 1, "doctor did not start the cold server"

    assert orchestrator("doctor", "--timeout", "20") == 0
    out = capsys.readouterr().out
    assert "Servers (1 of 2 started, 1 cold)" in out, out
    assert any(line.startswith("  ✓ lazy  cold  15 tools from its last listing") for line in out.splitlines()), out
    assert _spawned(events) == 1

    status, report = _doctor_json(capsys, "--start-lazy")
    assert status == 0, report
    servers = {s["name"]: s for s in report["servers"]}
    assert (servers["lazy"]["state"], servers["lazy"]["protocol_version"] is not None) == ("ready", True)
    assert _spawned(events) == 2
