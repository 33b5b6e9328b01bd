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
from orchestrator.store._oauth import (
    ClientOrigin,
    IssuedToken,
    OwnerCredentials,
    PendingRecord,
    StoredClient,
    add_authorization_code,
    add_pending_authorization,
    find_access_token,
    find_authorization_code,
    find_client,
    find_owner,
    find_pending_authorization,
    find_refresh_token,
    issue_tokens,
    list_clients,
    prune_oauth,
    record_sign_in_failure,
    record_sign_in_success,
    revoke_client,
    revoke_token_family,
    rotate_refresh_token,
    save_client,
    set_grant,
    set_owner_password,
    take_authorization_code,
    take_pending_authorization,
)
from orchestrator.store._store import Store, head_revision, open_store
from orchestrator.store._url import STATE_DIR_ENV, default_state_dir, state_url

__all__ = [
    "STATE_DIR_ENV",
    "AuditRecord",
    "ClientOrigin",
    "IssuedToken",
    "OwnerCredentials",
    "PendingRecord",
    "Store",
    "StoredClient",
    "add_authorization_code",
    "add_pending_authorization",
    "default_state_dir",
    "find_access_token",
    "find_authorization_code",
    "find_client",
    "find_owner",
    "find_pending_authorization",
    "find_refresh_token",
    "head_revision",
    "issue_tokens",
    "list_clients",
    "open_store",
    "prune_audit",
    "prune_oauth",
    "read_audit",
    "record_sign_in_failure",
    "record_sign_in_success",
    "revoke_client",
    "revoke_token_family",
    "rotate_refresh_token",
    "save_client",
    "set_grant",
    "set_owner_password",
    "state_url",
    "take_authorization_code",
    "take_pending_authorization",
    "write_audit",
]
