"""``orchestrator install --from CLIENT``: a client's servers moved into orchestrator.yaml in one command."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from orchestrator.cli.install._client_files import client_config_path
from orchestrator.config import load_config
from tests.cli.helpers import orchestrator, read_json, write_json
from tests.e2e.harness import fault_entry

pytestmark = pytest.mark.usefixtures("home")

SECRET = "ghp_d0nt-print-m3"


def _desktop_config() -> Path:
    return write_json(
        client_config_path("claude-desktop"),
        {
            "globalShortcut": "Alt+Space",
            "mcpServers": {
                "alpha": fault_entry("--name", "alpha"),
                "github": fault_entry("--name", "github", env={"GITHUB_TOKEN": SECRET}),
            },
            "preferences": {"menuBarEnabled": True},
        },
    )


def _yaml(path: Path) -> dict[str, Any]:
    return cast("dict[str, Any]", yaml.safe_load(path.read_text(encoding="utf-8")))


def test_install_from_claude_desktop_moves_every_server_into_orchestrator_yaml(
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = _desktop_config()
    original = client.read_text(encoding="utf-8")

    assert orchestrator("install", "--from", "claude-desktop") == 0

    target = Path.cwd() / "orchestrator.yaml"
    servers = _yaml(target)["servers"]
    assert list(servers) == ["alpha", "github"]
    assert servers["github"]["env"] == {"GITHUB_TOKEN": SECRET}, "secrets are copied as they are"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600, "a new file holding secrets is private"
    assert set(load_config(target).servers) == {"alpha", "github"}

    after = read_json(client)
    assert list(after) == ["globalShortcut", "mcpServers", "preferences"]
    assert list(after["mcpServers"]) == ["mcp-orchestrator"]
    assert after["mcpServers"]["mcp-orchestrator"]["args"][-1] == str(target)
    [backup] = client.parent.glob(f"{client.name}.*.bak")
    assert backup.read_text(encoding="utf-8") == original

    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    assert "github env GITHUB_TOKEN" in captured.err, "the user is told which secrets the file now holds"
    assert "${VAR}" in captured.err


def test_migrating_twice_changes_nothing_the_second_time(capsys: pytest.CaptureFixture[str]) -> None:
    client = _desktop_config()
    assert orchestrator("install", "--from", "claude-desktop") == 0
    target = Path.cwd() / "orchestrator.yaml"
    snapshot = (client.read_bytes(), target.read_bytes())
    capsys.readouterr()

    assert orchestrator("install", "--from", "claude-desktop") == 0

    assert (client.read_bytes(), target.read_bytes()) == snapshot
    assert "no servers to import" in capsys.readouterr().out


def test_migration_merges_into_an_existing_yaml_and_keeps_its_comments(tmp_path: Path) -> None:
    _desktop_config()
    target = tmp_path / "conf" / "hub.yaml"
    target.parent.mkdir()
    mine = "# my servers\nservers:\n  # the local one\n  mine:\n    command: mine-server\n"
    mine += "\n# composites\nworkflows: []\n"
    target.write_text(mine, encoding="utf-8")

    assert orchestrator("install", "--from", "claude-desktop", "-c", str(target)) == 0

    text = target.read_text(encoding="utf-8")
    assert text.startswith("# my servers\nservers:\n  # the local one\n  mine:\n    command: mine-server\n  alpha:\n")
    assert text.endswith("\n# composites\nworkflows: []\n")
    assert list(_yaml(target)["servers"]) == ["mine", "alpha", "github"]
    [backup] = target.parent.glob("hub.yaml.*.bak")
    assert backup.read_text(encoding="utf-8") == mine


def test_migration_refuses_a_conflicting_server_unless_forced(capsys: pytest.CaptureFixture[str]) -> None:
    client = _desktop_config()
    target = Path.cwd() / "orchestrator.yaml"
    target.write_text("servers:\n  alpha:\n    command: something-else\n", encoding="utf-8")
    before = (client.read_bytes(), target.read_bytes())

    assert orchestrator("install", "--from", "claude-desktop") == 2
    assert "servers.alpha: already defined differently" in capsys.readouterr().err
    assert (client.read_bytes(), target.read_bytes()) == before

    assert orchestrator("install", "--from", "claude-desktop", "--force") == 0
    assert _yaml(target)["servers"]["alpha"]["args"][-2:] == ["--name", "alpha"]


def test_dry_run_migration_writes_nothing_and_shows_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    client = _desktop_config()
    before = client.read_bytes()
    assert orchestrator("install", "--from", "claude-desktop", "--dry-run") == 0
    captured = capsys.readouterr()
    assert client.read_bytes() == before
    assert not (Path.cwd() / "orchestrator.yaml").exists()
    assert SECRET not in captured.out + captured.err
    assert "GITHUB_TOKEN: '***'" in captured.out


def test_migration_is_planned_in_full_before_anything_is_written(capsys: pytest.CaptureFixture[str]) -> None:
    client = _desktop_config()
    before = client.read_bytes()
    target = Path.cwd() / "configs" / "orchestrator.yaml"

    assert orchestrator("install", "--from", "claude-desktop", "-c", str(target), "--dry-run") == 0
    assert "dry run: would add to" in capsys.readouterr().err
    assert not target.parent.exists(), "a dry run writes nothing, not even a scratch copy to check"
    assert client.read_bytes() == before

    assert orchestrator("install", "--from", "claude-desktop", "-c", str(target)) == 0
    assert set(load_config(target).servers) == {"alpha", "github"}
    assert list(read_json(client)["mcpServers"]) == ["mcp-orchestrator"]


def test_references_keep_the_meaning_they_had_in_each_client(home: Path) -> None:
    write_json(
        client_config_path("claude-desktop"),
        {"mcpServers": {"d": {"command": "x", "env": {"LITERAL": "${NOT_EXPANDED}"}}}},
    )
    assert orchestrator("install", "--from", "claude-desktop", "-c", "desktop.yaml") == 0
    assert _yaml(Path("desktop.yaml"))["servers"]["d"]["env"] == {"LITERAL": "$${NOT_EXPANDED}"}

    write_json(
        client_config_path("cursor"),
        {"mcpServers": {"c": {"command": "x", "args": ["${userHome}/data"], "env": {"T": "${env:API_TOKEN}"}}}},
    )
    assert orchestrator("install", "--from", "cursor", "-c", "cursor.yaml") == 0
    server = _yaml(Path("cursor.yaml"))["servers"]["c"]
    assert server["args"] == [f"{home}/data"]
    assert server["env"] == {"T": "${API_TOKEN}"}


def test_client_entry_names_that_are_not_server_keys_are_adapted(capsys: pytest.CaptureFixture[str]) -> None:
    write_json(client_config_path("claude-desktop"), {"mcpServers": {"My Notes!": {"command": "notes"}}})
    assert orchestrator("install", "--from", "claude-desktop") == 0
    assert list(_yaml(Path("orchestrator.yaml"))["servers"]) == ["My-Notes"]
    assert "'My Notes!' -> 'My-Notes'" in capsys.readouterr().err


def test_an_entry_the_orchestrator_cannot_load_stops_the_migration(capsys: pytest.CaptureFixture[str]) -> None:
    client = write_json(
        client_config_path("cursor"), {"mcpServers": {"odd": {"command": "x", "envFile": "/secret/.env"}}}
    )
    before = client.read_bytes()
    assert orchestrator("install", "--from", "cursor") == 2
    assert "odd.envFile" in capsys.readouterr().err
    assert client.read_bytes() == before
    assert not Path("orchestrator.yaml").exists()
