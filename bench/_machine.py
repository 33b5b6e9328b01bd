"""What every benchmark report says of where it ran: package versions, the git head, the CPU."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["cpu_model", "git", "machine", "version"]

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


def machine(**extra: Any) -> dict[str, Any]:
    """Cores, CPU, platform, Python, the MCP SDK and anyio, the load average now, and ``extra``."""
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "mcp": version("mcp"),
        "anyio": version("anyio"),
        **extra,
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }
