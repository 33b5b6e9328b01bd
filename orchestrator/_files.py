"""Atomic file replacement (bottom layer: no orchestrator imports).

The one place that writes a file through a temporary neighbour and a rename, so readers see
the old file or the new one, never half of either: config files edited by ``install``, the
Jaeger-JSON trace file, anything written next.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["write_atomically"]


def write_atomically(path: Path, text: str | Iterable[str]) -> None:
    """Replace ``path`` by ``text`` in one rename; a new file is private (0600), an old one keeps its mode.

    ``text`` may come in pieces, written one after another (a large file need not be
    joined into one string first). A symlinked file (dotfile managers) is written through
    the link, which stays a link. Missing parent folders are created.

    Raises:
        OSError: The folder is not writable, or the disk is full.
    """
    target = path.resolve() if path.is_symlink() else path
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            if isinstance(text, str):
                stream.write(text)
            else:
                stream.writelines(text)
        if target.exists():
            shutil.copymode(target, temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
