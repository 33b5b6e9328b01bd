"""What a newcomer reads: each command's messages, as the ``orchestrator`` subprocess prints them.

Real servers throughout (the fault server, the example ticket tracker, a server that cannot
start), so a message is tested where a user meets it: on stdout/stderr, with its exit status.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.harness import REPO_ROOT, fault_entry, write_config

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

RUN_ID = re.compile(r"^run ([0-9a-f]+) succeeded$", re.MULTILINE)

MIXED = """
    version: 1
    name: mixed
    description: Mistakes of every stage in one file.
    steps:
      a:
        tool: f.echo
        needs: [b]
        with: {text: hi}
        retyr: {max_attempts: 2}
      b:
        tool: f.echo
        needs: [a]
        with: {text: hi}
      c:
        tool: f.ecko
        with: {text: "${{ steps.a.result }}"}
      d:
        tool: f.add
        with: {a: one, b: 2}
"""

GOOD = """
    version: 1
    name: adder
    description: Adds twice.
    input:
      type: object
      properties:
        mode: {enum: [fast, exact], default: fast}
    steps:
      one:
        tool: f.add
        with: {a: 1, b: 2}
      two:
        needs: [one]
        tool: f.add
        with: {a: "${{ steps.one.result.sum }}", b: 10}
    output:
      value: {total: "${{ steps.two.result.sum }}"}
