"""``incidents-db``: an internal SQLite database of services, deploys and incidents, read-only.

Owns the ``query``, ``list_services`` and ``describe_schema`` tools over
``examples/data/incidents.sqlite`` (built by ``examples/data/build_incidents_db.py``).
Refuses every write: a query must be one ``SELECT``/``WITH`` statement, the file is opened
with ``mode=ro``, and an SQLite authorizer denies anything beyond reading tables and
calling functions (so ``WITH … DELETE``, ``ATTACH`` and ``PRAGMA`` fail too).

Run from the repository root::

    python -m examples.servers.incidents_db                      # stdio
    python -m examples.servers.incidents_db --transport http --port 8701
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Annotated

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from examples.servers._cli import run_server

__all__ = ["DEFAULT_DATABASE", "MAX_ROWS", "build_server", "main"]

DEFAULT_DATABASE = Path(__file__).resolve().parent.parent / "data" / "incidents.sqlite"
MAX_ROWS = 500
QUERY_TIME_LIMIT_SECONDS = 2.0

SqlValue = str | int | float | None

_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

# Only reading tables, running the SELECT itself, calling functions and recursive CTEs.
_ALLOWED_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
_LEADING_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)
_FIRST_WORD = re.compile(r"[A-Za-z]+")

_TABLE_DESCRIPTIONS: Mapping[str, str] = {
    "services": "One row per production service, with its owning team and criticality tier.",
    "deploys": "Every production deploy attempt, newest last; a service's current version is its latest "
    "'succeeded' deploy.",
    "incidents": "Production incidents; resolved_at is NULL while an incident is still open.",
}
_COLUMN_DESCRIPTIONS: Mapping[tuple[str, str], str] = {
    ("services", "name"): "Service name, e.g. 'checkout'; referenced by deploys.service and incidents.service.",
    ("services", "team"): "Owning team.",
    ("services", "tier"): "Criticality: 1 = customer-facing critical path, 3 = best effort.",
    ("services", "repo"): "Source repository.",
    ("deploys", "id"): "Deploy number, increasing with time.",
    ("deploys", "service"): "Deployed service (services.name).",
    ("deploys", "version"): "Semantic version deployed.",
    ("deploys", "deployed_at"): "UTC time, ISO 8601 'YYYY-MM-DDTHH:MM:SSZ' (sorts as text).",
    ("deploys", "author"): "Engineer who ran the deploy.",
    ("deploys", "status"): "'succeeded', 'failed' (never went live) or 'rolled_back'.",
    ("incidents", "id"): "Incident key, e.g. 'INC-1014'.",
    ("incidents", "service"): "Affected service (services.name).",
    ("incidents", "severity"): "'SEV1' (worst) to 'SEV4'.",
    ("incidents", "title"): "One-line title.",
    ("incidents", "opened_at"): "UTC time, ISO 8601 'YYYY-MM-DDTHH:MM:SSZ'.",
    ("incidents", "resolved_at"): "UTC time the incident was resolved, NULL while open.",
    ("incidents", "summary"): "What happened, cause and fix as known.",
}


class QueryResult(BaseModel):
    """Rows returned by a read-only SQL query."""

    columns: list[str] = Field(description="Column names in select order (duplicates get a ':2', ':3' suffix).")
    rows: list[dict[str, SqlValue]] = Field(description="One object per row, keyed by column name.")
    row_count: int = Field(description="Number of rows returned (at most 500).")
    truncated: bool = Field(description="True when the query matched more rows than were returned.")


class Service(BaseModel):
    """A production service."""

    name: str = Field(description="Service name, e.g. 'checkout'.")
    team: str = Field(description="Owning team.")
    tier: int = Field(description="Criticality tier: 1 = critical path, 3 = best effort.")
    repo: str = Field(description="Source repository.")
    open_incidents: int = Field(description="Incidents for this service with resolved_at NULL.")
    current_version: str | None = Field(description="Version of the latest succeeded deploy, if any.")


class ServiceList(BaseModel):
    """All services, by name."""

    services: list[Service]


class ColumnInfo(BaseModel):
    """One column of a table."""

    name: str
    type: str = Field(description="Declared SQLite type.")
    nullable: bool
    primary_key: bool
    references: str | None = Field(description="'table.column' this column refers to, if it is a foreign key.")
    description: str | None = None


class TableInfo(BaseModel):
    """One table of the database."""

    name: str
    description: str | None
    row_count: int
    columns: list[ColumnInfo]
    ddl: str = Field(description="The CREATE TABLE statement.")


class Schema(BaseModel):
    """The database schema, with descriptions and row counts."""

    tables: list[TableInfo]
    notes: list[str] = Field(description="Conventions that hold across tables.")


def _authorize(action: int, _arg1: str | None, _arg2: str | None, _database: str | None, _trigger: str | None) -> int:
    return sqlite3.SQLITE_OK if action in _ALLOWED_ACTIONS else sqlite3.SQLITE_DENY


def _first_keyword(sql: str) -> str:
    comments = _LEADING_COMMENTS.match(sql)
    word = _FIRST_WORD.match(sql, comments.end() if comments else 0)
    return word.group(0).upper() if word else ""


def _unique_columns(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique: list[str] = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}:{seen[name]}")
    return unique


def _cell(value: object) -> SqlValue:
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


class IncidentsDatabase:
    """Read-only access to the incidents SQLite file; a fresh connection per call, so it is thread-safe."""

    def __init__(self, path: Path) -> None:
        """Point at ``path``.

        Raises:
            FileNotFoundError: If ``path`` does not exist.
        """
        if not path.is_file():
            raise FileNotFoundError(
                f"incidents database not found at {path}; build it with 'python -m examples.data.build_incidents_db'"
            )
        self._uri = f"{path.resolve().as_uri()}?mode=ro"

    def _connect(self) -> closing[sqlite3.Connection]:
        # A sqlite3.Connection used as a context manager commits; closing() is what we want.
        return closing(sqlite3.connect(self._uri, uri=True))

    def query(self, sql: str, params: Mapping[str, SqlValue]) -> QueryResult:
        """Run one read-only statement.

        Raises:
            ToolError: If the statement is not a single SELECT/WITH, tries to write, fails in
                SQLite, or runs past the time limit.
        """
        if _first_keyword(sql) not in {"SELECT", "WITH"}:
            raise ToolError("only a single read-only SELECT or WITH statement is allowed")
        deadline = time.monotonic() + QUERY_TIME_LIMIT_SECONDS
        with self._connect() as connection:
            connection.set_authorizer(_authorize)
            # SQLite calls this every 10k VM steps; a non-zero return interrupts the query.
            connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            try:
                cursor = connection.execute(sql, dict(params))
                fetched = cursor.fetchmany(MAX_ROWS + 1)
            except sqlite3.ProgrammingError as exc:
                if "one statement" in str(exc):
                    raise ToolError("only a single read-only SELECT or WITH statement is allowed") from exc
                raise ToolError(f"SQL error: {exc}") from exc  # e.g. a :name placeholder without a value
            except sqlite3.DatabaseError as exc:
                if "not authorized" in str(exc):
                    raise ToolError(
                        "statement refused: only reading tables is allowed (no writes, PRAGMA or ATTACH); "
                        "use describe_schema for table information"
                    ) from exc
                if "interrupted" in str(exc):
                    raise ToolError(f"query exceeded the {QUERY_TIME_LIMIT_SECONDS:g}s time limit") from exc
                raise ToolError(f"SQLite error: {exc}") from exc
            columns = _unique_columns([d[0] for d in cursor.description or ()])
        rows = [dict(zip(columns, map(_cell, row), strict=True)) for row in fetched[:MAX_ROWS]]
        return QueryResult(columns=columns, rows=rows, row_count=len(rows), truncated=len(fetched) > MAX_ROWS)

    def services(self) -> ServiceList:
        """All services with their open-incident count and current version."""
        with self._connect() as connection:
            rows = connection.execute(
                """
                SELECT s.name, s.team, s.tier, s.repo,
                       (SELECT count(*) FROM incidents i WHERE i.service = s.name AND i.resolved_at IS NULL),
                       (SELECT d.version FROM deploys d WHERE d.service = s.name AND d.status = 'succeeded'
                        ORDER BY d.deployed_at DESC, d.id DESC LIMIT 1)
                FROM services s ORDER BY s.name
                """
            ).fetchall()
        return ServiceList(
            services=[
                Service(name=n, team=t, tier=tier, repo=r, open_incidents=o, current_version=v)
                for n, t, tier, r, o, v in rows
            ]
        )

    def schema(self) -> Schema:
        """Tables, columns, foreign keys and row counts."""
        tables: list[TableInfo] = []
        with self._connect() as connection:
            definitions = connection.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
            ).fetchall()
            for table, ddl in definitions:
                references = {
                    row[3]: f"{row[2]}.{row[4]}"
                    for row in connection.execute("SELECT * FROM pragma_foreign_key_list(?)", (table,))
                }
                columns = [
                    ColumnInfo(
                        name=name,
                        type=declared,
                        nullable=not not_null and not primary_key,
                        primary_key=bool(primary_key),
                        references=references.get(name),
                        description=_COLUMN_DESCRIPTIONS.get((table, name)),
                    )
                    for _cid, name, declared, not_null, _default, primary_key in connection.execute(
                        "SELECT * FROM pragma_table_info(?)", (table,)
                    )
                ]
                (row_count,) = connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()
                tables.append(
                    TableInfo(
                        name=table,
                        description=_TABLE_DESCRIPTIONS.get(table),
                        row_count=row_count,
                        columns=columns,
                        ddl=ddl,
                    )
                )
        return Schema(
            tables=tables,
            notes=[
                "Timestamps are UTC ISO 8601 text ('2026-11-20T08:10:00Z'); compare them as strings.",
                "The data's 'now' is 2026-11-20T12:00:00Z.",
            ],
        )


def build_server(database: Path = DEFAULT_DATABASE) -> MCPServer:
    """Create the ``incidents-db`` server over ``database``.

    Raises:
        FileNotFoundError: If ``database`` does not exist.
    """
    db = IncidentsDatabase(database)
    server = MCPServer(
        name="incidents-db",
        title="Incidents database",
        description="Read-only SQL access to the services, deploys and incidents database.",
        instructions=(
            "Internal database of production services, their deploys and incidents. Call describe_schema "
            "first, then query with one SELECT statement. Read-only."
        ),
        version="0.1.0",
    )

    @server.tool(name="query", title="Run a read-only SQL query", annotations=_READ_ONLY)
    def query(
        sql: Annotated[
            str,
            Field(
                min_length=1,
                max_length=10_000,
                description="One SQLite SELECT (or WITH … SELECT) statement. Use :name placeholders for params.",
            ),
        ],
        params: Annotated[
            dict[str, SqlValue] | None,
            Field(description='Values for :name placeholders in sql, e.g. {"service": "checkout"}.'),
        ] = None,
    ) -> QueryResult:
        """Run one read-only SQL query against the incidents database (SQLite dialect).

        Tables: services(name, team, tier, repo), deploys(id, service, version, deployed_at, author, status),
        incidents(id, service, severity, title, opened_at, resolved_at, summary). Timestamps are UTC ISO 8601
        text. Returns at most 500 rows; 'truncated' tells you when there were more. Anything other than a
        single SELECT/WITH statement (INSERT, UPDATE, DELETE, PRAGMA, ATTACH, several statements) is refused.
        """
        return db.query(sql, params or {})

    @server.tool(name="list_services", title="List services", annotations=_READ_ONLY)
    def list_services() -> ServiceList:
        """List every production service with its team, tier, repo, current version and open-incident count."""
        return db.services()

    @server.tool(name="describe_schema", title="Describe the database schema", annotations=_READ_ONLY)
    def describe_schema() -> Schema:
        """Describe the tables: columns with types, keys, foreign keys and meanings, row counts and CREATE DDL.

        Call this before writing a query.
        """
        return db.schema()

    return server


def main() -> None:
    """Run the server (stdio by default; ``--transport http --port N`` for HTTP on 127.0.0.1)."""
    run_server(build_server(), prog="python -m examples.servers.incidents_db", default_port=8701)


if __name__ == "__main__":
    main()
