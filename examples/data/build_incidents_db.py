"""Build ``examples/data/incidents.sqlite``, the database behind ``examples.servers.incidents_db``.

Deterministic: the rows are literals below and the file is written in one transaction and
vacuumed, so rebuilding with the same SQLite library yields a byte-identical file (another
SQLite version may differ in header bytes only; ``iterdump()`` is identical everywhere).

The data tells one coherent story across the example servers: ``INC-1014`` (checkout, SEV1)
is still open at the reference time 2026-11-20T12:00:00Z and follows deploy 39 (checkout
2.15.0); the analytics server shows the matching latency/error spike and the tracker has
tickets linked to the same incidents.

Run from the repository root::

    python -m examples.data.build_incidents_db            # rewrites examples/data/incidents.sqlite
    python -m examples.data.build_incidents_db --output /tmp/incidents.sqlite
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["DEFAULT_OUTPUT", "SCHEMA", "build"]

DEFAULT_OUTPUT = Path(__file__).resolve().with_name("incidents.sqlite")

SCHEMA = """\
CREATE TABLE services (
    name TEXT PRIMARY KEY,
    team TEXT NOT NULL,
    tier INTEGER NOT NULL CHECK (tier BETWEEN 1 AND 3),
    repo TEXT NOT NULL
);
CREATE TABLE deploys (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL REFERENCES services(name),
    version TEXT NOT NULL,
    deployed_at TEXT NOT NULL,
    author TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('succeeded', 'failed', 'rolled_back'))
);
CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL REFERENCES services(name),
    severity TEXT NOT NULL CHECK (severity IN ('SEV1', 'SEV2', 'SEV3', 'SEV4')),
    title TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    resolved_at TEXT,
    summary TEXT NOT NULL
);
CREATE INDEX deploys_by_service_time ON deploys (service, deployed_at);
CREATE INDEX incidents_by_service_time ON incidents (service, opened_at);
"""

SERVICES: tuple[tuple[str, str, int, str], ...] = (
    ("auth", "identity", 1, "github.com/acme/auth-service"),
    ("checkout", "storefront", 1, "github.com/acme/checkout"),
    ("inventory", "supply-chain", 2, "github.com/acme/inventory"),
    ("notifications", "messaging", 3, "github.com/acme/notifier"),
    ("payments", "payments", 1, "github.com/acme/payments-gateway"),
    ("search", "discovery", 2, "github.com/acme/search-api"),
)

# (id, service, version, deployed_at, author, status)
DEPLOYS: tuple[tuple[int, str, str, str, str, str], ...] = (
    (1, "checkout", "2.12.0", "2026-10-23T10:05:00Z", "alice.nguyen", "succeeded"),
    (2, "payments", "4.7.1", "2026-10-23T14:20:00Z", "bruno.costa", "succeeded"),
    (3, "payments", "4.7.2", "2026-10-24T09:02:00Z", "bruno.costa", "succeeded"),
    (4, "payments", "4.7.3", "2026-10-24T11:30:00Z", "farah.haddad", "succeeded"),
    (5, "search", "1.30.0", "2026-10-25T16:45:00Z", "chen.wei", "succeeded"),
    (6, "search", "1.30.1", "2026-10-26T08:15:00Z", "chen.wei", "succeeded"),
    (7, "inventory", "0.18.0", "2026-10-27T13:10:00Z", "gus.olsen", "succeeded"),
    (8, "notifications", "5.1.0", "2026-10-28T10:40:00Z", "hana.sato", "succeeded"),
    (9, "auth", "3.3.0", "2026-10-29T07:55:00Z", "dana.kim", "succeeded"),
    (10, "auth", "3.3.1", "2026-10-29T09:05:00Z", "dana.kim", "succeeded"),
    (11, "checkout", "2.12.1", "2026-10-30T15:00:00Z", "eli.martin", "succeeded"),
    (12, "notifications", "5.1.1", "2026-10-31T11:25:00Z", "hana.sato", "failed"),
    (13, "notifications", "5.1.2", "2026-10-31T12:10:00Z", "hana.sato", "succeeded"),
    (14, "checkout", "2.13.0", "2026-11-02T09:30:00Z", "alice.nguyen", "rolled_back"),
    (15, "checkout", "2.13.1", "2026-11-02T13:45:00Z", "alice.nguyen", "succeeded"),
    (16, "inventory", "0.19.0", "2026-11-03T10:00:00Z", "gus.olsen", "succeeded"),
    (17, "search", "1.31.0", "2026-11-04T14:30:00Z", "chen.wei", "succeeded"),
    (18, "payments", "4.8.0", "2026-11-05T09:15:00Z", "farah.haddad", "succeeded"),
    (19, "auth", "3.4.0", "2026-11-06T16:20:00Z", "dana.kim", "succeeded"),
    (20, "notifications", "5.2.0", "2026-11-07T10:50:00Z", "hana.sato", "succeeded"),
    (21, "search", "1.32.0", "2026-11-09T08:30:00Z", "chen.wei", "rolled_back"),
    (22, "search", "1.32.1", "2026-11-09T12:00:00Z", "chen.wei", "succeeded"),
    (23, "checkout", "2.14.0", "2026-11-10T11:05:00Z", "eli.martin", "succeeded"),
    (24, "payments", "4.8.1", "2026-11-10T15:40:00Z", "bruno.costa", "succeeded"),
    (25, "auth", "3.4.1", "2026-11-11T09:20:00Z", "dana.kim", "succeeded"),
    (26, "inventory", "0.20.0", "2026-11-12T13:35:00Z", "gus.olsen", "failed"),
    (27, "inventory", "0.20.0", "2026-11-12T14:10:00Z", "gus.olsen", "succeeded"),
    (28, "notifications", "5.2.1", "2026-11-13T10:25:00Z", "hana.sato", "succeeded"),
    (29, "inventory", "0.20.1", "2026-11-14T08:45:00Z", "gus.olsen", "succeeded"),
    (30, "search", "1.33.0", "2026-11-15T11:00:00Z", "chen.wei", "succeeded"),
    (31, "notifications", "5.3.0", "2026-11-16T09:40:00Z", "farah.haddad", "succeeded"),
    (32, "checkout", "2.14.1", "2026-11-17T10:15:00Z", "alice.nguyen", "succeeded"),
    (33, "payments", "4.9.0", "2026-11-17T15:50:00Z", "bruno.costa", "succeeded"),
    (34, "payments", "4.9.1", "2026-11-18T12:20:00Z", "bruno.costa", "succeeded"),
    (35, "payments", "4.9.2", "2026-11-18T16:30:00Z", "farah.haddad", "succeeded"),
    (36, "inventory", "0.21.0", "2026-11-19T10:10:00Z", "gus.olsen", "succeeded"),
    (37, "search", "1.34.0", "2026-11-19T14:55:00Z", "chen.wei", "succeeded"),
    (38, "auth", "3.5.0", "2026-11-19T17:20:00Z", "dana.kim", "succeeded"),
    (39, "checkout", "2.15.0", "2026-11-20T07:52:00Z", "eli.martin", "succeeded"),
    (40, "notifications", "5.3.1", "2026-11-20T09:30:00Z", "hana.sato", "succeeded"),
)

# (id, service, severity, title, opened_at, resolved_at, summary)
INCIDENTS: tuple[tuple[str, str, str, str, str, str | None, str], ...] = (
    (
        "INC-1001",
        "payments",
        "SEV2",
        "Card authorization timeouts to acquirer",
        "2026-10-24T09:40:00Z",
        "2026-10-24T11:45:00Z",
        "payments 4.7.2 lowered the acquirer connection pool to 8; authorizations queued and 6% timed out. "
        "Fixed in 4.7.3 (pool back to 64).",
    ),
    (
        "INC-1002",
        "search",
        "SEV3",
        "Stale results after nightly index rebuild",
        "2026-10-26T10:05:00Z",
        "2026-10-26T13:30:00Z",
        "The index alias swap failed silently; queries hit the previous day's index. Alias swap now verified.",
    ),
    (
        "INC-1003",
        "auth",
        "SEV1",
        "Login failures after signing-key rotation",
        "2026-10-29T08:20:00Z",
        "2026-10-29T09:10:00Z",
        "auth 3.3.0 cached the JWKS for 24h, so tokens signed with the rotated key were rejected (38% of logins "
        "failed). Hotfix 3.3.1 refreshes the JWKS on unknown key id.",
    ),
    (
        "INC-1004",
        "notifications",
        "SEV3",
        "Daily email digest delayed by three hours",
        "2026-10-31T07:15:00Z",
        "2026-10-31T12:40:00Z",
        "A stuck batch worker held the digest lock. Lock now has a 15 minute lease.",
    ),
    (
        "INC-1005",
        "checkout",
        "SEV2",
        "Promo codes rejected for EU carts",
        "2026-11-02T10:05:00Z",
        "2026-11-02T11:20:00Z",
        "checkout 2.13.0 compared promo currency before VAT normalisation; EU carts failed validation. "
        "Rolled back, fixed in 2.13.1.",
    ),
    (
        "INC-1006",
        "inventory",
        "SEV3",
        "Stock counts drift for bundled SKUs",
        "2026-11-04T15:30:00Z",
        "2026-11-05T10:00:00Z",
        "Bundle decrements were applied per component and per bundle. Reconciliation job corrected 212 SKUs.",
    ),
    (
        "INC-1007",
        "payments",
        "SEV3",
        "Duplicate refund webhooks sent to merchants",
        "2026-11-06T13:10:00Z",
        "2026-11-06T17:45:00Z",
        "Webhook retries did not carry an idempotency key. Keys added; merchants notified.",
    ),
    (
        "INC-1008",
        "search",
        "SEV2",
        "p99 latency regression after analyzer change",
        "2026-11-09T09:10:00Z",
        "2026-11-09T10:05:00Z",
        "search 1.32.0 enabled an n-gram analyzer on product titles; p99 rose from 210ms to 1.4s. "
        "Rolled back; 1.32.1 limits n-grams to the autocomplete field.",
    ),
    (
        "INC-1009",
        "auth",
        "SEV4",
        "Password reset emails ignore user locale",
        "2026-11-11T11:00:00Z",
        "2026-11-12T09:30:00Z",
        "Locale header dropped between auth and notifications. Cosmetic; fixed in notifications 5.2.1.",
    ),
    (
        "INC-1010",
        "checkout",
        "SEV3",
        "Address validation provider returning 5xx",
        "2026-11-12T16:20:00Z",
        "2026-11-12T18:05:00Z",
        "Third-party outage. Checkout now skips validation after 2 failures and flags the order for review.",
    ),
    (
        "INC-1011",
        "inventory",
        "SEV2",
        "Reservation deadlocks under flash-sale load",
        "2026-11-14T19:00:00Z",
        "2026-11-14T20:30:00Z",
        "Reservations locked rows in SKU order in one path and cart order in another. Lock order unified in 0.21.0.",
    ),
    (
        "INC-1012",
        "notifications",
        "SEV3",
        "Push notifications delivered twice on Android",
        "2026-11-16T12:30:00Z",
        "2026-11-16T16:00:00Z",
        "notifications 5.3.0 registered the FCM token twice after app upgrade. Deduplicated by device id.",
    ),
    (
        "INC-1013",
        "payments",
        "SEV2",
        "Elevated 3-D Secure challenge failures",
        "2026-11-18T13:05:00Z",
        "2026-11-18T16:40:00Z",
        "payments 4.9.1 sent the browser-info block without the timezone field; issuers declined 3DS challenges "
        "(error rate up to 1.4%). Fixed in 4.9.2.",
    ),
    (
        "INC-1014",
        "checkout",
        "SEV1",
        "Checkout p99 latency above 2s and rising error rate",
        "2026-11-20T08:10:00Z",
        None,
        "Started 18 minutes after checkout 2.15.0. p99 ~2s, errors ~4%, mostly payments-client timeouts. "
        "Investigating; rollback candidate.",
    ),
    (
        "INC-1015",
        "search",
        "SEV3",
        "Autocomplete empty for non-ASCII prefixes",
        "2026-11-19T15:30:00Z",
        None,
        "Since search 1.34.0, prefixes with accents or CJK characters return no suggestions. Workaround: none.",
    ),
)


def build(output: Path) -> None:
    """Write the database to ``output``, replacing any existing file atomically.

    Raises:
        sqlite3.Error: If SQLite rejects the schema or a row.
        OSError: If ``output``'s directory is not writable.
    """
    temporary = output.with_name(output.name + ".tmp")
    temporary.unlink(missing_ok=True)
    connection = sqlite3.connect(temporary)
    try:
        with connection:
            connection.executescript(SCHEMA)
            connection.executemany("INSERT INTO services VALUES (?, ?, ?, ?)", SERVICES)
            connection.executemany("INSERT INTO deploys VALUES (?, ?, ?, ?, ?, ?)", DEPLOYS)
            connection.executemany("INSERT INTO incidents VALUES (?, ?, ?, ?, ?, ?, ?)", INCIDENTS)
        # VACUUM rewrites the file compactly, so the bytes depend only on the content.
        connection.execute("VACUUM")
    finally:
        connection.close()
    os.replace(temporary, output)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.data.build_incidents_db",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT}")
    args = parser.parse_args(argv)
    output: Path = args.output
    build(output)
    print(f"wrote {output} ({output.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