"""


def _cli(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "OTEL_"))}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _workflow(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _tracker() -> dict[str, Any]:
    return {"command": sys.executable, "args": ["-m", "examples.servers.tracker"], "cwd": str(REPO_ROOT)}


def _cannot_start() -> dict[str, Any]:
    """A stdio server whose process dies at once, the way a missing dependency kills one."""
    return {"command": sys.executable, "args": ["-c", "import mcp_orchestrator_missing_dependency"]}


# -------------------------------------------------------------------- validate


def test_validate_reports_format_wiring_and_live_problems_of_a_file_in_one_run(tmp_path: Path) -> None:
    wf = _workflow(tmp_path, "mixed", MIXED)
    config = write_config(tmp_path, {"f": fault_entry()})

    static = _cli("validate", str(wf))
    live = _cli("validate", "--live", "-c", str(config), str(wf))

    cycle = f"{wf}:7: steps.a.needs: needs form a cycle: a -> b -> a"
    typo = f"{wf}:9: steps.a.retyr: unknown key (did you mean 'retry'?)"
    not_a_need = f"{wf}:16: steps.c.with: refers to step 'a', which it does not need"
    assert static.returncode == 1
    assert [cycle, typo] == static.stderr.splitlines()[:2]
    assert not_a_need in static.stderr
    assert "ecko" not in static.stderr  # tools are checked with --live only
    assert live.returncode == 1, live.stderr
    for problem in (
        cycle,
        typo,
        not_a_need,
        f"{wf}:15: steps.c.tool: server 'f' has no tool 'ecko' (did you mean 'echo'?)",
        f"{wf}:19: steps.d.with.a: 'one' is not of type 'number'",
    ):
        assert problem in live.stderr
    assert live.stdout == ""


def test_validate_says_what_it_checked_and_which_servers_were_not_available(tmp_path: Path) -> None:
    wf = _workflow(tmp_path, "adder", GOOD)
    config = write_config(tmp_path, {"f": fault_entry(), "broken": _cannot_start()})

    static = _cli("validate", str(wf))
    live = _cli("validate", "--live", "-c", str(config), str(wf))

    assert static.returncode == 0, static.stderr
    assert static.stdout == f"ok: {wf} (adder, 2 steps; tools unchecked without --live)\n"
    assert live.returncode == 0, live.stderr
    assert live.stdout == f"ok: {wf} (adder, 2 steps; tools checked against live servers f; not available: broken)\n"
    assert "warning: server 'broken' is not available" in live.stderr
    assert "ModuleNotFoundError: No module named 'mcp_orchestrator_missing_dependency'" in live.stderr


def test_a_step_on_a_server_that_did_not_start_is_reported_as_unchecked_not_unknown(tmp_path: Path) -> None:
    text = GOOD.replace("tool: f.add\n        with: {a: 1", "tool: broken.add\n        with: {a: 1")
    wf = _workflow(tmp_path, "adder", text)
    config = write_config(tmp_path, {"f": fault_entry(), "broken": _cannot_start()})

    live = _cli("validate", "--live", "-c", str(config), str(wf))

    assert live.returncode == 1
    assert f"{wf}:10: steps.one.tool: server 'broken' is not available, so broken.add could not be checked" in (
        live.stderr
    )
    assert "unknown server" not in live.stderr


# ---------------------------------------------------------------- usage errors


def test_bad_options_and_workflow_names_are_usage_errors_naming_the_option(tmp_path: Path) -> None:
    _workflow(tmp_path / "workflows", "incident_report", GOOD.replace("name: adder", "name: incident_report"))
    config = str(write_config(tmp_path, {"f": fault_entry()}, workflows=[str(tmp_path / "workflows")]))

    bad_args = _cli("call", "f__add", "-c", config, "--args", "{a: 1}")
    not_an_object = _cli("call", "f__add", "-c", config, "--args", "[1, 2]")
    bad_arg = _cli("call", "f__add", "-c", config, "--arg", "a")
    bad_input = _cli("run", "incident_report", "-c", config, "--input", "{'service': 'x'}")
    misspelt = _cli("run", "incident_reprot", "-c", config)

    for completed in (bad_args, not_an_object, bad_arg, bad_input, misspelt):
        assert completed.returncode == 2
        assert "invalid configuration" not in completed.stderr
    assert bad_args.stderr.startswith("error: --args: not valid JSON: Expecting property name enclosed in double")
    assert not_an_object.stderr == 'error: --args: must be a JSON object such as \'{"key": "value"}\', not an array\n'
    assert bad_arg.stderr == "error: --arg: expected KEY=VALUE, got 'a'\n"
    assert bad_input.stderr.startswith("error: --input: not valid JSON: ")
    assert misspelt.stderr == (
        "error: no workflow file or composite named 'incident_reprot'; did you mean 'incident_report'? "
        "(the config's composites: incident_report)\n"
    )


# ------------------------------------------------------------------ call, tools


def test_call_suggests_close_names_for_an_unknown_tool(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, {"tickets": _tracker()}))

    completed = _cli("call", "tickets__serch", "-c", config)

    assert completed.returncode == 2
    assert completed.stderr == (
        "error: unknown tool 'tickets__serch'; did you mean 'tickets__search_tickets'? (see `orchestrator tools`)\n"
    )


def test_a_value_outside_an_enum_is_told_with_its_field_and_the_allowed_values(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, {"tickets": _tracker()}))

    completed = _cli("call", "tickets__search_tickets", "-c", config, "--args", '{"status": "clsoed"}')

    assert completed.returncode == 1
    assert completed.stdout == (
        "invalid arguments for tool 'tickets__search_tickets':\n"
        '- status: "clsoed" is not one of "open", "in_progress", "closed", null\n'
    )


def test_tools_shows_why_a_server_did_not_start_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    only_broken = _cli("tools", "-c", str(write_config(tmp_path / "a", {"broken": _cannot_start()})))
    healthy = _cli("tools", "-c", str(write_config(tmp_path / "b", {"f": fault_entry()})))

    assert only_broken.returncode == 1
    assert only_broken.stdout == ""
    lines = only_broken.stderr.splitlines()
    assert "error: server 'broken' is not available: failed to start: Connection closed (code -32000)" in lines
    assert "  | ModuleNotFoundError: No module named 'mcp_orchestrator_missing_dependency'" in lines
    assert healthy.returncode == 0, healthy.stderr
    assert "f__echo" in healthy.stdout


# ------------------------------------------------------------------ run, version


def test_run_prints_a_run_id_of_32_hex_characters(tmp_path: Path) -> None:
    wf = _workflow(tmp_path, "adder", GOOD)
    config = str(write_config(tmp_path, {"f": fault_entry()}))

    completed = _cli("run", str(wf), "-c", config)
    bad_enum = _cli("run", str(wf), "-c", config, "--input", '{"mode": "slow"}')

    assert completed.returncode == 0, completed.stderr
    (run_id,) = RUN_ID.findall(completed.stderr)
    assert re.fullmatch(r"[0-9a-f]{32}", run_id)
    assert json.loads(completed.stdout) == {"total": 13}
    assert bad_enum.returncode == 2
    expected = "error: invalid --input for 'adder':\n" + '  - mode: "slow" is not one of "fast", "exact"\n'
    assert bad_enum.stderr.endswith(expected)


def test_the_version_has_one_source_seen_by_the_command_line_and_downstream_servers(tmp_path: Path) -> None:
    version = importlib.metadata.version("mcp-orchestrator")
    whoami = {"command": sys.executable, "args": ["-m", "tests.fakes.whoami_server"], "cwd": str(REPO_ROOT)}
    config = str(write_config(tmp_path, {"who": whoami}))

    flag = _cli("--version")
    seen = _cli("call", "who__client_info", "-c", config)

    assert flag.returncode == 0
    assert flag.stdout == f"orchestrator {version}\n"
    assert seen.returncode == 0, seen.stderr
    assert json.loads(seen.stdout) == {"name": "mcp-orchestrator", "version": version}
