"""Fixtures of the CLI tests: a fake home folder and a clean environment."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$HOME`` (and ``%USERPROFILE%``/``%APPDATA%``) in a temp folder; the working folder beside it.

    Variables that would steer the commands elsewhere (config, Claude Code's folder, XDG, OTel)
    are removed, so the tests see what a fresh machine sees.
    """
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("APPDATA", str(home / "AppData" / "Roaming"))
    for name in list(os.environ):
        if name.startswith(("OTEL_", "ORCHESTRATOR_")) or name in ("XDG_CONFIG_HOME", "CLAUDE_CONFIG_DIR", "NO_COLOR"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(work)
    return home
