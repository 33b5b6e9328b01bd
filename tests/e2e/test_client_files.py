"""``-c`` on an MCP client's own file, as the client wrote it, against real server processes."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from typing import TYPE_CHECKING, Any, cast

import pytest
from anyio import run_process

from tests.e2e.harness import REPO_ROOT, fault_entry, http_fault_server
from tests.fakes import fault_server_argv

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

CANARY = "CANARY-SECRET"


async def _orchestrator(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "INPUT_", "OTEL_"))}
    done = await run_process(
        [sys.executable, "-m", "orchestrator", *args], cwd=REPO_ROOT, env={**child_env, **(env or {})}, check=False
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def _tools(stdout: str) -> dict[str, set[str]]:
    rows = cast("list[dict[str, Any]]", json.loads(stdout)["mappings"])
    servers: dict[str, set[str]] = {}
    for row in rows:
        servers.setdefault(row["server"], set()).add(row["tool"])
    return servers


async def test_tools_lists_the_servers_of_a_vscode_workspace_file_as_it_is(tmp_path: Path) -> None:
    workspace = tmp_path / "project"
    (workspace / ".vscode").mkdir(parents=True)
    (workspace / ".env").write_text("FROM_ENV_FILE=1\n", encoding="utf-8")
    config = workspace / ".vscode" / "mcp.json"
    config.write_text(
        textwrap.dedent(
            f"""\
            {{
              // Written as VS Code writes it: comments, trailing commas, inputs, dev settings.
              "inputs": [
                {{"type": "promptString", "id": "api-key", "description": "API key", "password": true}},
              ],
              "servers": {{
                "local": {{
                  "type": "stdio",
                  "command": {json.dumps(sys.executable)},
                  "args": {json.dumps(fault_server_argv("--tools", "search"))},
                  "cwd": {json.dumps(str(REPO_ROOT))},
                  "env": {{"API_KEY": "${{input:api-key}}"}},
                  "envFile": "${{workspaceFolder}}/.env",
                  "dev": {{"watch": "src/**/*.py", "debug": {{"type": "debugpy"}}}},
                }},
              }},
            }}
            """
        ),
        encoding="utf-8",
    )

    status, out, err = await _orchestrator("tools", "--json", "-c", str(config), env={"INPUT_API_KEY": CANARY})

    assert status == 0, err
    assert {"echo", "search", "env"} <= _tools(out)["local"]
    for variable in ("API_KEY", "FROM_ENV_FILE"):
        status, out, err = await _orchestrator(
            "call", "local__env", "-c", str(config), "--arg", f"name={variable}", env={"INPUT_API_KEY": CANARY}
        )
        assert status == 0, err
        assert '"set": true' in out, (variable, out)
    assert CANARY not in out + err


async def test_tools_without_the_input_set_says_which_variable_to_set(tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    inputs = [{"type": "promptString", "id": "api-key", "description": "API key", "password": True}]
    entry = {**fault_entry(), "env": {"API_KEY": "${input:api-key}"}}
    config.write_text(json.dumps({"inputs": inputs, "servers": {"local": entry}}, indent=2), encoding="utf-8")

    status, _out, err = await _orchestrator("tools", "-c", str(config))

    assert status == 2
    assert "VS Code input 'api-key' ('API key')" in err
    assert "set INPUT_API_KEY" in err


async def test_tools_lists_a_windsurf_file_with_server_url_and_without_its_disabled_tools(tmp_path: Path) -> None:
    async with http_fault_server("--name", "remote", "--tools", "lookup") as (url, _process):
        config = tmp_path / "mcp_config.json"
        servers = {
            "local": {**fault_entry("--tools", "search,drop_table"), "disabledTools": ["drop_table"]},
            "remote": {"serverUrl": url, "headers": {"Authorization": "Bearer ${env:REMOTE_TOKEN}"}},
            "off": {**fault_entry(), "disabled": True},
        }
        config.write_text(json.dumps({"mcpServers": servers}, indent=2), encoding="utf-8")

        status, out, err = await _orchestrator("tools", "--json", "-c", str(config), env={"REMOTE_TOKEN": "t"})

    assert status == 0, err
    tools = _tools(out)
    assert set(tools) == {"local", "remote"}
    assert "search" in tools["local"]
    assert "drop_table" not in tools["local"]
    assert "lookup" in tools["remote"]


async def test_doctor_on_a_claude_desktop_file_reports_what_it_read_and_ignored(tmp_path: Path) -> None:
    config = tmp_path / "claude_desktop_config.json"
    document = {
        "globalShortcut": "Alt+Ctrl+Space",
        "mcpServers": {"f": {**fault_entry(), "autoApprove": ["echo"]}},
        "preferences": {"quickEntryShortcut": CANARY},
    }
    config.write_text(json.dumps(document, indent=2), encoding="utf-8")

    status, out, err = await _orchestrator("doctor", "--json", "--timeout", "30", "-c", str(config))

    assert status == 0, out + err
    report = json.loads(out)
    assert report["config"]["kind"] == "claude-desktop"
    assert report["config"]["ignored_keys"] == ["globalShortcut", "preferences"]
    assert report["config"]["ignored_entry_keys"] == [
        "mcpServers.f.autoApprove (Cline's and Roo Code's tool approvals)"
    ]
    assert [(s["name"], s["ok"]) for s in report["servers"]] == [("f", True)]
    assert CANARY not in out + err

    status, out, err = await _orchestrator("doctor", "--timeout", "30", "-c", str(config))

    assert status == 0, out + err
    assert "read as a Claude Desktop file: its server entries are used, the rest is ignored" in out
    assert "ignored keys of a Claude Desktop file: globalShortcut, preferences" in out
    assert CANARY not in out + err
