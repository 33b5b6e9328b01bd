"""A real PostgreSQL server for tests: started in a temporary folder on a free loopback port.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user the
Debian package creates, in a folder that user owns. `.ci/run` installs the package.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Generator

__all__ = ["running_postgres"]


def _bin_dir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)")
    return Path(initdb).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_owner(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{arg}'" for arg in argv)]


@contextmanager
def running_postgres() -> Generator[str, None, None]:
    """Start PostgreSQL; yields its URL (``postgresql://app@127.0.0.1:PORT/postgres``); stops it after."""
    binaries = _bin_dir()
    folder = Path(tempfile.mkdtemp(prefix="orchestrator-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", _free_port()
    subprocess.run(
        _as_owner([str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "app"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]
    subprocess.run(_as_owner(start), check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql://app@127.0.0.1:{port}/postgres"
    finally:
        stop = [str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
        subprocess.run(_as_owner(stop), check=False, capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)
