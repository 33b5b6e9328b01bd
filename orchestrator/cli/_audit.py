"""``orchestrator audit``: the audit log read back from the state database.

Opens the store the config's ``state.url`` names (the default state file when unset) and
prints the records that match, oldest first: the last ``--limit`` of them. Text is a table
for a person; ``--json`` prints JSON Lines, one object per record, for ``jq`` and log tools.
A record holds the arguments' shape and hash, never their values, so nothing printed here
is secret. Exit status: 0 (also when nothing matches), 2 for a bad option, config or database.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio

from orchestrator import store as state_db
from orchestrator.cli._subcommands import add_config_option, add_json_option, config_of, open_state_of
from orchestrator.config import parse_duration
from orchestrator.errors import OrchestratorError, UsageError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from orchestrator.cli._subcommands import SubcommandAdder
    from orchestrator.store import AuditRecord

__all__ = ["add_parser", "parse_since", "render_records", "run"]

DEFAULT_LIMIT = 100


def add_parser(subparsers: SubcommandAdder) -> None:
    """Register ``orchestrator audit`` with the CLI's subcommands."""
    parser = subparsers.add_parser(
        "audit",
        help="show the audit log: who called which tool, when, and how it went",
        description=(
            "Print the audit log of the state database (state.url in the config): one record per tool call "
            "and per workflow step, with the caller, the tool and the downstream tool, the outcome, the "
            "duration and the trace id. Arguments are recorded only as their shape and a hash."
        ),
    )
    add_config_option(parser)
    parser.add_argument(
        "--since",
        metavar="DURATION|TIME",
        help="only records from this long ago (30m, 24h, 7d) or from this ISO 8601 time on (local time unless zoned)",
    )
    parser.add_argument("--principal", metavar="CLIENT_ID", help="only the records of this client id")
    parser.add_argument("--tool", metavar="NAME", help="only the records of this exposed tool or composite")
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"the last N records that match (default {DEFAULT_LIMIT})",
    )
    add_json_option(parser, "one JSON object per line (JSON Lines) instead of a table")


def parse_since(text: str, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> datetime:
    """The time ``--since`` means: a duration back from now, or an ISO 8601 time.

    A time without a zone is local time.

    Raises:
        UsageError: ``text`` is neither.
    """
    try:
        return now() - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"expected a duration such as 30m, 24h or 7d, or an ISO 8601 time such as 2026-12-06T12:00Z, got {text!r}",
            "--since",
        ) from None
    return moment.astimezone(UTC) if moment.tzinfo is None else moment


def _principal(record: AuditRecord) -> str:
    if record.client_id is None:
        return "owner" if record.subject is None else record.subject
    return record.client_id if record.subject is None else f"{record.client_id} ({record.subject})"


def _target(record: AuditRecord) -> str:
    text = record.tool
    if record.server is not None:
        text += f" -> {record.server}/{record.downstream_tool or '?'}"
    if record.step_id is not None:
        text += f" [step {record.step_id}]"
    return text


def _duration(milliseconds: float) -> str:
    return f"{milliseconds:.1f} ms" if milliseconds < 1000 else f"{milliseconds / 1000:.2f} s"


def render_records(records: list[AuditRecord]) -> str:
    """The records as a table for a terminal, times in UTC."""
    header = ("TIME (UTC)", "PRINCIPAL", "TOOL -> SERVER/TOOL", "OUTCOME", "DURATION", "TRACE")
    rows = [
        (
            record.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            _principal(record),
            _target(record),
            record.outcome,
            _duration(record.duration_ms),
            record.trace_id or "-",
        )
        for record in records
    ]
    table = [header, *rows]
    widths = [max(len(row[column]) for row in table) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in table]
    return "\n".join(lines) + "\n"


def _as_json(record: AuditRecord) -> dict[str, Any]:
    fields = asdict(record)
    fields["at"] = record.at.astimezone(UTC).isoformat()
    return fields


async def _read(args: argparse.Namespace) -> list[AuditRecord]:
    async with open_state_of(config_of(args.config)) as store:
        return await state_db.read_audit(
            store.engine,
            since=parse_since(args.since) if args.since is not None else None,
            client_id=args.principal,
            tool=args.tool,
            limit=args.limit,
            latest=True,
        )


def run(args: argparse.Namespace) -> int:
    """Run ``orchestrator audit`` as parsed by ``add_parser``'s parser."""
    try:
        if args.limit < 1:
            raise UsageError(f"must be at least 1, got {args.limit}", "--limit")
        if args.since is not None:
            parse_since(args.since)  # a bad option is told before the database is opened
        records = anyio.run(_read, args)
    except OrchestratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        for record in records:
            print(json.dumps(_as_json(record), ensure_ascii=False))
    elif records:
        sys.stdout.write(render_records(records))
    else:
        print("no audit records match", file=sys.stderr)
    return 0
