"""The public API: what ``import orchestrator`` offers, and what it costs and changes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from importlib import resources
from pathlib import Path

import orchestrator
import orchestrator.errors

ROOT = Path(__file__).resolve().parents[2]

# Changing this list changes the public API: update docs/library.md and CHANGELOG.md with it.
PUBLIC_NAMES = [
    "Aggregator",
    "CatalogError",
    "ConfigError",
    "DownstreamCircuitOpen",
    "DownstreamError",
    "DefinitionWithheld",
    "DownstreamLoginRequired",
    "DownstreamNotConnected",
    "DownstreamOutputInvalid",
    "DownstreamTimeout",
    "DownstreamToolError",
    "DownstreamUnavailable",
    "InvalidArgumentsError",
    "ConfigNotFoundError",
    "InputRoundExpired",
    "InternalError",
    "WorkflowUnavailable",
    "OrchestratorConfig",
    "OrchestratorError",
    "RateLimitedError",
    "RateLimitsUnavailable",
    "RecordingError",
    "RunAlreadyOver",
    "RunLeaseLost",
    "RunNotResumable",
    "SecretKeyError",
    "StepNotGranted",
    "ReloadRecord",
    "RunResult",
    "ServerStatus",
    "StepEvent",
    "UnknownToolError",
    "StoreError",
    "UsageError",
    "WorkflowDefinitionError",
    "WorkflowError",
    "WorkflowExecutionError",
    "WorkflowPlan",
    "WorkflowSpec",
    "__version__",
    "find_config_path",
    "load_config",
]


def test_the_public_names_are_exactly_the_curated_list() -> None:
    assert sorted(orchestrator.__all__) == sorted(PUBLIC_NAMES)
    assert sorted(dir(orchestrator)) == sorted(PUBLIC_NAMES)


def test_every_public_name_resolves_and_says_where_it_comes_from() -> None:
    for name in PUBLIC_NAMES:
        value = getattr(orchestrator, name)
        if name != "__version__":
            assert getattr(value, "__module__", "").startswith("orchestrator"), name


def test_every_error_class_is_public() -> None:
    assert set(orchestrator.errors.__all__) <= set(PUBLIC_NAMES)


def test_every_public_name_but_the_errors_is_documented_in_the_library_guide() -> None:
    guide = (ROOT / "docs" / "library.md").read_text(encoding="utf-8")
    undocumented = [
        name
        for name in PUBLIC_NAMES
        if name not in orchestrator.errors.__all__ and name != "__version__" and f"`{name}" not in guide
    ]
    assert undocumented == []


def test_the_package_ships_its_type_information() -> None:
    assert resources.files("orchestrator").joinpath("py.typed").is_file()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["orchestrator"]


def _run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_the_package_or_the_span_helpers_does_not_load_the_server_or_the_engine() -> None:
    loaded = _run_python(
        """
        import sys
        import orchestrator, orchestrator.tracing, orchestrator.errors
        heavy = ("orchestrator.server", "orchestrator.workflow", "orchestrator.downstream", "uvicorn")
        print(sorted(name for name in heavy if name in sys.modules))
        """
    )
    assert loaded == "[]"
