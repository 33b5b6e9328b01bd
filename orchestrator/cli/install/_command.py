"""``orchestrator install``: register the orchestrator in an MCP client, or move a client's servers into it.

Owns the command: its parser and ``run``; the entry written into the client; the checks made
before anything is written (the config loads, the interpreter can import the orchestrator, the
client's file is not the config itself); the install flow and the ``--from`` flow, which imports
a client's servers into an ``orchestrator.yaml`` and leaves the single meta-connector entry in
the client (planned in full, the new config checked, before anything is written: ``--dry-run``
prints that plan); and everything the command prints.

The entry runs the interpreter running this command (``sys.executable``, absolute but not
resolved through symlinks, so a virtualenv's interpreter stays the virtualenv's) as
``python -m orchestrator serve --config <absolute path>``: it needs no ``PATH``, which GUI
clients start servers with a minimal version of.

Does not: know where clients keep their files or how to edit them in place (``_client_files``),
or how a client's entries become servers of an orchestrator config (``_migrate``); start servers
(``doctor`` does); or print or log a secret. Values under ``env`` and ``headers`` are masked in
everything printed, ``--dry-run`` output included. The orchestrator config it writes is
validated by ``orchestrator.config`` before anything is replaced.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from orchestrator._locations import format_problems
from orchestrator._masking import MASK
from orchestrator._version import NAME
from orchestrator.cli._subcommands import SubcommandAdder, add_config_option
from orchestrator.cli.install._client_files import (
    CLIENTS,
    Change,
    ClientName,
    JsonFile,
    apply_change,
    backup,
    client_config_path,
    home_dir,
    mask_secrets,
    plan_entry,
    secret_names,
    write_atomically,
)
from orchestrator.cli.install._migrate import TargetConfig, entry_problems, plan_import, yaml_dump
from orchestrator.config import find_config_path, load_config, translate_references
from orchestrator.errors import ConfigError, ConfigNotFoundError, OrchestratorError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping

__all__ = [
    "CLIENTS",
    "DEFAULT_ENTRY_NAME",
    "ClientName",
    "add_parser",
    "client_config_path",
    "mask_secrets",
    "meta_entry",
    "run",
]

DEFAULT_ENTRY_NAME = NAME

_TITLES: Mapping[ClientName, str] = {
    "claude-desktop": "Claude Desktop",
    "cursor": "Cursor",
    "claude-code": "Claude Code",
}
_NEXT_STEP: Mapping[ClientName, str] = {
    "claude-desktop": "Quit Claude Desktop completely (not just its window) and open it again.",
    "cursor": "Restart Cursor (or toggle the server in Settings > MCP).",
    "claude-code": "Start a new Claude Code session; `claude mcp list` shows the entry.",
}


# ------------------------------------------------------------------ entry


def meta_entry(client: ClientName, config: Path, python: str | None = None) -> dict[str, Any]:
    """The ``mcpServers`` entry that serves ``config`` over stdio.

    Args:
        client: Claude Code entries also carry ``"type": "stdio"``, as ``claude mcp add`` writes them.
        config: The orchestrator config; made absolute.
        python: The interpreter; default the running one.
    """
    command = python if python is not None else os.path.abspath(sys.executable)
    args = ["-m", "orchestrator", "serve", "--config", str(config.absolute())]
    entry: dict[str, Any] = {"command": command, "args": args}
    return {"type": "stdio", **entry} if client == "claude-code" else entry


def _is_meta_entry(entry: object) -> bool:
    """Whether an ``mcpServers`` entry runs ``orchestrator serve`` (ours, under any name)."""
    if not isinstance(entry, dict):
        return False
    fields = cast("dict[str, Any]", entry)
    args = [str(a) for a in cast("list[object]", fields.get("args") or []) if isinstance(a, str | int)]
    command = Path(str(fields.get("command", ""))).stem
    via_module = any(args[i : i + 2] == ["orchestrator", "serve"] for i in range(len(args)))
    return via_module or (command == "orchestrator" and args[:1] == ["serve"])


# ------------------------------------------------------------- validation


class _LenientEnv(dict[str, str]):
    """The environment, with every unset variable read as empty: checks structure, not the shell."""

    def __missing__(self, key: str) -> str:
        return ""

    def __contains__(self, key: object) -> bool:
        return True


def _validate_config(path: Path, warnings: list[str], *, text: str | None = None) -> None:
    """Load ``path`` (or ``text``, as ``path``) as the orchestrator will; unset ``${VAR}``s are warnings, not errors.

    The client starts the orchestrator with its own environment (and the entry's ``env``), so a
    variable missing from this shell may well be set there.

    Raises:
        ConfigError: The file is invalid whatever the environment.
    """

    try:
        load_config(path, text=text)
    except ConfigError as strict:
        try:
            load_config(path, _LenientEnv(os.environ), text=text)
        except ConfigError as lenient:
            raise ConfigError(str(path), lenient.problems) from None
        warnings += strict.problems


def _check_interpreter(python: str) -> str | None:
    """Why ``python -m orchestrator`` would fail when started from elsewhere, or ``None``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    try:
        done = subprocess.run(
            [python, "-c", "import orchestrator"],
            cwd=Path(python).anchor or "/",
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {python}: {exc}"
    if done.returncode != 0:
        return (
            f"{python} cannot import the orchestrator outside this folder; install the package "
            "(`pip install mcp-orchestrator`, or `pip install -e .` in a checkout) and run this command again"
        )
    return None


# ------------------------------------------------------------- the command


@dataclass(frozen=True, slots=True)
class _Options:
    client: ClientName | None
    from_client: ClientName | None
    config: str | None
    name: str
    config_path: str | None
    dry_run: bool
    force: bool

    @classmethod
    def of(cls, args: argparse.Namespace) -> _Options:
        return cls(
            client=args.client,
            from_client=args.from_client,
            config=args.config,
            name=args.name,
            config_path=args.config_path,
            dry_run=bool(args.dry_run),
            force=bool(args.force),
        )


@dataclass(slots=True)
class _Output:
    """Where messages go: stdout, except in a dry run, whose stdout is the resulting document."""

    dry_run: bool

    @property
    def stream(self) -> TextIO:
        return sys.stderr if self.dry_run else sys.stdout

    def say(self, message: str) -> None:
        print(message, file=self.stream)

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    def document(self, text: str) -> None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _resolve_client_path(options: _Options, client: ClientName) -> Path:
    return Path(options.config_path).expanduser().absolute() if options.config_path else client_config_path(client)


def _install(options: _Options, client: ClientName, out: _Output) -> int:
    config_path = find_config_path(Path(options.config) if options.config else None).resolve()
    warnings: list[str] = []
    _validate_config(config_path, warnings)
    python = os.path.abspath(sys.executable)
    if (problem := _check_interpreter(python)) is not None:
        if not options.dry_run:
            raise ConfigError(python, [problem])
        warnings.append(problem)
    file = JsonFile.read(_resolve_client_path(options, client))
    _refuse_same_file(config_path, file.path)
    change = plan_entry(file, options.name, meta_entry(client, config_path, python))
    for warning in warnings:
        out.warn(warning)
    return _finish(options, client, change, out, config_path)


def _refuse_same_file(config: Path, client_file: Path) -> None:
    """Refuse to make a client's own file the orchestrator's config: it would start itself.

    Raises:
        ConfigError: Both paths name the same file.
    """
    if config.resolve() == client_file.resolve():
        raise ConfigError(str(config), ["this is the client's own file; use --from to copy its servers out of it"])


def _finish(options: _Options, client: ClientName, change: Change, out: _Output, config_path: Path) -> int:
    title, path, name = _TITLES[client], change.file.path, options.name
    verbs = {"created": ("create", "created"), "added": ("add", "added"), "updated": ("update", "updated")}
    if change.action == "unchanged":
        out.say(f"{title}: nothing to do, {name!r} in {path} already serves {config_path}")
        if options.dry_run:
            out.document(change.file.style.dump(mask_secrets(change.document)))
        return 0
    what = f"{path} with the entry {name!r}" if change.action == "created" else f"the entry {name!r} in {path}"
    if options.dry_run:
        out.document(change.file.style.dump(mask_secrets(change.document)))
        out.say(f"dry run: would {verbs[change.action][0]} {what}; nothing written (env and headers values: {MASK})")
        return 0
    saved_to = apply_change(change)
    saved = f" (backup: {saved_to})" if saved_to is not None else ""
    out.say(f"{title}: {verbs[change.action][1]} {what}{saved}")
    out.say(f"  it runs: {sys.executable} -m orchestrator serve --config {config_path}")
    out.say(f"Next: {_NEXT_STEP[client]}")
    return 0


# ------------------------------------------------------------------ --from


@dataclass(frozen=True, slots=True)
class _Migration:
    """What ``install --from`` would write, worked out before anything is written.

    Attributes:
        target: The orchestrator config as it is now.
        new_text: Its text with the imported servers added.
        imported: The entries it gains (or, forced, has replaced), by server key.
        already: Keys it already holds the same way.
        warnings: What the user should know first: unset ``${VAR}``s, renamed keys.
        notes: What writing the target costs (comments not kept), told once it is written.
        change: The client's file with the imported entries replaced by the orchestrator's.
    """

    target: TargetConfig
    new_text: str
    imported: dict[str, Any]
    already: list[str]
    warnings: list[str]
    notes: list[str]
    change: Change


def _migrate(options: _Options, client: ClientName, out: _Output) -> int:
    file = JsonFile.read(_resolve_client_path(options, client), must_exist=True)
    target_path = Path(options.config or "orchestrator.yaml").expanduser().absolute()
    _refuse_same_file(target_path, file.path)
    target = TargetConfig.read(target_path)
    migration = _plan_migration(file, target, client, options)
    if migration is None:
        if target.text is None:
            raise ConfigError(str(file.path), [f"no servers to import, and {target_path} does not exist"])
        out.say(f"{_TITLES[client]}: no servers to import from {file.path} (already migrated?)")
        return _install(replace(options, config=str(target_path)), client, out)
    for warning in migration.warnings:
        out.warn(warning)
    if options.dry_run:
        _print_migration(migration, out)
    else:
        _apply_migration(migration, client, options.name, out)
    return 0


def _plan_migration(file: JsonFile, target: TargetConfig, client: ClientName, options: _Options) -> _Migration | None:
    """Work out what importing ``file``'s servers into ``target`` would write; ``None``: nothing to import.

    Reads (the environment, the files the new config names) but writes nothing.

    Raises:
        ConfigError: A server conflicts with one of the target's, an entry would not load as an
            orchestrator server, or the resulting config is invalid.
    """
    ours = tuple(k for k, v in file.servers.items() if k == options.name or _is_meta_entry(v))
    home = home_dir(os.environ, sys.platform)
    to_import = {k: translate_references(v, client, home) for k, v in file.servers.items() if k not in ours}
    if not to_import:
        return None
    servers = dict(target.servers)
    plan = plan_import(servers, to_import, force=options.force)
    if plan.conflicts:
        message = "already defined differently; rename it in either file, or use --force"
        conflicts = [(("servers", key), message) for key in plan.conflicts]
        raise ConfigError(str(target.path), format_problems(str(target.path), conflicts, {}))
    if problems := entry_problems(plan.imported):
        raise ConfigError(str(file.path), format_problems(str(file.path), problems, {}))
    servers.update(plan.imported)
    notes: list[str] = []
    new_text = target.render(servers, notes)
    warnings: list[str] = []
    _validate_config(target.path, warnings, text=new_text)
    if plan.renamed:
        warnings.append(f"server keys changed to fit [A-Za-z0-9_.-]: {', '.join(plan.renamed)}")
    change = plan_entry(file, options.name, meta_entry(client, target.path), drop=tuple(to_import))
    return _Migration(target, new_text, plan.imported, plan.already, warnings, notes, change)


def _print_migration(migration: _Migration, out: _Output) -> None:
    """The dry run's output: what the target gains and what the client's file becomes, secrets masked."""
    target, change = migration.target, migration.change
    out.say(f"dry run: would add to {target.path}:")
    out.document(yaml_dump({target.servers_key: mask_secrets(migration.imported)}))
    out.say(f"dry run: and {change.file.path} would become:")
    out.document(change.file.style.dump(mask_secrets(change.document)))
    out.say(f"nothing written (values under env and headers shown as {MASK})")


def _apply_migration(migration: _Migration, client: ClientName, name: str, out: _Output) -> None:
    """Write the target config, then the client's file, each after a backup, saying what was done."""
    title, target, imported = _TITLES[client], migration.target, migration.imported
    changed = target.text != migration.new_text
    target_backup = backup(target.path) if target.text is not None and changed else None
    if changed:
        write_atomically(target.path, migration.new_text)
    for note in migration.notes:
        out.warn(note)
    saved = f" (backup: {target_backup})" if target_backup else ""
    out.say(f"Imported {len(imported)} server(s) from {title} into {target.path}{saved}: {', '.join(imported)}")
    if migration.already:
        out.say(f"  already there, unchanged: {', '.join(migration.already)}")
    _secrets_notice(target.path, imported, out)
    client_backup = apply_change(migration.change)
    out.say(f"{title}: replaced them in {migration.change.file.path} by {name!r} (backup: {client_backup})")
    out.say(f"Check them all with: orchestrator doctor -c {_quoted(target.path)}")
    out.say(f"Next: {_NEXT_STEP[client]}")


def _secrets_notice(path: Path, imported: Mapping[str, Any], out: _Output) -> None:
    names = secret_names(imported)
    if not names:
        return
    out.warn(
        f"{path} now holds the secret values of: {'; '.join(names)} (copied as they were; not shown). "
        "Keep the file private, or replace each value by a ${VAR} reference and set VAR in the environment "
        "the client starts the orchestrator with (the entry's \"env\" in the client's config)."
    )
    try:
        loose = path.stat().st_mode & 0o077
    except OSError:
        return
    if loose:
        out.warn(f"{path} is readable by other users; consider `chmod 600 {_quoted(path)}`")


def _quoted(path: Path) -> str:
    text = str(path)
    return f'"{text}"' if re.search(r"\s", text) else text


# ------------------------------------------------------------------- command


def add_parser(subparsers: SubcommandAdder) -> None:
    """Register ``orchestrator install`` with the CLI's subcommands."""
    parser = subparsers.add_parser(
        "install",
        help="register the orchestrator in Claude Desktop, Cursor or Claude Code (or migrate into it)",
        description=(
            "Write one MCP server entry that runs `orchestrator serve` on your config into a client's config "
            "file (backed up first; other entries kept). With --from, first import the servers that client "
            "already lists into orchestrator.yaml, then leave only the orchestrator's entry there."
        ),
    )
    parser.add_argument("client", nargs="?", choices=CLIENTS, help="the client to register in")
    parser.add_argument(
        "--from",
        dest="from_client",
        choices=CLIENTS,
        metavar="CLIENT",
        help="import this client's servers into the orchestrator config, then register in it",
    )
    add_config_option(
        parser,
        "config file to serve (default: $ORCHESTRATOR_CONFIG, then ./orchestrator.yaml); "
        "with --from, the file to write or merge into (default ./orchestrator.yaml)",
    )
    parser.add_argument("--name", default=DEFAULT_ENTRY_NAME, help=f"entry name (default {DEFAULT_ENTRY_NAME})")
    parser.add_argument(
        "--config-path", metavar="PATH", help="the client's config file (default: its standard location)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the result instead of writing anything")
    parser.add_argument(
        "--force", action="store_true", help="with --from: replace servers of the same name in the orchestrator config"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``orchestrator install`` as parsed by ``add_parser``'s parser.

    Returns:
        0 when done (or nothing needed doing), 2 when refused: bad arguments, an invalid file, a
        conflicting server, an interpreter that cannot run the orchestrator.
    """
    options = _Options.of(args)
    out = _Output(options.dry_run)
    if options.client and options.from_client and options.client != options.from_client:
        print("error: --from migrates a client into itself; drop the positional client", file=sys.stderr)
        return 2
    if not options.name.strip():
        print("error: --name must not be empty", file=sys.stderr)
        return 2
    try:
        if options.from_client is not None:
            return _migrate(options, options.from_client, out)
        if options.client is None:
            print(f"error: name a client ({', '.join(CLIENTS)}) or --from CLIENT", file=sys.stderr)
            return 2
        return _install(options, options.client, out)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if isinstance(exc, ConfigNotFoundError) and not exc.named:
            print(
                "hint: write an orchestrator.yaml (see docs/first-minute.md), or import the servers a client "
                "already has: orchestrator install --from claude-desktop",
                file=sys.stderr,
            )
        return 2
    except OrchestratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
