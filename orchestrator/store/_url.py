"""Which database the state lives in: the configured URL, or a SQLite file in the state folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from orchestrator.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.config import StateSpec

__all__ = ["STATE_DIR_ENV", "default_state_dir", "state_file_missing", "state_url"]

STATE_DIR_ENV: Final = "ORCHESTRATOR_STATE_DIR"
_STATE_FILE: Final = "state.db"
_ASYNC_DRIVERS: Final = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def default_state_dir(env: Mapping[str, str]) -> Path:
    """The folder of the default state file.

    ``$ORCHESTRATOR_STATE_DIR``, else ``$XDG_STATE_HOME/mcp-orchestrator``, else
    ``~/.local/state/mcp-orchestrator``.
    """
    if folder := env.get(STATE_DIR_ENV):
        return Path(folder).expanduser()
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(base).expanduser() / "mcp-orchestrator"


def state_url(spec: StateSpec, env: Mapping[str, str], source: str = "state") -> URL:
    """The database URL of ``spec``, with the async driver this package uses.

    ``sqlite:///file`` and ``postgresql://…`` are written as users know them; the drivers
    (aiosqlite, asyncpg) are filled in here.

    Raises:
        ConfigError: The URL does not parse, or names a database other than SQLite or PostgreSQL.
    """
    if spec.url is None:
        return URL.create("sqlite+aiosqlite", database=str(default_state_dir(env) / _STATE_FILE))
    try:
        url = make_url(spec.url)
    except ArgumentError:
        raise ConfigError(source, ["state.url: not a database URL (sqlite:///path or postgresql://...)"]) from None
    backend = url.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise ConfigError(source, [f"state.url: {backend!r} is not supported; use sqlite or postgresql"])
    return url.set(drivername=_ASYNC_DRIVERS[backend])


def state_file_missing(url: URL) -> bool:
    """Whether ``url`` is a SQLite file that does not exist yet (so it holds no state).

    Lets a command that only reads (``doctor``) say "nothing stored" without creating the
    file, as opening it would. A server database is never "missing": only opening it tells.
    """
    return url.get_backend_name() == "sqlite" and bool(url.database) and not Path(url.database or "").exists()
