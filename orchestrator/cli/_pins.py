"""``orchestrator pins``: what is pinned of each server, what changed, and approving it.

Without an action it lists, per server, the pinned identity, when and by whom it was pinned,
how many definitions are pinned, every pending change (with a field-by-field diff of what
the server now says) and what the definition checks found. ``approve SERVER [NAME...]``
makes pending changes the new pins; ``forget SERVER`` deletes a server's pins, so its next
listing pins it afresh. Each opens the state database of the config (``state.url``), so it
works while ``serve`` runs: a running orchestrator uses an approval on its next listing.

Exit status: 0 on success, 1 on a mistake in the request (an unknown server or name, each
with the close matches), 2 on a config or database error.

``--json`` prints one object::

    {"servers": [{"server": str,
                  "pinned": bool,                 # false: only findings are known
                  "identity": str | null, "pinned_at": str | null, "approved_by": str | null,
                  "definitions": int,
                  "pending_identity": str | null,
                  "pending": [{"kind": str, "name": str, "change": "added" | "changed" | "removed",
                               "fields": [str], "seen_at": str | null, "diff": [str]}],
                  "findings": [{"kind": str, "name": str, "check": str, "severity": str,
                                "field": str, "detail": str, "seen_at": str | null}]}],
     "unpinned": [str]}                           # configured servers never pinned yet
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, get_args

import anyio

from orchestrator import store as state_db
from orchestrator.catalog import close_names
from orchestrator.cli._subcommands import (
    CONFIG_HELP,
    CommandError,
    acted_by,
    add_config_option,
    add_json_option,
    config_of,
    exit_status_of,
    open_state_of,
)
from orchestrator.errors import StoreError
from orchestrator.trust import FingerprintKind, kind_word, report_pending, show_hidden

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orchestrator.cli._subcommands import SubcommandAdder
    from orchestrator.config import OrchestratorConfig
    from orchestrator.store import ServerPins, Store, StoredFinding
    from orchestrator.trust import ChangeReport

__all__ = ["add_parser", "parse_name", "run"]

_KINDS: tuple[str, ...] = get_args(FingerprintKind)


def add_parser(subparsers: SubcommandAdder) -> None:
    """Register ``orchestrator pins`` and its actions with the CLI's subcommands."""
    parser = subparsers.add_parser(
        "pins",
        help="show pinned servers, pending definition changes and check findings; approve or forget pins",
        description=(
            "Without an action: list, per server, its pinned identity and definitions, the changes waiting "
            "for approval (with what changed in each field) and what the definition checks found."
        ),
    )
    add_config_option(parser)
    parser.add_argument("--server", metavar="KEY", help="only this server")
    add_json_option(parser, "print one JSON object (see `orchestrator.cli._pins`)")
    actions = parser.add_subparsers(dest="pins_command", metavar="ACTION")

    approve = actions.add_parser(
        "approve",
        help="make pending changes the new pins: all of a server's, or only the named ones",
        description=(
            "Approve the pending changes of SERVER: all of them (and a changed identity), or only the "
            "definitions named. A name is the server's own name: tool:NAME, prompt:NAME, "
            "resource_template:NAME, or a bare NAME for whichever kinds have it pending."
        ),
    )
    approve.add_argument("server", metavar="SERVER", help="the server's key in the config")
    approve.add_argument("names", nargs="*", metavar="NAME", help="only these definitions (default: every change)")
    forget = actions.add_parser("forget", help="delete a server's pins; its next listing pins it afresh")
    forget.add_argument("server", metavar="SERVER", help="the server's key in the config")
    for action in (approve, forget):
        # SUPPRESS: an action's unset -c must not hide one given before the action.
        action.add_argument("-c", "--config", default=argparse.SUPPRESS, help=CONFIG_HELP)


def run(args: argparse.Namespace) -> int:
    """Run ``orchestrator pins`` as parsed by ``add_parser``'s parser."""
    return exit_status_of(lambda: _dispatch(args))


def _dispatch(args: argparse.Namespace) -> int:
    config = config_of(args.config)
    if args.pins_command == "approve":
        return anyio.run(_approve, config, args.server, args.names)
    if args.pins_command == "forget":
        return anyio.run(_forget, config, args.server)
    return anyio.run(_list, config, args.server, args.json)


