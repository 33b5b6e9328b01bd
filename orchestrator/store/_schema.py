"""The tables, as SQLAlchemy Core metadata: what the migrations create and the queries use.

Names follow one convention (``ix_``, ``uq_``, ``fk_``, ``pk_``), so migrations can name
constraints on both SQLite and PostgreSQL. Times are UTC, stored timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "UtcDateTime",
    "audit_records",
    "downstream_credentials",
    "metadata",
    "oauth_access_tokens",
    "oauth_authorization_codes",
    "oauth_clients",
    "oauth_pending_authorizations",
    "oauth_refresh_tokens",
    "owner_credentials",
    "rate_buckets",
    "run_steps",
    "runs",
    "server_manifests",
    "trust_findings",
    "trust_pending",
    "trust_pins",
    "trust_servers",
]


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware time, stored in UTC and read back aware on every database.

    PostgreSQL keeps the zone (``timestamptz``); SQLite keeps text without one, so what comes
    back from it is marked UTC here. A naive time is refused on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("times in the store are timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

audit_records = Table(
    "audit_records",
    metadata,
    # SQLite numbers rows only for an INTEGER primary key; PostgreSQL gets a 64-bit identity.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("client_id", String(255), nullable=True),
    Column("subject", String(255), nullable=True),
    Column("tool", String(255), nullable=False),
    Column("server", String(255), nullable=True),
    Column("downstream_tool", String(255), nullable=True),
    Column("run_id", String(64), nullable=True),
    Column("step_id", String(255), nullable=True),
    Column("argument_shape", JSON, nullable=False),
    Column("argument_hash", String(64), nullable=False),
    Column("outcome", String(64), nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("trace_id", String(32), nullable=True),
    Column("catalogue_version", String(64), nullable=True),
)
Index(None, audit_records.c.at)
Index(None, audit_records.c.client_id, audit_records.c.at)

# The embedded OAuth authorization server. Codes, tokens, pending request ids and client secrets
# are kept only as SHA-256 hex digests: a copy of the database lets no one act as a client.
_CLIENT_ID = 1024  # a Client ID Metadata Document's id is its https URL
_HASH = 64

oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(_CLIENT_ID), primary_key=True),
    # "dynamic" (RFC 7591 registration) or "metadata_document" (an https client_id URL)
    Column("origin", String(32), nullable=False),
    Column("registration", JSON, nullable=False),
    Column("secret_hash", String(_HASH), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("grant", JSON, nullable=True),
    Column("granted_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
)

oauth_pending_authorizations = Table(
    "oauth_pending_authorizations",
    metadata,
    Column("request_hash", String(_HASH), primary_key=True),
    Column("client_id", String(_CLIENT_ID), ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("params", JSON, nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)
Index(None, oauth_pending_authorizations.c.expires_at)

oauth_authorization_codes = Table(
    "oauth_authorization_codes",
    metadata,
    Column("code_hash", String(_HASH), primary_key=True),
    Column("client_id", String(_CLIENT_ID), ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("params", JSON, nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)
Index(None, oauth_authorization_codes.c.expires_at)


def _token_table(name: str, *extra: Column[Any]) -> Table:
    table = Table(
        name,
        metadata,
        Column("token_hash", String(_HASH), primary_key=True),
        Column(
            "client_id", String(_CLIENT_ID), ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), nullable=False
        ),
        # Every token issued from one authorization code, through all its refreshes: revoked together.
        Column("family_id", String(_HASH), nullable=False),
        Column("scopes", JSON, nullable=False),
        Column("resource", String(2048), nullable=False),
        Column("subject", String(255), nullable=True),
        Column("issued_at", UtcDateTime(), nullable=False),
        Column("expires_at", UtcDateTime(), nullable=False),
        *extra,
    )
    Index(None, table.c.client_id)
    Index(None, table.c.family_id)
    Index(None, table.c.expires_at)
    return table


oauth_access_tokens = _token_table("oauth_access_tokens")
# A rotated refresh token stays (with ``rotated_at``) until it expires, so its reuse is recognised.
oauth_refresh_tokens = _token_table("oauth_refresh_tokens", Column("rotated_at", UtcDateTime(), nullable=True))

owner_credentials = Table(
    "owner_credentials",
    metadata,
    # One owner today; the key leaves room for more.
    Column("owner", String(64), primary_key=True),
    Column("password_hash", String(512), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("locked_until", UtcDateTime(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Pins of downstream servers (``trust``): per server its identity, per definition (tool, prompt,
# resource template) its digest and per-field hashes; changes seen live wait in
# ``trust_pending`` until approved. The rows of ``trust_pins`` for a server are its pinned name set.
_SERVER_KEY = 255
_IDENTITY = 4096
_DEFINITION_NAME = 1024

trust_servers = Table(
    "trust_servers",
    metadata,
    Column("server", String(_SERVER_KEY), primary_key=True),
    Column("identity", String(_IDENTITY), nullable=False),
    Column("pinned_at", UtcDateTime(), nullable=False),
    Column("approved_by", String(255), nullable=True),
    # A live identity that differs from the pinned one, waiting for approval like a definition.
    Column("pending_identity", String(_IDENTITY), nullable=True),
)


def _definition_table(name: str, *columns: Column[Any]) -> Table:
    return Table(
        name,
        metadata,
        Column("server", String(_SERVER_KEY), nullable=False),
        Column("kind", String(32), nullable=False),  # tool, prompt, resource_template
        Column("name", String(_DEFINITION_NAME), nullable=False),
        *columns,
        PrimaryKeyConstraint("server", "kind", "name"),
        ForeignKeyConstraint(["server"], ["trust_servers.server"], ondelete="CASCADE"),
    )


trust_pins = _definition_table(
    "trust_pins",
    Column("digest", String(_HASH), nullable=False),
    Column("fields", JSON, nullable=False),
    Column("pinned_at", UtcDateTime(), nullable=False),
    Column("approved_by", String(255), nullable=True),
    # Its canonical JSON text, so a report shows how it changed; null when too big to keep.
    Column("definition", Text, nullable=True),
)

trust_pending = _definition_table(
    "trust_pending",
    # The live definition; both null when a pinned definition is no longer listed.
    Column("digest", String(_HASH), nullable=True),
    Column("fields", JSON, nullable=True),
    Column("seen_at", UtcDateTime(), nullable=False),
    Column("definition", Text, nullable=True),
)

# What the definition checks found in each server's latest listing, replaced on every listing.
# A definition may hold several findings of one check in one field (two injection phrases), so
# rows have a plain key. No foreign key: a server is inspected whether or not it is pinned.
trust_findings = Table(
    "trust_findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("server", String(_SERVER_KEY), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("name", String(_DEFINITION_NAME), nullable=False),
    Column("check", String(64), nullable=False),
    Column("severity", String(32), nullable=False),
    Column("field", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("seen_at", UtcDateTime(), nullable=False),
)
Index(None, trust_findings.c.server)

# Credentials the orchestrator holds as an OAuth client of remote downstream servers, per server
# key. ``tokens`` and ``client_info`` are opaque blobs encrypted by ``trust`` before they get
# here: the store never sees them in plain text. ``refresh_failure`` says (without secrets) why
# the last refresh was refused, until the next login.
downstream_credentials = Table(
    "downstream_credentials",
    metadata,
    Column("server", String(_SERVER_KEY), primary_key=True),
    Column("tokens", LargeBinary, nullable=True),
    Column("client_info", LargeBinary, nullable=True),
    Column("refresh_failure", String(1024), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# The run journal: one row per workflow run, keyed by its idempotency key, and one per step it
# started, keyed by the step's identity (its id, plus the item index inside a for-each), never by
# its position, so steps run in whatever order the graph allows and a resumed run finds them.
# ``owner`` and ``lease_until`` say which process runs it: another may take it once the lease ran out.
_RUN_ID = 255
_STEP_ID = 255
_STEP_KEY = 320  # the step id, plus "[index]" for an item of a for-each

runs = Table(
    "runs",
    metadata,
    Column("id", String(_RUN_ID), primary_key=True),
    Column("workflow", String(255), nullable=False),
    Column("plan_hash", String(_HASH), nullable=False),
    # The workflow file as compiled when the run began: a resumed run runs what it started with.
    Column("workflow_snapshot", Text, nullable=False),
    Column("input", JSON, nullable=False),
    Column("client_id", String(_CLIENT_ID), nullable=True),
    Column("subject", String(255), nullable=True),
    # running, succeeded, failed, interrupted, cancelled, declined
    Column("status", String(32), nullable=False),
    Column("error", Text, nullable=True),
    Column("catalogue_version", String(64), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Column("deadline", UtcDateTime(), nullable=True),
    Column("owner", String(255), nullable=True),
    Column("lease_until", UtcDateTime(), nullable=True),
    # The tool result (CallToolResult as JSON) the run returned, once it is over.
    Column("outcome", JSON, nullable=True),
    # What the principal was granted when the run began (selectors); NULL: everything. A
    # resumed run's calls are checked against it: no more than it had.
    Column("grant", JSON, nullable=True),
)
Index(None, runs.c.status, runs.c.lease_until)
Index(None, runs.c.finished_at)
Index(None, runs.c.client_id, runs.c.subject)

run_steps = Table(
    "run_steps",
    metadata,
    Column("run_id", String(_RUN_ID), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step_key", String(_STEP_KEY), nullable=False),
    Column("step_id", String(_STEP_ID), nullable=False),
    Column("item", Integer, nullable=True),
    # running, succeeded, failed, skipped
    Column("status", String(32), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("result", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("started_at", UtcDateTime(), nullable=True),
    Column("finished_at", UtcDateTime(), nullable=True),
    PrimaryKeyConstraint("run_id", "step_key"),
)

# Each downstream server's last listing, as it sent it (tools, prompts, resources, resource
# templates, each as the wire carries it), with a fingerprint of the connection settings it was
# listed with: a lazy server is served from it without being started, and only while its entry
# still has the same fingerprint. One row per server key, replaced by every listing.
server_manifests = Table(
    "server_manifests",
    metadata,
    Column("server", String(_SERVER_KEY), primary_key=True),
    Column("connection", String(_HASH), nullable=False),
    Column("listing", JSON, nullable=False),
    Column("listed_at", UtcDateTime(), nullable=False),
)

# The token buckets of rate limits shared by several processes (``serve --workers``, replicas):
# one row per principal (``tool`` empty) and per principal and tool. The principal is kept as
# the SHA-256 hex digest of its key: a bucket needs to tell principals apart, not to name them.
# Times are wall-clock seconds (every process reads the same clock, not its own monotonic one);
# ``full_at`` is when the bucket is full again, from when on it is the same as no row at all.
rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("principal", String(_HASH), nullable=False),
    Column("tool", String(255), nullable=False),
    Column("tokens", Float, nullable=False),
    Column("updated", Float, nullable=False),
    Column("full_at", Float, nullable=False),
    PrimaryKeyConstraint("principal", "tool"),
)
Index(None, rate_buckets.c.full_at)
