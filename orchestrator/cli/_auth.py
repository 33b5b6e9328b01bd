"""``orchestrator auth``: the owner's password, and the OAuth clients of the embedded server.

``set-password`` sets the password the consent page asks for; ``clients`` lists who
registered and what each may use; ``revoke`` takes everything from a client (it must be
approved again); ``grants`` shows, sets or edits (in ``$EDITOR``) what a client may use.
Each opens the state database of the config (``state.url``), so it works while ``serve``
runs, and against the PostgreSQL database several replicas share.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import anyio
import yaml

from orchestrator import store as state_db
from orchestrator.auth._owner import MIN_PASSWORD_LENGTH, PasswordTooShortError, set_password
from orchestrator.cli._subcommands import (
    CommandError,
    add_config_option,
    add_json_option,
    config_of,
    exit_status_of,
    open_state_of,
)
from orchestrator.config import GRANT_SELECTOR_PATTERN

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from orchestrator.cli._subcommands import SubcommandAdder
    from orchestrator.config import OrchestratorConfig
    from orchestrator.store import StoredClient

__all__ = ["add_parser", "run"]

_SELECTOR = re.compile(GRANT_SELECTOR_PATTERN)
_SELECTOR_HELP = "'*' (everything), 'server:KEY' (all of one server) or 'tool:NAME' (one exposed tool)"
_EDIT_HEADER = """\
# What {client} may use, one selector a line: {help}.
# Save and quit to apply; an empty list takes everything away. Lines starting with # are ignored.
"""


def add_parser(subparsers: SubcommandAdder) -> None:
    """Register ``orchestrator auth`` and its actions with the CLI's subcommands."""
    parser = subparsers.add_parser("auth", help="owner password and OAuth clients of the embedded server")
    actions = parser.add_subparsers(dest="auth_command", required=True, metavar="ACTION")

    password = add_config_option(
        actions.add_parser("set-password", help="set the owner password the consent page asks for")
    )
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin (scripts)"
    )

    clients = add_config_option(actions.add_parser("clients", help="list registered clients and their grants"))
    add_json_option(clients, "print the clients as JSON")

    revoke = add_config_option(
        actions.add_parser("revoke", help="revoke a client's tokens and grant (it must be approved again)")
    )
    revoke.add_argument("client", metavar="CLIENT", help="the client id (see 'auth clients')")

    grants = add_config_option(actions.add_parser("grants", help="show, set or edit what a client may use"))
    grants.add_argument("client", metavar="CLIENT", help="the client id (see 'auth clients')")
    change = grants.add_mutually_exclusive_group()
    change.add_argument("--set", nargs="+", metavar="SELECTOR", help=f"replace the grant: {_SELECTOR_HELP}")
    change.add_argument("--edit", action="store_true", help="edit the grant in $EDITOR (a YAML list)")
    add_json_option(grants, "print the grant as JSON")


def run(args: argparse.Namespace) -> int:
    """Run one ``auth`` action; 0 on success, 1 on a mistake in the request, 2 on config or database errors."""
    return exit_status_of(lambda: _dispatch(args))


def _dispatch(args: argparse.Namespace) -> int:
    # The config first: a mistake in it shows before a password is asked for.
    config = config_of(args.config)
    if args.auth_command == "set-password":
        password = _read_password(args.password_stdin)
        anyio.run(_set_password, config, password)
        print("owner password set", file=sys.stderr)
        return 0
    if args.auth_command == "clients":
        return anyio.run(_clients, config, args.json)
    if args.auth_command == "revoke":
        return anyio.run(_revoke, config, args.client)
    return anyio.run(_grants, config, args.client, args.set, args.edit, args.json)


def _now() -> datetime:
    return datetime.now(UTC)


# set-password


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("New owner password: ")
        if getpass.getpass("Again: ") != password:
            raise CommandError("the two passwords differ; nothing changed")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise CommandError(f"the owner password needs at least {MIN_PASSWORD_LENGTH} characters; nothing changed")
    return password


async def _set_password(config: OrchestratorConfig, password: str) -> None:
    async with open_state_of(config) as store:
        try:
            await set_password(store, password, _now())
        except PasswordTooShortError as exc:
            raise CommandError(str(exc)) from None


# clients


def _redirect_hosts(client: StoredClient) -> list[str]:
    uris: Any = client.registration.get("redirect_uris") or []
    hosts = {urlsplit(str(uri)).hostname or str(uri) for uri in uris}
    return sorted(hosts)


def _status(client: StoredClient) -> str:
    if client.grant is not None:
        return "approved"
    return "revoked" if client.revoked_at is not None else "not approved"


