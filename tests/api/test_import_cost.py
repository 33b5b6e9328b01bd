"""What a command line that never touches the state database does not load.

``orchestrator tools``, ``call`` and ``serve`` over stdio start often (a desktop client starts
``serve`` at every launch); SQLAlchemy, Alembic, Jinja and PyJWT cost them a few hundred
milliseconds and are needed only by HTTP serving with authentication, the audit log and
``orchestrator auth``/``audit``.
"""

from __future__ import annotations

import subprocess
import sys

from tests.e2e.harness import REPO_ROOT

HEAVY = ("sqlalchemy", "alembic", "jinja2", "jwt", "asyncpg", "aiosqlite")


def test_the_command_line_loads_no_database_template_or_jwt_library() -> None:
    probe = f"import sys, orchestrator.cli._main; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert completed.stdout.strip() == "[]"
