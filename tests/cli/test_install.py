"""``orchestrator install CLIENT``: one entry written into a client's config, everything else kept."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from orchestrator.cli.install._client_files import CLIENTS, ClientName, client_config_path
from tests.cli.helpers import orchestrator, read_json, write_json
from tests.e2e.harness import fault_entry, write_config

pytestmark = pytest.mark.usefixtures("home")


def _config(work: Path) -> Path:
    return write_config(work, {"f": fault_entry()})


def _backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.*.bak"))


def test_client_config_paths_follow_each_os_convention() -> None:
    env = {"HOME": "/h", "APPDATA": "/h/AppData/Roaming", "USERPROFILE": "/h"}
    assert client_config_path("claude-desktop", env, "darwin") == Path(
        "/h/Library/Application Support/Claude/claude_desktop_config.json"
    )
    assert client_config_path("claude-desktop", env, "win32") == Path(
        "/h/AppData/Roaming/Claude/claude_desktop_config.json"
    )
    assert client_config_path("claude-desktop", env, "linux") == Path("/h/.config/Claude/claude_desktop_config.json")
    xdg = {**env, "XDG_CONFIG_HOME": "/x"}
    assert client_config_path("claude-desktop", xdg, "linux") == Path("/x/Claude/claude_desktop_config.json")
    for platform in ("darwin", "win32", "linux"):
        assert client_config_path("cursor", env, platform) == Path("/h/.cursor/mcp.json")
        assert client_config_path("claude-code", env, platform) == Path("/h/.claude.json")
    assert client_config_path("claude-code", {**env, "CLAUDE_CONFIG_DIR": "/c"}, "linux") == Path("/c/.claude.json")


def test_the_home_folder_is_read_from_the_environment_at_call_time(home: Path) -> None:
    assert client_config_path("cursor") == home / ".cursor" / "mcp.json"


@pytest.mark.parametrize("client", CLIENTS)
def test_install_creates_the_client_file_with_one_absolute_stdio_entry(
    client: ClientName, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(Path.cwd())
    assert orchestrator("install", client, "-c", "orchestrator.yaml") == 0

    path = client_config_path(client)
    entry = read_json(path)["mcpServers"]["mcp-orchestrator"]
    assert Path(entry["command"]).is_absolute()
    assert entry["command"] == os.path.abspath(sys.executable)
    assert entry["args"] == ["-m", "orchestrator", "serve", "--config", str(config.resolve())]
    assert (entry.get("type") == "stdio") == (client == "claude-code")
    assert _backups(path) == [], "nothing to back up when the file did not exist"
    assert "created" in capsys.readouterr().out


@pytest.mark.parametrize("client", CLIENTS)
def test_install_keeps_other_entries_their_order_and_the_files_indentation(client: ClientName) -> None:
    _config(Path.cwd())
    path = client_config_path(client)
    zeta = {"command": "npx", "args": ["-y", "zeta"], "env": {"TOKEN": "t0ps3cret"}}
    original = {
        "numStartups": 3,
        "mcpServers": {"zeta": zeta, "alpha": {"url": "https://a.example/mcp"}},
        "theme": "dark",
    }
    write_json(path, original, indent=4)
    before = path.read_text(encoding="utf-8")

    assert orchestrator("install", client) == 0

    after = read_json(path)
    assert list(after) == ["numStartups", "mcpServers", "theme"]
    assert list(after["mcpServers"]) == ["zeta", "alpha", "mcp-orchestrator"]
    assert after["mcpServers"]["zeta"] == zeta
    assert after["theme"] == "dark"
    assert path.read_text(encoding="utf-8").startswith('{\n    "numStartups": 3,\n    "mcpServers": {\n        "zeta"')
    [backup] = _backups(path)
    assert backup.read_text(encoding="utf-8") == before


@pytest.mark.parametrize("client", CLIENTS)
def test_a_second_install_changes_nothing_and_says_so(client: ClientName, capsys: pytest.CaptureFixture[str]) -> None:
    _config(Path.cwd())
    path = write_json(client_config_path(client), {"mcpServers": {"other": {"command": "x"}}})
    assert orchestrator("install", client) == 0
    written = path.read_bytes()
    capsys.readouterr()

    assert orchestrator("install", client) == 0

    assert path.read_bytes() == written
    assert len(_backups(path)) == 1, "no backup when nothing changes"
    assert "nothing to do" in capsys.readouterr().out


@pytest.mark.parametrize("client", CLIENTS)
def test_dry_run_prints_the_result_and_writes_nothing(client: ClientName, capsys: pytest.CaptureFixture[str]) -> None:
    _config(Path.cwd())
    path = client_config_path(client)
    assert orchestrator("install", client, "--dry-run") == 0
    assert not path.exists()
    printed = json.loads(capsys.readouterr().out)
    assert printed["mcpServers"]["mcp-orchestrator"]["args"][:3] == ["-m", "orchestrator", "serve"]

    write_json(path, {"mcpServers": {"gh": {"command": "npx", "env": {"GITHUB_TOKEN": "ghp_s3cret"}}}})
    before = path.read_bytes()
    assert orchestrator("install", client, "--dry-run") == 0
    captured = capsys.readouterr()
    assert path.read_bytes() == before
    assert _backups(path) == []
    assert "ghp_s3cret" not in captured.out + captured.err
    assert json.loads(captured.out)["mcpServers"]["gh"]["env"] == {"GITHUB_TOKEN": "***"}


def test_install_updates_a_stale_entry_and_keeps_keys_the_user_added() -> None:
    _config(Path.cwd())
    path = write_json(
        client_config_path("cursor"),
        {"mcpServers": {"mcp-orchestrator": {"command": "/old/orchestrator", "args": ["serve"], "env": {"A": "1"}}}},
    )
    assert orchestrator("install", "cursor") == 0
    entry = read_json(path)["mcpServers"]["mcp-orchestrator"]
    assert entry["command"] == os.path.abspath(sys.executable)
    assert entry["env"] == {"A": "1"}


def test_name_and_config_path_choose_the_entry_and_the_file(tmp_path: Path) -> None:
    _config(Path.cwd())
    target = tmp_path / "elsewhere" / "mcp.json"
    assert orchestrator("install", "cursor", "--name", "hub", "--config-path", str(target)) == 0
    assert list(read_json(target)["mcpServers"]) == ["hub"]
    assert not client_config_path("cursor").exists()


def test_a_compact_one_line_file_stays_one_line() -> None:
    _config(Path.cwd())
    path = client_config_path("claude-code")
    path.write_text('{"a":1,"mcpServers":{}}', encoding="utf-8")
    assert orchestrator("install", "claude-code") == 0
    text = path.read_text(encoding="utf-8")
    assert "\n" not in text
    assert text.startswith('{"a":1,"mcpServers":{"mcp-orchestrator":{"type":"stdio",')


def test_a_symlinked_client_file_is_written_through_the_link(tmp_path: Path) -> None:
    _config(Path.cwd())
    real = write_json(tmp_path / "dotfiles" / "mcp.json", {"mcpServers": {}})
    link = client_config_path("cursor")
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    assert orchestrator("install", "cursor") == 0
    assert link.is_symlink()
    assert "mcp-orchestrator" in read_json(real)["mcpServers"]


def test_install_without_a_config_explains_how_to_start(capsys: pytest.CaptureFixture[str]) -> None:
    assert orchestrator("install", "claude-desktop") == 2
    err = capsys.readouterr().err
    assert "no configuration file found" in err
    assert "install --from claude-desktop" in err
    assert not client_config_path("claude-desktop").exists()


def test_an_invalid_config_is_refused_before_the_client_file_is_touched(capsys: pytest.CaptureFixture[str]) -> None:
    write_config(Path.cwd(), {"f": {"command": "x", "colour": "red"}})
    assert orchestrator("install", "cursor") == 2
    assert "colour" in capsys.readouterr().err
    assert not client_config_path("cursor").exists()


def test_a_config_needing_an_unset_variable_installs_with_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    write_config(Path.cwd(), {"f": fault_entry(env={"TOKEN": "${DOCS_TOKEN}"})})
    assert orchestrator("install", "cursor") == 0
    assert "DOCS_TOKEN is not set" in capsys.readouterr().err


def test_a_client_file_that_is_not_json_is_left_alone(capsys: pytest.CaptureFixture[str]) -> None:
    _config(Path.cwd())
    path = client_config_path("cursor")
    path.parent.mkdir(parents=True)
    path.write_text('{"mcpServers": {,}}', encoding="utf-8")
    assert orchestrator("install", "cursor") == 2
    assert "invalid JSON" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == '{"mcpServers": {,}}'
    assert _backups(path) == []


def test_the_clients_own_file_is_refused_as_the_orchestrator_config(capsys: pytest.CaptureFixture[str]) -> None:
    path = write_json(client_config_path("claude-desktop"), {"mcpServers": {"f": fault_entry()}})
    before = path.read_bytes()
    assert orchestrator("install", "claude-desktop", "-c", str(path)) == 2
    assert "use --from" in capsys.readouterr().err
    assert path.read_bytes() == before
