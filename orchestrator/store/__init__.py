"""The one persistence layer: the state database, SQLite by default, PostgreSQL by URL.

Owns every SQL statement and every migration (SQLAlchemy 2 async, Alembic run at start),
the connection settings of each database, and where the default SQLite file lives. No
module outside this package imports SQLAlchemy or writes SQL (ruff's TID251 enforces it).

Does not: decide who may do what (``auth``), what to trust (``trust``), or how runs proceed
(``runs``): those packages keep their records here through this package's functions.
It sits above ``config`` and ``errors`` only.
"""

from __future__ import annotations

from orchestrator.store._audit import AuditRecord, prune_audit, read_audit, write_audit
from orchestrator.store._store import Store, head_revision, open_store
from orchestrator.store._url import STATE_DIR_ENV, default_state_dir, state_url

__all__ = [
    "STATE_DIR_ENV",
    "AuditRecord",
    "Store",
    "default_state_dir",
    "head_revision",
    "open_store",
    "prune_audit",
    "read_audit",
    "state_url",
    "write_audit",
]
