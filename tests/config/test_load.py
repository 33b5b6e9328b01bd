"""Loading config files: both spellings, interpolation, durations, paths, and the errors users see."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest

from orchestrator.config import (
    HttpServerSpec,
    OrchestratorConfig,
    StdioServerSpec,
    config_json_schema,
    find_config_path,
    load_config,
)
from orchestrator.errors import ConfigError, ConfigNotFoundError

CANARY = "CANARY-SECRET"

CLAUDE_DESKTOP_CONFIG = {
    "mcpServers": {
        "filesystem": {
            "command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop", "/Users/me/Downloads"],
        },
        "github": {
            "command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-github"],
            "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_example"},
        },
        "time": {"type": "stdio", "command": "uvx", "args": ["mcp-server-time", "--local-timezone=Europe/Paris"]},
        "fetch": {"command": "uvx", "args": ["mcp-server-fetch"], "disabled": True, "autoApprove": ["fetch"]},
        "linear": {"type": "sse", "url": "https://mcp.linear.app/sse"},
        "context7": {
            "type": "http",
            "url": "https://mcp.context7.com/mcp",
            "headers": {"CONTEXT7_API_KEY": "ctx7_example"},
        },
    }
}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def load_error(path: Path, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env or {})
    return caught.value


def located(problem: str) -> str:
    """``FILE:LINE: KEY.PATH``: a problem line without its message."""
    return ": ".join(problem.split(": ")[:2])


# -- accepted files -------------------------------------------------------------------------


def test_claude_desktop_mcp_servers_file_loads_verbatim(tmp_path: Path) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(json.dumps(CLAUDE_DESKTOP_CONFIG, indent=2), encoding="utf-8")

    config = load_config(path, env={})

    assert list(config.servers) == ["filesystem", "github", "time", "fetch", "linear", "context7"]
    github = config.servers["github"]
    assert isinstance(github, StdioServerSpec)
    assert github.command == "npx"
    assert github.env["GITHUB_PERSONAL_ACCESS_TOKEN"].get_secret_value() == "ghp_example"
    linear = config.servers["linear"]
    assert isinstance(linear, HttpServerSpec)
    assert linear.type == "sse"
    assert isinstance(config.servers["context7"], HttpServerSpec)
    assert "fetch" not in config.enabled_servers()


def test_orchestrator_yaml_with_every_section_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orchestrator.yaml",
        """
        servers:
          time:
            command: uvx
            args: [mcp-server-time, --local-timezone=UTC]
            env: {LOG_LEVEL: warning}
            cwd: .
            timeout: 30s
            tools: {include: ["get_*"], exclude: [], rename: {get_current_time: now}, describe: {now: "Now."}}
            prefix: clock
          docs:
            url: http://127.0.0.1:9000/mcp
            headers: {Authorization: "Bearer ${DOCS_TOKEN}"}
        workflows: [workflows/]
        naming: {separator: "__", max_length: 60}
        serve: {transport: http, host: 127.0.0.1, port: 8765, path: /mcp, auth: {tokens_env: MY_TOKENS}}
        tracing: {exporter: otlp, endpoint: "http://localhost:4318", service_name: mcp-orchestrator}
        """,
    )

    config = load_config(path, env={"DOCS_TOKEN": "t0k3n"})

    time = config.servers["time"]
    assert isinstance(time, StdioServerSpec)
    assert time.args == ("mcp-server-time", "--local-timezone=UTC")
    assert time.timeout == 30.0
    assert time.prefix == "clock"
    assert time.tools.rename == {"get_current_time": "now"}
    docs = config.servers["docs"]
    assert isinstance(docs, HttpServerSpec)
    assert docs.headers["Authorization"].get_secret_value() == "Bearer t0k3n"
    assert config.naming.max_length == 60
    assert config.serve.transport == "http"
    assert config.serve.auth.tokens_env == "MY_TOKENS"
    assert config.tracing.exporter == "otlp"


def test_mcp_servers_is_accepted_as_an_alias_of_servers_in_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yml", "mcpServers:\n  time: {command: uvx, args: [mcp-server-time]}\n")

    assert list(load_config(path, env={}).servers) == ["time"]


def test_toml_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orchestrator.toml",
        """
        workflows = ["flows"]

        [servers.time]
        command = "uvx"
        args = ["mcp-server-time"]
        timeout = "2m"

        [serve]
        transport = "http"
        """,
    )

    config = load_config(path, env={})

    assert config.servers["time"].timeout == 120.0
    assert config.serve.transport == "http"


def test_source_is_the_resolved_path_of_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "sub", "orchestrator.yaml", "servers: {}\n")

    config = load_config(tmp_path / "sub" / ".." / "sub" / "orchestrator.yaml", env={})

    assert config.source == path.resolve()


def test_relative_cwd_and_workflows_resolve_against_the_config_folder(tmp_path: Path) -> None:
    absolute = tmp_path / "elsewhere"
    path = write(
        tmp_path / "project",
        "orchestrator.yaml",
        f"""
        servers:
          here: {{command: uvx, cwd: .}}
          nested: {{command: uvx, cwd: tools/server}}
          absolute: {{command: uvx, cwd: "{absolute}"}}
          none: {{command: uvx}}
        workflows: [workflows/, extra/deploy.yaml, "{absolute}"]
        """,
    )
    folder = path.resolve().parent

    config = load_config(path, env={})

    cwds = {key: spec.cwd for key, spec in config.servers.items() if isinstance(spec, StdioServerSpec)}
    assert cwds == {"here": folder, "nested": folder / "tools/server", "absolute": absolute, "none": None}
    assert config.workflows == (folder / "workflows", folder / "extra/deploy.yaml", absolute)


def test_prefix_false_exposes_names_unprefixed(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yaml", "servers:\n  time: {command: uvx, prefix: false}\n")

    assert load_config(path, env={}).servers["time"].prefix is False


def test_prefix_true_is_an_error_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yaml", "servers:\n  time: {command: uvx, prefix: true}\n")

    error = load_error(path)

    assert len(error.problems) == 1
    assert error.problems[0].startswith(f"{path}:2: servers.time.prefix: prefix must be a non-empty string")


def test_yaml_scalars_in_env_become_text(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yaml", "servers:\n  s: {command: x, env: {PORT: 8080, DEBUG: true}}\n")

    server = load_config(path, env={}).servers["s"]

    assert isinstance(server, StdioServerSpec)
    assert {k: v.get_secret_value() for k, v in server.env.items()} == {"PORT": "8080", "DEBUG": "true"}


# -- interpolation --------------------------------------------------------------------------


def test_variables_are_interpolated_in_every_string_with_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orchestrator.yaml",
        """
        servers:
          s:
            command: "${BIN}"
            args: ["--root=${ROOT:-/srv}", "--mode=${MODE:-fast}", "${EMPTY:-fallback}", "x${EMPTY}y"]
            env: {TOKEN: "${TOKEN}"}
        serve: {host: "${HOST:-127.0.0.1}"}
        """,
    )

    config = load_config(path, env={"BIN": "uvx", "MODE": "slow", "EMPTY": "", "TOKEN": "abc", "HOST": "0.0.0.0"})

    server = config.servers["s"]
    assert isinstance(server, StdioServerSpec)
    assert server.command == "uvx"
    assert server.args == ("--root=/srv", "--mode=slow", "fallback", "xy")
    assert server.env["TOKEN"].get_secret_value() == "abc"
    assert config.serve.host == "0.0.0.0"


def test_missing_variable_is_an_error_naming_file_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orchestrator.yaml",
        """
        servers:
          docs:
            url: http://127.0.0.1:9000/mcp
            headers: {Authorization: "Bearer ${DOCS_TOKEN}"}
        """,
    )

    error = load_error(path)

    assert error.path == str(path)
    assert error.problems == [
        f"{path}:4: servers.docs.headers.Authorization: environment variable DOCS_TOKEN is not set"
        " (write ${DOCS_TOKEN:-default} for a default)"
    ]
    assert str(path) in str(error)


def test_double_dollar_escapes_a_literal_reference(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yaml", "servers:\n  s: {command: sh, args: [-c, 'echo $${HOME} $$ $X']}\n")

    server = load_config(path, env={}).servers["s"]

    assert isinstance(server, StdioServerSpec)
    assert server.args == ("-c", "echo ${HOME} $$ $X")


def test_malformed_references_are_errors_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yaml", "servers:\n  s: {command: x, args: ['${1BAD}', '${OPEN']}\n")

    error = load_error(path)

    assert [located(p) for p in error.problems] == [f"{path}:2: servers.s.args[0]", f"{path}:2: servers.s.args[1]"]
    assert "invalid reference" in error.problems[0]
    assert "unterminated" in error.problems[1]


def test_a_value_with_a_missing_variable_is_not_also_reported_as_invalid(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yaml", "servers:\n  docs: {url: '${DOCS_URL}'}\n")

    error = load_error(path)

    assert len(error.problems) == 1
    assert "DOCS_URL is not set" in error.problems[0]


# -- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("'500ms'", 0.5), ("20s", 20.0), ("2m", 120.0), ("1h", 3600.0), ("5", 5.0), ("1.5", 1.5)],
)
def test_timeouts_accept_durations(tmp_path: Path, written: str, seconds: float) -> None:
    path = write(tmp_path, "orchestrator.yaml", f"servers:\n  s: {{command: x, timeout: {written}}}\n")

    assert load_config(path, env={}).servers["s"].timeout == seconds


@pytest.mark.parametrize("written", ["5q", "fast", "0", "-1s"])
def test_bad_timeout_is_an_error_naming_the_key(tmp_path: Path, written: str) -> None:
    path = write(tmp_path, "orchestrator.yaml", f"servers:\n  s: {{url: 'http://x', timeout: '{written}'}}\n")

    error = load_error(path)

    assert len(error.problems) == 1
    assert error.problems[0].startswith(f"{path}:2: servers.s.timeout: ")


# -- problems, worded -----------------------------------------------------------------------


def test_unknown_top_level_key_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yaml", "servers: {}\nworkflow: [flows/]\n")

    assert load_error(path).problems == [f"{path}:2: workflow: unknown key (did you mean 'workflows'?)"]


def test_unknown_key_inside_a_server_names_the_key_path(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yaml", "servers:\n  time:\n    command: uvx\n    arg: [x]\n")

    assert load_error(path).problems == [f"{path}:4: servers.time.arg: unknown key (did you mean 'args'?)"]


def test_unknown_key_in_a_json_mcp_servers_file_names_the_key_path_and_line(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    entry = {"command": "uvx", "arg": ["mcp-server-time"]}
    path.write_text(json.dumps({"mcpServers": {"time": entry}}, indent=2), encoding="utf-8")

    assert load_error(path).problems == [f"{path}:5: mcpServers.time.arg: unknown key (did you mean 'args'?)"]


def test_entry_with_both_command_and_url_is_an_error_naming_the_server(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yaml", "servers:\n  mixed: {command: uvx, url: 'http://x'}\n")

    (only,) = load_error(path).problems
    assert only.startswith(f"{path}:2: servers.mixed: has both 'command' (stdio) and 'url' (http)")


def test_entry_with_neither_command_nor_url_is_an_error_naming_the_server(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yaml", "servers:\n  empty: {args: [x]}\n  nothing:\n")

    assert [located(p) for p in load_error(path).problems] == [
        f"{path}:2: servers.empty",
        f"{path}:3: servers.nothing",
    ]


def test_a_misspelt_command_is_suggested_and_the_other_mistakes_of_the_entry_come_with_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orchestrator.yaml",
        """
        servers:
          time:
            comand: uvx
            arg: [mcp-server-time]
            timeout: soon
            env: [LOG_LEVEL]
            prefix: true
        """,
    )

    assert load_error(path).problems == [
        f"{path}:3: servers.time.comand: unknown key (did you mean 'command'?)",
        f"{path}:4: servers.time.arg: unknown key (did you mean 'args'?)",
        f"{path}:5: servers.time.timeout: not a duration (use e.g. '500ms', '20s', '2m'): 'soon'",
        f"{path}:6: servers.time.env: Input should be a valid dictionary",
        f"{path}:7: servers.time.prefix: prefix must be a non-empty string, or false for unprefixed names",
    ]


def test_a_misspelt_url_is_suggested_and_the_other_mistakes_of_the_entry_come_with_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orchestrator.yaml",
        """
        servers:
          docs:
            URL: http://127.0.0.1:9000/mcp
            header: {Authorization: Bearer x}
            timeout: 0
        """,
    )

    assert load_error(path).problems == [
        f"{path}:3: servers.docs.URL: unknown key (did you mean 'url'?)",
        f"{path}:4: servers.docs.header: unknown key (did you mean 'headers'?)",
        f"{path}:5: servers.docs.timeout: Input should be greater than 0",
    ]


def test_a_misspelt_command_in_a_json_file_is_located_by_line_too(tmp_path: Path) -> None:
    path = tmp_path / "claude_desktop_config.json"
    entry = {"comand": "npx", "args": "-y", "disabled": "sometimes"}
    path.write_text(json.dumps({"mcpServers": {"github": entry}}, indent=2), encoding="utf-8")

    assert load_error(path).problems == [
        f"{path}:4: mcpServers.github.comand: unknown key (did you mean 'command'?)",
        f"{path}:5: mcpServers.github.args: Input should be a valid tuple",
        f"{path}:6: mcpServers.github.disabled: Input should be a valid boolean, unable to interpret input",
    ]


def test_an_entry_that_names_its_transport_in_no_way_says_what_it_needs(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yaml", "servers:\n  odd: {args: [x], timeout: soon}\n")

    assert load_error(path).problems == [
        f"{path}:2: servers.odd: needs 'command' (a stdio server) or 'url' (an HTTP server)",
        f"{path}:2: servers.odd.timeout: not a duration (use e.g. '500ms', '20s', '2m'): 'soon'",
    ]


def test_bad_server_key_is_an_error_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yaml", "servers:\n  'my server': {command: uvx}\n  -dash: {command: uvx}\n")

    problems = load_error(path).problems

    assert [located(p) for p in problems] == [f"{path}:2: servers.my server", f"{path}:3: servers.-dash"]
    assert all("server keys are" in p for p in problems)


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orchestrator.yaml",
        """
        servers:
          time: {command: uvx, timeout: soon}
          docs: {url: 'ftp://docs', headers: {Authorization: "${TOKEN}"}}
          both: {command: x, url: 'http://x'}
        naming: {max_length: 3}
        serve: {transport: carrier-pigeon}
        tracing: {exporter: otlp, colour: blue}
        """,
    )

    error = load_error(path)

    assert sorted(p.split(": ")[1] for p in error.problems) == [
        "naming.max_length",
        "serve.transport",
        "servers.both",
        "servers.docs.headers.Authorization",
        "servers.docs.url",
        "servers.time.timeout",
        "tracing.colour",
    ]
    assert str(error).count("\n  - ") == 7


def test_servers_and_mcp_servers_together_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yaml", "servers: {a: {command: x}}\nmcpServers: {b: {command: y}}\n")

    assert load_error(path).problems == [f"{path}:2: mcpServers: use either 'servers' or 'mcpServers', not both"]


def test_source_cannot_be_set_by_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yaml", "source: /etc/passwd\n")

    (only,) = load_error(path).problems
    assert only.startswith(f"{path}:1: source: unknown key")


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yaml", "servers:\n  a: {command: x}\n  a: {command: y}\n")

    assert load_error(path).problems == [f"{path}:3: servers.a: duplicate key (first on line 2)"]


def test_secrets_never_appear_in_error_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orchestrator.yaml",
        f"""
        servers:
          local:
            command: uvx
            env: {{API_KEY: {CANARY}, LIST: [{CANARY}], NESTED: {{k: {CANARY}}}}}
            timeout: never
            colour: blue
          remote:
            url: "ftp://{CANARY}@example"
            headers: {{Authorization: "Bearer {CANARY}", X-List: [{CANARY}]}}
            prefix: ""
            tools: {{include: {CANARY}}}
        serve: {{transport: "{CANARY}", host: ["{CANARY}"]}}
        """,
    )

    error = load_error(path)

    assert len(error.problems) >= 8
    assert CANARY not in str(error)
    assert CANARY not in repr(error.problems)


def test_a_redis_url_is_a_secret_read_from_the_environment_and_never_quoted_when_wrong(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yaml", "state: {redis_url: '${REDIS_URL}'}\n")

    config = load_config(path, env={"REDIS_URL": f"rediss://app:{CANARY}@cache:6380/2"})
    assert config.state.redis_url is not None
    assert config.state.redis_url.get_secret_value() == f"rediss://app:{CANARY}@cache:6380/2"
    assert CANARY not in repr(config)
    assert load_config(path, env={"REDIS_URL": ""}).state.redis_url is None

    for wrong in (f"http://:{CANARY}@cache/0", f"redis://:{CANARY}@/0", f"redis://:{CANARY}@cache:port/0"):
        error = load_error(path, env={"REDIS_URL": wrong})
        [problem] = error.problems
        assert problem.startswith(f"{path}:1: state.redis_url: "), problem
        assert CANARY not in str(error)


def test_yaml_syntax_error_is_a_config_error_with_the_line_and_no_file_text(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.yaml", f"servers:\n  s: {{command: x, env: {{K: '{CANARY}'}}\n  t: [\n")

    error = load_error(path)

    (only,) = error.problems
    assert only.startswith(f"{path}:3: (top level): invalid YAML at column ")
    assert CANARY not in str(error)


def test_json_syntax_error_is_a_config_error_with_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "mcp.json", '{\n  "mcpServers": {\n    "a": {"command": "x" "args": []}\n  }\n}\n')

    (only,) = load_error(path).problems
    assert only.startswith(f"{path}:3: (top level): invalid JSON at column 26: ")


def test_toml_syntax_error_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.toml", "[servers.a\ncommand = 'x'\n")

    (only,) = load_error(path).problems
    assert only.startswith(f"{path}: (top level): invalid TOML")
    assert "line 1" in only


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    error = load_error(tmp_path / "absent.yaml")

    assert error.path == str(tmp_path / "absent.yaml")
    assert error.problems[0].startswith(f"{error.path}: (top level): cannot read the file")


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "orchestrator.yaml"
    path.write_bytes(b"servers: {a: {command: \xff}}\n")

    assert load_error(path).problems[0].startswith(f"{path}: (top level): not UTF-8 text")


def test_unsupported_suffix_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestrator.ini", "[servers]\n")

    assert load_error(path).problems[0].startswith(f"{path}: (top level): unsupported file type '.ini'")


@pytest.mark.parametrize(("text", "found"), [("", "an empty file"), ("- a\n- b\n", "a list")])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, found: str) -> None:
    path = write(tmp_path, "orchestrator.yaml", text)

    expected = f"{path}: (top level): expected a mapping with 'servers' or 'mcpServers', found {found}"
    assert load_error(path).problems == [expected]


# -- finding the file -----------------------------------------------------------------------


def test_explicit_path_wins_over_environment_and_default(tmp_path: Path) -> None:
    explicit = write(tmp_path, "explicit.yaml", "")
    from_env = write(tmp_path, "from_env.yaml", "")
    write(tmp_path, "orchestrator.yaml", "")

    found = find_config_path(Path("explicit.yaml"), env={"ORCHESTRATOR_CONFIG": str(from_env)}, cwd=tmp_path)

    assert found == explicit


def test_environment_variable_wins_over_default(tmp_path: Path) -> None:
    from_env = write(tmp_path, "conf/from_env.json", "")
    write(tmp_path, "orchestrator.yaml", "")

    assert find_config_path(None, env={"ORCHESTRATOR_CONFIG": "conf/from_env.json"}, cwd=tmp_path) == from_env


def test_default_is_orchestrator_yaml_in_the_working_folder(tmp_path: Path) -> None:
    default = write(tmp_path, "orchestrator.yaml", "")
    write(tmp_path, "orchestrator.json", "")

    assert find_config_path(None, env={"ORCHESTRATOR_CONFIG": ""}, cwd=tmp_path) == default


@pytest.mark.parametrize("name", ["orchestrator.yml", "orchestrator.json", "orchestrator.toml"])
def test_other_default_suffixes_are_found(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, "")

    assert find_config_path(None, env={}, cwd=tmp_path) == path


def test_named_file_that_does_not_exist_does_not_fall_back_to_the_default(tmp_path: Path) -> None:
    write(tmp_path, "orchestrator.yaml", "")

    with pytest.raises(ConfigNotFoundError, match="given with --config does not exist") as flag:
        find_config_path(Path("missing.yaml"), env={}, cwd=tmp_path)
    with pytest.raises(ConfigNotFoundError, match=r"named by \$ORCHESTRATOR_CONFIG does not exist") as variable:
        find_config_path(None, env={"ORCHESTRATOR_CONFIG": "missing.yaml"}, cwd=tmp_path)

    for caught in (flag, variable):
        assert caught.value.named
        assert caught.value.tried == (str(tmp_path / "missing.yaml"),)


def test_no_config_file_anywhere_is_an_error_naming_what_was_tried(tmp_path: Path) -> None:
    with pytest.raises(ConfigNotFoundError) as caught:
        find_config_path(None, env={}, cwd=tmp_path)

    defaults = ("orchestrator.yaml", "orchestrator.yml", "orchestrator.json", "orchestrator.toml")
    assert not caught.value.named
    assert caught.value.tried == tuple(str(tmp_path / name) for name in defaults)

    message = str(caught.value)
    assert "--config" in message
    assert "$ORCHESTRATOR_CONFIG" in message
    for name in ("orchestrator.yaml", "orchestrator.yml", "orchestrator.json", "orchestrator.toml"):
        assert str(tmp_path / name) in message


# -- schema ---------------------------------------------------------------------------------


def test_json_schema_describes_both_spellings_and_forbids_unknown_keys() -> None:
    schema = config_json_schema()

    json.dumps(schema)
    assert {"servers", "mcpServers", "workflows", "naming", "serve", "tracing"} <= set(schema["properties"])
    assert "source" not in schema["properties"]
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["StdioServerSpec"]["additionalProperties"] is False
    timeout = schema["$defs"]["HttpServerSpec"]["properties"]["timeout"]
    assert {branch["type"] for branch in timeout["anyOf"]} == {"number", "string"}


def test_json_schema_accepts_entries_as_clients_write_them_and_rejects_typos() -> None:
    schema = config_json_schema()
    windsurf = {"serverUrl": "https://x/mcp", "disabledTools": ["a"], "autoApprove": []}
    cursor = {"command": "npx", "envFile": ".env", "timeout": "20s"}

    jsonschema.validate({"mcpServers": {"w": windsurf, "c": cursor}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"servers": {"c": {**cursor, "comand": "x"}}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"servers": {"h": {"headers": {}}}}, schema)


def test_loaded_config_reprs_hide_secrets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orchestrator.yaml",
        f"servers:\n  a: {{command: x, env: {{K: {CANARY}}}}}\n  b: {{url: 'http://x', headers: {{H: {CANARY}}}}}\n",
    )

    config: OrchestratorConfig = load_config(path, env={})

    assert CANARY not in repr(config)
    assert CANARY not in config.model_dump_json()


def test_top_level_x_keys_hold_yaml_anchors_for_shared_server_settings(tmp_path: Path) -> None:
    path = tmp_path / "orchestrator.yaml"
    path.write_text(
        "x-defaults: &defaults {health: {interval: 5s}, retry: {max_attempts: 1}}\n"
        "servers:\n"
        "  a: {<<: *defaults, command: server-a}\n"
        "  b: {<<: *defaults, url: 'http://127.0.0.1:9/mcp', retry: {max_attempts: 3}}\n",
        encoding="utf-8",
    )
    config = load_config(path, env={})
    a, b = config.servers["a"], config.servers["b"]
    assert a.health.interval == 5.0
    assert a.retry.max_attempts == 1
    assert b.health.interval == 5.0
    assert b.retry.max_attempts == 3


def test_resilience_sections_report_their_mistakes_with_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "orchestrator.yaml"
    path.write_text(
        "servers:\n"
        "  a:\n"
        "    command: server-a\n"
        "    health: {intervall: 5s, on_unhealthy: drop}\n"
        "    circuit_breaker: {window: 5, min_calls: 10}\n"
        "    retry: {max_attempts: 0}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    text = str(caught.value)
    assert f"{path}:4: servers.a.health.intervall: unknown key (did you mean 'interval'?)" in text
    assert f"{path}:4: servers.a.health.on_unhealthy:" in text
    assert "'withdraw' or 'keep'" in text
    assert f"{path}:5: servers.a.circuit_breaker: min_calls cannot exceed window" in text
    assert f"{path}:6: servers.a.retry.max_attempts:" in text


def test_auth_mistakes_are_reported_at_once_naming_each_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orchestrator.yaml",
        """
        servers: {}
        serve:
          auth:
            oauth: {issuer: 'http://mcp.example.com/sub'}
            tokens:
              ci: {env: CI_TOKEN, grant: ['server:files', 'everything']}
          rate_limits: {per_tool: {rate: 0}}
        audit: {retention: forever}
        """,
    )

    error = load_error(path)

    assert sorted(p.split(": ")[1] for p in error.problems) == [
        "audit.retention",
        "serve.auth.oauth.issuer",
        "serve.auth.tokens.ci.grant[1]",
        "serve.rate_limits.per_tool.rate",
    ]
    assert "must be https" in str(error)


def test_the_embedded_server_and_an_external_provider_are_not_both_allowed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orchestrator.yaml",
        """
        servers: {}
        serve:
          auth:
            oauth: {issuer: 'https://mcp.example.com'}
            jwt: {issuer: 'https://idp.example', jwks_url: 'https://idp.example/certs'}
        """,
    )

    assert any("choose the embedded server or an external provider" in p for p in load_error(path).problems)


def test_symmetric_jwt_algorithms_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orchestrator.yaml",
        """
        servers: {}
        serve:
          auth:
            jwt:
              issuer: https://idp.example
              jwks_url: https://idp.example/certs
              algorithms: [RS256, HS256, none]
        """,
    )

    assert any("HS256, none cannot be verified" in p for p in load_error(path).problems)


def test_serve_workers_is_a_count_or_auto(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "a.yaml", "servers: {}\nserve: {workers: auto}\n")).serve.workers == "auto"
    assert load_config(write(tmp_path, "b.yaml", "servers: {}\nserve: {workers: 3}\n")).serve.workers == 3
    assert load_config(write(tmp_path, "c.yaml", "servers: {}\n")).serve.workers == 1
    [problem] = load_error(write(tmp_path, "d.yaml", "servers: {}\nserve: {workers: 0}\n")).problems
    assert problem.startswith(f"{tmp_path / 'd.yaml'}:2: serve.workers:"), problem
    assert "between 1 and 64" in problem
