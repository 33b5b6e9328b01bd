"""The tables, as SQLAlchemy Core metadata: what the migrations create and the queries use.

Names follow one convention (``ix_``, ``uq_``, ``fk_``, ``pk_``), so migrations can name
constraints on both SQLite and PostgreSQL. Times are UTC, stored timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Float, Index, Integer, MetaData, String, Table
from sqlalchemy.types import TypeDecorator

__all__ = ["UtcDateTime", "audit_records", "metadata"]


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
)
Index(None, audit_records.c.at)
Index(None, audit_records.c.client_id, audit_records.c.at)
