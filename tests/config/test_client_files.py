"""MCP clients' own config files, loaded as they are: which kind a file is, its servers, what is ignored.

The files under ``data/`` are shaped like the ones the clients write, extra top-level keys and
all: Claude Desktop's ``claude_desktop_config.json``, a Cursor project's ``.cursor/mcp.json`` (with
its ``.env``), Windsurf's ``mcp_config.json``, a VS Code workspace's ``.vscode/mcp.json`` (JSON with
comments, ``inputs``), Claude Code's project ``.mcp.json`` and user ``~/.claude.json``.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from orchestrator.config import ConfigOrigin, HttpServerSpec, OrchestratorConfig, StdioServerSpec, load_config
from orchestrator.errors import ConfigError

DATA = Path(__file__).parent / "data"
CLAUDE_DESKTOP = DATA / "claude-desktop" / "claude_desktop_config.json"
CURSOR = DATA / "cursor" / ".cursor" / "mcp.json"
WINDSURF = DATA / "windsurf" / "mcp_config.json"
VSCODE = DATA / "vscode" / ".vscode" / "mcp.json"
CLAUDE_CODE = DATA / "claude-code" / ".mcp.json"
CLAUDE_CODE_USER = DATA / "claude-code-user" / ".claude.json"
HOME = "/home/someone"
CANARY = "CANARY-SECRET"


def load(path: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> OrchestratorConfig:
    return load_config(path, env={"HOME": HOME, **(env or {})}, cwd=cwd or Path("/nowhere"))


def load_error(path: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(path, env, cwd)
    return caught.value


def located(problem: str) -> str:
    """``FILE:LINE: KEY.PATH``: a problem line without its message."""
    return ": ".join(problem.split(": ")[:2])


def origin_of(config: OrchestratorConfig) -> ConfigOrigin:
    assert config.origin is not None
    return config.origin


def stdio(config: OrchestratorConfig, key: str) -> StdioServerSpec:
    spec = config.servers[key]
    assert isinstance(spec, StdioServerSpec)
    return spec


def http(config: OrchestratorConfig, key: str) -> HttpServerSpec:
    spec = config.servers[key]
    assert isinstance(spec, HttpServerSpec)
    return spec


def secrets(spec: StdioServerSpec) -> dict[str, str]:
    return {name: value.get_secret_value() for name, value in spec.env.items()}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


# -- each client's file, as it is -----------------------------------------------------------


def test_claude_desktop_file_loads_its_servers_and_reports_its_other_keys_as_ignored() -> None:
    config = load(CLAUDE_DESKTOP)

    origin = origin_of(config)
    assert origin.kind == "claude-desktop"
    assert origin.title == "a Claude Desktop file"
    assert origin.ignored_keys == ("globalShortcut", "preferences", "isUsingBuiltInNodeForMcp")
    assert origin.ignored_entry_keys == ("mcpServers.fetch.autoApprove (Cline's and Roo Code's tool approvals)",)
    assert list(config.servers) == ["filesystem", "github", "fetch", "price-currency"]
    assert secrets(stdio(config, "github")) == {"GITHUB_PERSONAL_ACCESS_TOKEN": "example-github-token"}
    assert "fetch" not in config.enabled_servers()
    assert any("'price ${currency}' is served as 'price-currency'" in note for note in origin.notes)


def test_claude_desktop_expands_no_variables_so_dollar_braces_stay_literal() -> None:
    config = load(CLAUDE_DESKTOP, env={"amount": "42"})

    assert stdio(config, "price-currency").args == ("--format", "${amount} EUR")


def test_cursor_project_file_resolves_its_variables_and_loads_its_env_file() -> None:
    env = {"DATABASE_URL": "postgresql://db/app", "CONTEXT7_API_KEY": "ctx7-key"}

    config = load(CURSOR, env=env)

    origin = origin_of(config)
    assert origin.kind == "cursor"
    assert origin.ignored_keys == ()
    assert origin.ignored_entry_keys == ("mcpServers.linear.auth (Cursor's OAuth client settings, not used here)",)
    project = CURSOR.resolve().parent.parent
    postgres = stdio(config, "postgres")
    assert postgres.args[-1] == "postgresql://db/app"
    assert postgres.env_file == project / ".env"
    assert secrets(postgres) == {
        "PGUSER": "app",
        "PGPASSWORD": "example password with # inside",
        "PGAPPNAME": "cursor ${literal}",
    }
    notes = stdio(config, "notes")
    assert notes.args == (f"{project}/tools/notes-server.js", "--root", f"{HOME}/notes")
    assert secrets(notes) == {"NOTES_PROJECT": "cursor"}
    assert http(config, "context7").headers["CONTEXT7_API_KEY"].get_secret_value() == "ctx7-key"
    assert http(config, "linear").url == "https://mcp.linear.app/sse"


def test_cursor_env_reference_that_is_not_set_is_an_error_naming_key_line_and_variable() -> None:
    error = load_error(CURSOR, env={"CONTEXT7_API_KEY": "x"})

    assert error.problems == [
        f"{CURSOR}:5: mcpServers.postgres.args[2]: environment variable DATABASE_URL is not set"
        " (write ${DATABASE_URL:-default} for a default)"
    ]


def test_windsurf_file_maps_server_url_and_disabled_tools() -> None:
    config = load(WINDSURF, env={"GITHUB_TOKEN": "gh", "FIGMA_TOKEN": "fig"})

    assert origin_of(config).kind == "windsurf"
    figma = http(config, "figma")
    assert figma.url == "https://mcp.figma.com/mcp"
    assert figma.headers["Authorization"].get_secret_value() == "Bearer fig"
    github = stdio(config, "github")
    assert github.disabled_tools == ("delete_repository", "push_files")
    assert github.tools.exclude == ("delete_repository", "push_files")
    assert list(config.enabled_servers()) == ["github", "figma"]


def test_vscode_file_with_comments_inputs_and_dev_settings_loads() -> None:
    config = load(VSCODE, env={"INPUT_PERPLEXITY_KEY": "pplx-key"})

    origin = origin_of(config)
    assert origin.kind == "vscode"
    assert origin.ignored_keys == ()
    assert origin.ignored_entry_keys == (
        "servers.local.dev (VS Code's development mode)",
        "servers.io.github.github/github-mcp-server.gallery (VS Code's gallery record)",
        "servers.io.github.github/github-mcp-server.version (VS Code's gallery record)",
    )
    workspace = VSCODE.resolve().parent.parent
    assert secrets(stdio(config, "perplexity")) == {"PERPLEXITY_API_KEY": "pplx-key"}
    local = stdio(config, "local")
    assert local.args == ("-m", "my_server", "--log-level", "info")  # the input's default
    assert local.cwd == workspace
    assert secrets(local) == {"MY_SERVER_CACHE": "/tmp/my-server-cache"}
    assert http(config, "io.github.github-github-mcp-server").url == "https://api.githubcopilot.com/mcp/"


def test_vscode_input_without_a_value_is_refused_naming_the_input_its_description_and_the_variable() -> None:
    error = load_error(VSCODE)

    assert error.problems == [
        f"{VSCODE}:24: servers.perplexity.env.PERPLEXITY_API_KEY: VS Code input 'perplexity-key'"
        " ('Perplexity API Key') is prompted for by VS Code; set INPUT_PERPLEXITY_KEY to give it here"
    ]


def test_claude_code_project_file_expands_variables_with_defaults() -> None:
    config = load(CLAUDE_CODE, env={"API_KEY": "k", "AIRTABLE_API_KEY": "a"})

    assert origin_of(config).kind == "claude-code"
    assert http(config, "api-server").url == "https://api.example.com/mcp"
    assert http(config, "api-server").headers["Authorization"].get_secret_value() == "Bearer k"
    assert http(config, "legacy-events").type == "sse"
    assert secrets(stdio(config, "airtable")) == {"AIRTABLE_API_KEY": "a"}


def test_claude_code_user_file_reads_user_scope_and_the_nearest_project_section() -> None:
    config = load(CLAUDE_CODE_USER, env={"GITHUB_PAT": "pat"}, cwd=Path("/home/dev/webapp/src/components"))

    origin = origin_of(config)
    assert origin.kind == "claude-code-user"
    # The project's github (local scope) replaces the user-scope one; /home/dev/other is not read.
    assert list(config.servers) == ["time", "github", "postgres"]
    assert http(config, "github").url == "https://api.githubcopilot.com/mcp/"
    assert "mcpServers" not in origin.ignored_keys
    assert "projects" not in origin.ignored_keys
    assert {"numStartups", "oauthAccount", "cachedChangelog", "userID"} <= set(origin.ignored_keys)
    assert "project section '/home/dev/webapp' is read (Claude Code's local scope, over the user scope)" in (
        origin.notes
    )
    assert "server 'github' of the project section overrides the user-scope one" in origin.notes


def test_claude_code_user_file_outside_every_project_reads_the_user_scope_only() -> None:
    config = load(CLAUDE_CODE_USER, env={"GITHUB_PAT": "pat"}, cwd=Path("/srv/elsewhere"))

    assert list(config.servers) == ["time", "github"]
    assert isinstance(config.servers["github"], StdioServerSpec)
    assert any(note.startswith("no project section matches /srv/elsewhere") for note in origin_of(config).notes)


def test_a_problem_in_a_project_section_names_its_place_in_the_file(tmp_path: Path) -> None:
    document = json.loads(CLAUDE_CODE_USER.read_text(encoding="utf-8"))
    document["projects"]["/home/dev/webapp"]["mcpServers"]["postgres"]["comand"] = "npx"
    path = tmp_path / ".claude.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")

    error = load_error(path, env={"GITHUB_PAT": "pat"}, cwd=Path("/home/dev/webapp"))

    (only,) = error.problems
    file, line, key = located(only).replace(": ", ":").split(":")
    assert (file, line.isdigit(), key) == (str(path), True, "projects./home/dev/webapp.mcpServers.postgres.comand")
    assert only.endswith("unknown key (did you mean 'command'?)")


# -- the rule between orchestrator config and client file -----------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (CLAUDE_DESKTOP, "claude-desktop"),
        (CURSOR, "cursor"),
        (WINDSURF, "windsurf"),
        (VSCODE, "vscode"),
        (CLAUDE_CODE, "claude-code"),
        (CLAUDE_CODE_USER, "claude-code-user"),
    ],
)
def test_each_real_shaped_client_file_is_read_as_its_client(path: Path, kind: str) -> None:
    names = "DATABASE_URL CONTEXT7_API_KEY GITHUB_TOKEN FIGMA_TOKEN INPUT_PERPLEXITY_KEY API_KEY AIRTABLE_API_KEY"
    env = dict.fromkeys([*names.split(), "GITHUB_PAT"], "x")

    assert origin_of(load(path, env=env)).kind == kind


@pytest.mark.parametrize(
    ("name", "source"),
    [("desktop-copy.json", CLAUDE_DESKTOP), ("windsurf-copy.json", WINDSURF), ("claude-copy.json", CLAUDE_CODE_USER)],
)
def test_a_copied_client_file_is_recognised_by_its_content(tmp_path: Path, name: str, source: Path) -> None:
    copy = Path(shutil.copy(source, tmp_path / name))

    assert origin_of(load(copy, env={"GITHUB_TOKEN": "x", "FIGMA_TOKEN": "y", "GITHUB_PAT": "z"})).kind != (
        "orchestrator"
    )


def test_yaml_is_always_an_orchestrator_config_so_an_unknown_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "orchestrator.yaml", "mcpServers: {a: {command: x}}\nglobalShortcut: Alt+Space\n")

    assert load_error(path).problems == [f"{path}:2: globalShortcut: unknown key"]


def test_a_json_file_with_an_orchestrator_section_is_strict(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    document = {"mcpServers": {"a": {"command": "x"}}, "naming": {"separator": "__"}, "preferences": {}}
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")

    assert load_error(path).problems == [f"{path}:10: preferences: unknown key"]


@pytest.mark.parametrize("typo", ["workflow", "Workflows", "tracng", "namings"])
def test_a_typo_of_an_orchestrator_section_in_json_is_never_silently_ignored(tmp_path: Path, typo: str) -> None:
    path = tmp_path / "orchestrator.json"
    path.write_text(json.dumps({"mcpServers": {"a": {"command": "x"}}, typo: []}, indent=2), encoding="utf-8")

    (only,) = load_error(path).problems
    assert only.startswith(f"{path}:7: {typo}: unknown key (did you mean '")


def test_a_json_file_with_servers_only_is_an_orchestrator_config(tmp_path: Path) -> None:
    path = tmp_path / "orchestrator.json"
    path.write_text(json.dumps({"servers": {"a": {"command": "x"}}, "extra": 1}), encoding="utf-8")

    assert load_error(path).problems == [f"{path}:1: extra: unknown key"]


def test_servers_with_inputs_is_a_vscode_file_wherever_it_lives(tmp_path: Path) -> None:
    path = tmp_path / "anything.json"
    path.write_text(json.dumps({"inputs": [], "servers": {"a": {"command": "x"}}, "other": 1}), encoding="utf-8")

    origin = origin_of(load(path))
    assert (origin.kind, origin.ignored_keys) == ("vscode", ("other",))


def test_a_json_file_without_a_server_map_is_an_orchestrator_config(tmp_path: Path) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(json.dumps({"mcpServer": {"a": {"command": "x"}}, "globalShortcut": ""}), encoding="utf-8")

    assert load_error(path).problems == [
        f"{path}:1: mcpServer: unknown key (did you mean 'mcpServers'?)",
        f"{path}:1: globalShortcut: unknown key",
    ]


def test_an_orchestrator_config_says_so_and_ignores_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "orchestrator.yaml", "servers:\n  a: {command: x, autoApprove: []}\n")

    origin = origin_of(load(path))
    assert (origin.kind, origin.ignored_keys, origin.notes) == ("orchestrator", (), ())
    assert origin.ignored_entry_keys == ("servers.a.autoApprove (Cline's and Roo Code's tool approvals)",)


# -- entries stay strict --------------------------------------------------------------------


def test_an_unknown_key_in_a_client_entry_is_an_error_with_a_suggestion_and_line(tmp_path: Path) -> None:
    document = json.loads(CLAUDE_DESKTOP.read_text(encoding="utf-8"))
    document["mcpServers"]["github"]["Env"] = {}
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")

    assert load_error(path).problems == [f"{path}:22: mcpServers.github.Env: unknown key (did you mean 'env'?)"]


def test_vscode_sandbox_enabled_is_refused_rather_than_silently_dropped(tmp_path: Path) -> None:
    path = tmp_path / ".vscode" / "mcp.json"
    path.parent.mkdir()
    entry: dict[str, object] = {"type": "stdio", "command": "x", "sandboxEnabled": True, "sandbox": {"network": {}}}
    path.write_text(json.dumps({"servers": {"s": entry}}, indent=2), encoding="utf-8")

    (only,) = load_error(path).problems
    assert only.startswith(f"{path}:6: servers.s.sandboxEnabled: VS Code's sandbox is not available here")


def test_editor_only_variables_are_errors_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / ".vscode" / "mcp.json"
    path.parent.mkdir()
    entry = {"command": "x", "args": ["${command:pickFile}", "${input:missing}", "${config:editor.fontSize}"]}
    path.write_text(json.dumps({"inputs": [], "servers": {"s": entry}}, indent=2), encoding="utf-8")

    problems = load_error(path).problems

    assert [located(p) for p in problems] == [
        f"{path}:7: servers.s.args[0]",
        f"{path}:8: servers.s.args[1]",
        f"{path}:9: servers.s.args[2]",
    ]
    assert "is resolved by the editor itself" in problems[0]
    assert "no input with id 'missing'" in problems[1]


def test_an_input_reference_outside_a_vscode_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / ".cursor" / "mcp.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"mcpServers": {"s": {"command": "x", "args": ["${input:key}"]}}}), encoding="utf-8")

    (only,) = load_error(path).problems
    assert "needs an 'inputs' list" in only


# -- envFile --------------------------------------------------------------------------------


def test_env_file_is_relative_to_the_config_file_and_env_wins_over_it(tmp_path: Path) -> None:
    write(tmp_path / "conf" / "secrets.env", "TOKEN=from-file\nONLY_FILE=yes\n")
    path = write(
        tmp_path / "conf" / "orchestrator.yaml",
        "servers:\n  s: {command: x, envFile: secrets.env, env: {TOKEN: from-config}}\n",
    )

    spec = stdio(load(path), "s")

    assert spec.env_file == (tmp_path / "conf" / "secrets.env").resolve()
    assert secrets(spec) == {"ONLY_FILE": "yes", "TOKEN": "from-config"}


def test_env_file_mistakes_name_the_key_the_file_and_the_line_but_no_value(tmp_path: Path) -> None:
    write(tmp_path / ".env", f'GOOD=1\n{CANARY} without equals\nQUOTED="{CANARY}\n')
    missing = tmp_path / "missing.env"
    path = write(
        tmp_path / "orchestrator.yaml",
        f"servers:\n  a: {{command: x, envFile: .env}}\n  b: {{command: x, envFile: {missing.name}}}\n",
    )

    error = load_error(path)

    assert error.problems == [
        f"{path}:2: servers.a.envFile: {tmp_path / '.env'}: line 2: expected NAME=value",
        f"{path}:2: servers.a.envFile: {tmp_path / '.env'}: line 3: the quoted value is never closed",
        f"{path}:3: servers.b.envFile: {missing}: cannot read the file: no such file",
    ]
    assert CANARY not in str(error)


def test_env_file_mistakes_come_with_every_other_mistake_of_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "orchestrator.yaml", "servers:\n  a: {command: x, envFile: nope.env, timeout: soon}\n")

    assert [located(p) for p in load_error(path).problems] == [
        f"{path}:2: servers.a.envFile",
        f"{path}:2: servers.a.timeout",
    ]


def test_a_secret_from_an_input_or_env_file_never_appears_in_errors(tmp_path: Path) -> None:
    write(tmp_path / ".env", f"KEY={CANARY}\n")
    path = tmp_path / ".vscode" / "mcp.json"
    path.parent.mkdir()
    entry = {"command": "x", "envFile": "${workspaceFolder}/.env", "env": {"A": "${input:k}", "B": 1.5}, "colour": 1}
    document = {"inputs": [{"id": "k", "type": "promptString", "description": "Key"}], "servers": {"s": entry}}
    path.write_text(json.dumps(document), encoding="utf-8")

    error = load_error(path, env={"INPUT_K": CANARY})

    assert CANARY not in str(error)
    assert [located(p) for p in error.problems] == [f"{path}:1: servers.s.colour"]


def test_workspace_folder_of_the_user_wide_cursor_file_is_the_working_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = home / ".cursor" / "mcp.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps({"mcpServers": {"s": {"command": "x", "args": ["${workspaceFolder}"]}}}), encoding="utf-8"
    )
    project = tmp_path / "project"

    config = load_config(path, env={"HOME": str(home)}, cwd=project)

    assert stdio(config, "s").args == (str(project),)


def test_a_stdio_only_key_on_an_http_entry_says_so_and_its_env_file_is_not_read(tmp_path: Path) -> None:
    path = write(tmp_path / "orchestrator.yaml", "servers:\n  h: {url: 'http://x/mcp', envFile: missing.env}\n")

    assert load_error(path).problems == [
        f"{path}:2: servers.h.envFile: not a key of this kind of server"
        " (stdio servers have 'command', HTTP servers 'url')"
    ]
