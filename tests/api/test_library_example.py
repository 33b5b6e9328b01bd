"""The runnable example of docs/library.md, run as documented: from the repository root, venv first on PATH."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY_DOC = ROOT / "docs" / "library.md"


def _complete_example() -> str:
    text = LIBRARY_DOC.read_text(encoding="utf-8")
    match = re.search(r"^## A complete example$.*?^```python\n(.*?)^```$", text, re.S | re.M)
    assert match is not None, "docs/library.md lost its complete example"
    return match.group(1)


@pytest.mark.slow
def test_the_documented_embedding_example_runs_against_the_bundled_servers(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(_complete_example(), encoding="utf-8")
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""), "ANALYTICS_FLAKY": "1"}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert {"db: ready", "metrics: ready", "tickets: ready", "time: ready"} <= set(lines)
    assert "11 tools, e.g. ['db__describe_schema', 'db__list_services', 'db__query']" in lines
    assert "7 open tickets" in lines
    assert re.search(r"^run [0-9a-f]{32}: succeeded$", done.stdout, re.M)
    assert "checkout's open tickets: ['TCK-116', 'TCK-118']" in lines