async def _announce(store: Store, server: str) -> None:
    """Tell the servers serving from a PostgreSQL state database to look at the pins now."""
    try:
        await state_db.notify(store, "pins", {"server": server})
    except StoreError as exc:
        print(
            f"note: running servers could not be told at once ({exc}); they see it within trust.recheck",
            file=sys.stderr,
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _unknown_server(server: str, known: Sequence[str], config: OrchestratorConfig) -> CommandError:
    if server in config.servers:
        return CommandError(f"server {server!r} has no pins yet: it is pinned when serve, tools or call first lists it")
    message = f"no pinned server {server!r}"
    if suggestions := close_names(server, [*known, *config.servers]):
        message += f"; did you mean {', '.join(map(repr, suggestions))}?"
    return CommandError(message + " (see 'orchestrator pins')")


# list


@dataclass(frozen=True, slots=True)
class _ServerView:
    server: str
    pins: ServerPins | None
    changes: tuple[ChangeReport, ...]
    findings: tuple[StoredFinding, ...]

    def to_json(self) -> dict[str, Any]:
        pins = self.pins
        seen = {(item.kind, item.name): item.seen_at for item in pins.pending} if pins else {}
        return {
            "server": self.server,
            "pinned": pins is not None,
            "identity": pins.identity if pins else None,
            "pinned_at": _time(pins.pinned_at) if pins else None,
            "approved_by": pins.approved_by if pins else None,
            "definitions": len(pins.definitions) if pins else 0,
            "pending_identity": pins.pending_identity if pins else None,
            "pending": [
                {
                    "kind": change.kind,
                    "name": change.name,
                    "change": change.change,
                    "fields": [*change.fields],
                    "seen_at": _time(seen.get((change.kind, change.name))),
                    "diff": [*change.details],
                }
                for change in self.changes
            ],
            "findings": [
                {
                    "kind": item.kind,
                    "name": item.name,
                    "check": item.check,
                    "severity": item.severity,
                    "field": item.field,
                    "detail": item.detail,
                    "seen_at": _time(item.seen_at),
                }
                for item in self.findings
            ],
        }

    def text(self) -> list[str]:
        pins = self.pins
        lines = [self.server]
        if pins is None:
            lines.append("  not pinned yet")
        else:
            by = f" by {pins.approved_by}" if pins.approved_by else " on first sight"
            when = pins.pinned_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            lines.append(f"  identity: {show_hidden(pins.identity)}")
            lines.append(f"  pinned {when}{by}: {_counted(pins)}")
            if pins.pending_identity is not None:
                lines.append(f"  pending identity: {show_hidden(pins.pending_identity)}")
            if self.changes:
                lines.append(f"  pending changes ({len(self.changes)}):")
                lines += [f"    {line}" for change in self.changes for line in change.lines()]
            if self.changes or pins.pending_identity is not None:
                lines.append(f"  approve with: orchestrator pins approve {self.server}")
            elif not self.findings:
                lines.append("  no pending changes")
        if self.findings:
            lines.append(f"  findings ({len(self.findings)}):")
            lines += [f"    {_finding_line(item)}" for item in self.findings]
        return lines


def _counted(pins: ServerPins) -> str:
    counts: dict[str, int] = defaultdict(int)
    for item in pins.definitions:
        counts[item.kind] += 1
    if not counts:
        return "no definitions"
    parts = [f"{counts[kind]} {kind_word(kind)}{'s' if counts[kind] != 1 else ''}" for kind in _KINDS]
    parts += [f"{count} {kind}" for kind, count in counts.items() if kind not in _KINDS]
    return ", ".join(part for part in parts if not part.startswith("0 "))


def _finding_line(item: StoredFinding) -> str:
    where = f"{kind_word(item.kind)} {show_hidden(item.name)!r} {show_hidden(item.field)}"
    return f"[{item.severity}] {item.check}: {where}: {show_hidden(item.detail)}"


async def _views(config: OrchestratorConfig, server: str | None) -> tuple[list[_ServerView], list[str]]:
    async with open_state_of(config) as store:
        pins = await state_db.list_pins(store.engine)
        findings = await state_db.list_findings(store.engine, server)
    by_server = {item.server: item for item in pins}
    found: dict[str, list[StoredFinding]] = defaultdict(list)
    for item in findings:
        found[item.server].append(item)
    keys = sorted(by_server.keys() | found.keys())
    if server is not None:
        if server not in keys:
            raise _unknown_server(server, keys, config)
        keys = [server]
    views = [
        _ServerView(
            key,
            by_server.get(key),
            tuple(report_pending(by_server[key])) if key in by_server else (),
            tuple(found.get(key, ())),
        )
        for key in keys
    ]
    unpinned = [key for key, spec in config.servers.items() if not spec.disabled and key not in by_server]
    return views, ([] if server is not None else sorted(unpinned))


async def _list(config: OrchestratorConfig, server: str | None, as_json: bool) -> int:
    views, unpinned = await _views(config, server)
    if as_json:
        document = {"servers": [view.to_json() for view in views], "unpinned": unpinned}
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    if not views:
        print("nothing is pinned yet: each server is pinned when serve, tools or call first lists it")
    for index, view in enumerate(views):
        if index:
            print()
        print("\n".join(view.text()))
    if unpinned:
        print(f"\nnot pinned yet: {', '.join(unpinned)}")
    return 0


# approve


def parse_name(text: str) -> tuple[str | None, str]:
    """A ``NAME`` of ``pins approve``: ``(kind, name)``, the kind ``None`` for a bare name.

    ``tool:NAME``, ``prompt:NAME`` and ``resource_template:NAME`` name one kind; anything else
    is a bare name (a name may hold a colon itself, as in ``ns:search``).
    """
    kind, sep, name = text.partition(":")
    if sep and kind in _KINDS and name:
        return kind, name
    return None, text


def _wanted(pins: ServerPins, names: Sequence[str]) -> list[tuple[str, str]]:
    pending = [(item.kind, item.name) for item in pins.pending]
    wanted: list[tuple[str, str]] = []
    problems: list[str] = []
    for text in names:
        kind, name = parse_name(text)
        matches = [key for key in pending if key[1] == name and (kind is None or key[0] == kind)]
        if matches:
            wanted += [key for key in matches if key not in wanted]
            continue
        what = f"{kind}:{name}" if kind else name
        problem = f"{what!r} has no pending change on {pins.server!r}"
        if suggestions := close_names(name, [item_name for _kind, item_name in pending]):
            problem += f"; did you mean {', '.join(map(repr, suggestions))}?"
        elif not pending:
            problem += " (nothing of it is pending)"
        problems.append(problem)
    if problems:
        raise CommandError("; ".join(problems) + "; nothing approved")
    return wanted


async def _approve(config: OrchestratorConfig, server: str, names: Sequence[str]) -> int:
    async with open_state_of(config) as store:
        pins = await state_db.read_pins(store.engine, server)
        if pins is None:
            known = [item.server for item in await state_db.list_pins(store.engine)]
            raise _unknown_server(server, known, config)
        wanted = _wanted(pins, names) if names else None
        reports = {(change.kind, change.name): change for change in report_pending(pins)}
        by = acted_by("orchestrator pins approve")
        approved = await state_db.approve_pins(store.engine, server, wanted, at=_now(), approved_by=by)
        if approved or pins.pending_identity is not None:
            await _announce(store, server)
    identity = pins.pending_identity if wanted is None else None
    if not approved and identity is None:
        print(f"nothing pending for {server!r}: its pins stand as they are", file=sys.stderr)
        return 0
    if identity is not None:
        print(f"approved for {server}: identity {show_hidden(identity)}")
    for change in approved:
        report = reports.get((change.kind, change.name))
        summary = report.summary if report else f"{change.kind} {change.name!r}"
        print(f"approved for {server}: {summary}")
    if wanted is not None and len(approved) < len(wanted):
        # Another process approved or replaced some between the read and the approval.
        print("note: some changes were no longer pending; see 'orchestrator pins'", file=sys.stderr)
    return 0


# forget


async def _forget(config: OrchestratorConfig, server: str) -> int:
    async with open_state_of(config) as store:
        if not await state_db.forget_pins(store.engine, server):
            known = [item.server for item in await state_db.list_pins(store.engine)]
            raise _unknown_server(server, known, config)
        await _announce(store, server)
    print(f"forgot the pins of {server}: its next listing pins it afresh", file=sys.stderr)
    return 0
