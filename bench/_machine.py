"""What every benchmark report says of where it ran: package versions, the git head, the CPU."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["cpu_model", "git", "version"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or ``None``."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def git(*args: str) -> str:
    """``git ARGS`` in the repository, its output stripped (empty when git fails)."""
    done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def cpu_model() -> str:
    """The CPU's model name, from ``/proc/cpuinfo`` where there is one."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return ""
