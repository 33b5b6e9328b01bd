"""The one persistence layer: the state database, SQLite by default, PostgreSQL by URL.

Owns every SQL statement and every migration (SQLAlchemy 2 async, Alembic run at start),
the connection settings of each database, and where the default SQLite file lives. No
module outside this package imports SQLAlchemy or writes SQL (ruff's TID251 enforces it).

Does not: decide who may do what (``auth``), what to trust (``trust``), or how runs proceed
(``runs``): those packages keep their records here through this package's functions.
It sits above ``config`` and ``errors`` only.

Names load on first use (PEP 562): SQLAlchemy and Alembic cost a few hundred milliseconds at
import, and most commands (tools, call, serve over stdio) never open the state
database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator._lazy import lazy_names

if TYPE_CHECKING:
    from orchestrator.store._audit import (
        AuditRecord,
        prune_audit,
        read_audit,
        write_audit,
    )
    from orchestrator.store._downstream_tokens import (
        DownstreamCredentials,
        delete_downstream_tokens,
        read_downstream_credentials,
        record_downstream_refresh_failure,
        save_downstream_client,
        save_downstream_tokens,
    )
    from orchestrator.store._findings import (
        StoredFinding,
        list_findings,
        record_findings,
    )
    from orchestrator.store._migrate import head_revision, upgrade_schema
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
        find_granted_access_token,
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
    from orchestrator.store._pins import (
        DefinitionPin,
        PendingDefinition,
        ServerPins,
        approve_pins,
        forget_pins,
        list_pins,
        pin_first_sight,
        read_pins,
        record_pending,
    )
    from orchestrator.store._store import (
        HEAD_REVISION,
        Store,
        open_store,
    )
    from orchestrator.store._url import (
        STATE_DIR_ENV,
        default_state_dir,
        state_file_missing,
        state_url,
    )

__all__ = [
    "HEAD_REVISION",
    "STATE_DIR_ENV",
    "AuditRecord",
    "ClientOrigin",
    "DefinitionPin",
    "DownstreamCredentials",
    "IssuedToken",
    "OwnerCredentials",
    "PendingDefinition",
    "PendingRecord",
    "ServerPins",
    "Store",
    "StoredClient",
    "StoredFinding",
    "add_authorization_code",
    "add_pending_authorization",
    "approve_pins",
    "default_state_dir",
    "delete_downstream_tokens",
    "find_access_token",
    "find_authorization_code",
    "find_client",
    "find_granted_access_token",
    "find_owner",
    "find_pending_authorization",
    "find_refresh_token",
    "forget_pins",
    "head_revision",
    "issue_tokens",
    "list_clients",
    "list_findings",
    "list_pins",
    "open_store",
    "pin_first_sight",
    "prune_audit",
    "prune_oauth",
    "read_audit",
    "read_downstream_credentials",
    "read_pins",
    "record_downstream_refresh_failure",
    "record_findings",
    "record_pending",
    "record_sign_in_failure",
    "record_sign_in_success",
    "revoke_client",
    "revoke_token_family",
    "rotate_refresh_token",
    "save_client",
    "save_downstream_client",
    "save_downstream_tokens",
    "set_grant",
    "set_owner_password",
    "state_file_missing",
    "state_url",
    "take_authorization_code",
    "take_pending_authorization",
    "upgrade_schema",
    "write_audit",
]

_HOMES: dict[str, str] = {
    "AuditRecord": "orchestrator.store._audit",
    "prune_audit": "orchestrator.store._audit",
    "read_audit": "orchestrator.store._audit",
    "write_audit": "orchestrator.store._audit",
    "StoredFinding": "orchestrator.store._findings",
    "list_findings": "orchestrator.store._findings",
    "record_findings": "orchestrator.store._findings",
    **dict.fromkeys(
        (
            "DownstreamCredentials",
            "delete_downstream_tokens",
            "read_downstream_credentials",
            "record_downstream_refresh_failure",
            "save_downstream_client",
            "save_downstream_tokens",
        ),
        "orchestrator.store._downstream_tokens",
    ),
    "ClientOrigin": "orchestrator.store._oauth",
    "IssuedToken": "orchestrator.store._oauth",
    "OwnerCredentials": "orchestrator.store._oauth",
    "PendingRecord": "orchestrator.store._oauth",
    "StoredClient": "orchestrator.store._oauth",
    "add_authorization_code": "orchestrator.store._oauth",
    "add_pending_authorization": "orchestrator.store._oauth",
    "find_access_token": "orchestrator.store._oauth",
    "find_granted_access_token": "orchestrator.store._oauth",
    "find_authorization_code": "orchestrator.store._oauth",
    "find_client": "orchestrator.store._oauth",
    "find_owner": "orchestrator.store._oauth",
    "find_pending_authorization": "orchestrator.store._oauth",
    "find_refresh_token": "orchestrator.store._oauth",
    "issue_tokens": "orchestrator.store._oauth",
    "list_clients": "orchestrator.store._oauth",
    "prune_oauth": "orchestrator.store._oauth",
    "record_sign_in_failure": "orchestrator.store._oauth",
    "record_sign_in_success": "orchestrator.store._oauth",
    "revoke_client": "orchestrator.store._oauth",
    "revoke_token_family": "orchestrator.store._oauth",
    "rotate_refresh_token": "orchestrator.store._oauth",
    "save_client": "orchestrator.store._oauth",
    "set_grant": "orchestrator.store._oauth",
    "set_owner_password": "orchestrator.store._oauth",
    "take_authorization_code": "orchestrator.store._oauth",
    "take_pending_authorization": "orchestrator.store._oauth",
    "DefinitionPin": "orchestrator.store._pins",
    "PendingDefinition": "orchestrator.store._pins",
    "ServerPins": "orchestrator.store._pins",
    "approve_pins": "orchestrator.store._pins",
    "forget_pins": "orchestrator.store._pins",
    "list_pins": "orchestrator.store._pins",
    "pin_first_sight": "orchestrator.store._pins",
    "read_pins": "orchestrator.store._pins",
    "record_pending": "orchestrator.store._pins",
    "Store": "orchestrator.store._store",
    "HEAD_REVISION": "orchestrator.store._store",
    "head_revision": "orchestrator.store._migrate",
    "upgrade_schema": "orchestrator.store._migrate",
    "open_store": "orchestrator.store._store",
    "STATE_DIR_ENV": "orchestrator.store._url",
    "default_state_dir": "orchestrator.store._url",
    "state_file_missing": "orchestrator.store._url",
    "state_url": "orchestrator.store._url",
}
"""Where each public name lives; loaded on first use."""


__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__, globals())