def _as_json(client: StoredClient) -> dict[str, Any]:
    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None

    return {
        "client_id": client.client_id,
        "name": client.registration.get("client_name"),
        "origin": client.origin,
        "redirect_uris": client.registration.get("redirect_uris") or [],
        "status": _status(client),
        "grant": list(client.grant) if client.grant is not None else None,
        "created_at": when(client.created_at),
        "granted_at": when(client.granted_at),
        "revoked_at": when(client.revoked_at),
    }


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


async def _clients(config: OrchestratorConfig, as_json: bool) -> int:
    async with open_state_of(config) as store:
        clients = await state_db.list_clients(store.engine)
    if as_json:
        print(json.dumps([_as_json(client) for client in clients], indent=2))
        return 0
    if not clients:
        print("no OAuth clients yet", file=sys.stderr)
        return 0
    rows = [("CLIENT", "NAME", "REDIRECTS TO", "STATUS", "GRANT", "REGISTERED")]
    for client in clients:
        grant = ", ".join(client.grant) if client.grant else ("nothing" if client.grant is not None else "-")
        rows.append(
            (
                client.client_id,
                str(client.registration.get("client_name") or "-"),
                ", ".join(_redirect_hosts(client)) or "-",
                _status(client),
                grant,
                client.created_at.strftime("%Y-%m-%d %H:%M"),
            )
        )
    print(_table(rows))
    return 0


# revoke


async def _revoke(config: OrchestratorConfig, client_id: str) -> int:
    async with open_state_of(config) as store:
        if not await state_db.revoke_client(store.engine, client_id, _now()):
            raise CommandError(f"no client {client_id!r} (see 'orchestrator auth clients')")
    print(f"revoked {client_id}: its tokens and grant are gone; it must be approved again", file=sys.stderr)
    return 0


# grants


def _checked(selectors: Sequence[str], where: Sequence[str]) -> list[str]:
    problems = [
        f"{place}: {selector!r} is not a grant selector; use {_SELECTOR_HELP}"
        for selector, place in zip(selectors, where, strict=True)
        if not _SELECTOR.fullmatch(selector)
    ]
    if problems:
        raise CommandError("\n".join(["the grant was not changed:", *problems]))
    return list(selectors)


def _line(node: yaml.Node) -> int:
    return int(cast("Any", node.start_mark).line) + 1


def _parse_edited(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    try:
        node = cast("yaml.Node | None", yaml.compose(text, Loader=yaml.SafeLoader))  # pyright: ignore[reportUnknownMemberType]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise CommandError(f"the grant was not changed:\n{path}{line}: not YAML") from None
    if node is None:
        return []
    if not isinstance(node, yaml.SequenceNode):
        raise CommandError(f"the grant was not changed:\n{path}:{_line(node)}: expected a list")
    selectors: list[str] = []
    places: list[str] = []
    for item in cast("list[yaml.Node]", node.value):
        place = f"{path}:{_line(item)}"
        if not isinstance(item, yaml.ScalarNode):
            raise CommandError(f"the grant was not changed:\n{place}: expected a selector, one a line")
        selectors.append(str(item.value))
        places.append(place)
    return _checked(selectors, places)


def _edit(client_id: str, current: Sequence[str]) -> list[str]:
    editor = shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")
    with tempfile.TemporaryDirectory(prefix="orchestrator-grant-") as folder:
        path = Path(folder) / "grant.yaml"
        body = yaml.safe_dump(list(current), default_flow_style=False) if current else "[]\n"
        path.write_text(_EDIT_HEADER.format(client=client_id, help=_SELECTOR_HELP) + body, encoding="utf-8")
        try:
            finished = subprocess.run([*editor, str(path)], check=False)
        except OSError as exc:
            raise CommandError(f"cannot start the editor {editor[0]!r}: {exc.strerror}") from None
        if finished.returncode != 0:
            raise CommandError(f"the editor exited with status {finished.returncode}; the grant was not changed")
        return _parse_edited(path)


async def _grants(
    config: OrchestratorConfig, client_id: str, selectors: list[str] | None, edit: bool, as_json: bool
) -> int:
    async with open_state_of(config) as store:
        client = await state_db.find_client(store.engine, client_id)
        if client is None:
            raise CommandError(f"no client {client_id!r} (see 'orchestrator auth clients')")
        new: list[str] | None = None
        if selectors is not None:
            new = _checked(selectors, [f"--set {selector}" for selector in selectors])
        elif edit:
            new = await anyio.to_thread.run_sync(_edit, client_id, client.grant or ())
        if new is not None:
            await state_db.set_grant(store.engine, client_id, new, _now())
            client = await state_db.find_client(store.engine, client_id) or client
    grant = list(client.grant) if client.grant is not None else None
    if as_json:
        print(json.dumps({"client_id": client_id, "grant": grant}, indent=2))
    elif grant is None:
        print(f"{client_id} holds no grant ({_status(client)})")
    else:
        print("\n".join(grant) if grant else f"{client_id} may use nothing")
    return 0
