"""What the command modules (``_main``, ``_doctor``, ``_status``, ``_auth``, ``_audit``, ``install``) share.

The options several commands take are defined here once, so ``-c`` and ``--json`` mean the
same everywhere; each command may word the help for what the option does there. So are
reading the config ``-c`` names and opening its state database, and how an action's failure
becomes its message and exit status.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator import store as state_db
from orchestrator.config import OrchestratorConfig, find_config_path, load_config
from orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager

    from orchestrator.store import Store

__all__ = [
    "CONFIG_HELP",
    "CommandError",
    "SubcommandAdder",
    "add_config_option",
    "add_json_option",
    "config_of",
    "exit_status_of",
    "open_state_of",
]

CONFIG_HELP = "config file (default: $ORCHESTRATOR_CONFIG, then ./orchestrator.yaml)"


class SubcommandAdder(Protocol):
    """What ``ArgumentParser.add_subparsers()`` returns, as far as the command modules use it."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        """Add a subcommand parser."""
        ...


def add_config_option(parser: argparse.ArgumentParser, help: str = CONFIG_HELP) -> argparse.ArgumentParser:
    """Give ``parser`` the ``-c/--config FILE`` option (``args.config``, ``None`` when not given)."""
    parser.add_argument("-c", "--config", help=help)
    return parser


def add_json_option(parser: argparse.ArgumentParser, help: str) -> argparse.ArgumentParser:
    """Give ``parser`` the ``--json`` flag (``args.json``): machine-readable output instead of text."""
    parser.add_argument("--json", action="store_true", help=help)
    return parser


def config_of(option: str | None) -> OrchestratorConfig:
    """The config ``-c/--config`` names, else the one found by default, loaded and checked.

    Raises:
        ConfigError: No config file is found, or it has problems (every one listed).
    """
    return load_config(find_config_path(Path(option) if option else None))


def open_state_of(config: OrchestratorConfig) -> AbstractAsyncContextManager[Store]:
    """The state database of ``config`` (``state.url``), opened and migrated on entering.

    Raises:
        ConfigError: ``state.url`` is not a database URL this project knows.
    """
    return state_db.open_store(state_db.state_url(config.state, os.environ, str(config.source or "<config>")))


def acted_by(command: str) -> str:
    """Who did something from the command line, for the record: ``alice (orchestrator runs cancel)``."""
    try:
        return f"{getpass.getuser()} ({command})"
    except (OSError, KeyError):  # no user name in the environment nor the password database
        return command


class CommandError(Exception):
    """A mistake the user can fix (a name not found, an action refused): ``error: …``, exit status 1."""


def exit_status_of(action: Callable[[], int], mistakes: tuple[type[Exception], ...] = ()) -> int:
    """Run a subcommand's ``action``; its failure is printed as ``error: …`` and becomes its exit status.

    Args:
        action: The subcommand's work; returns its exit status.
        mistakes: Errors that, like ``CommandError``, are the user's to fix (status 1).

    Returns:
        ``action``'s status; 1 for a ``CommandError`` or one of ``mistakes``, 2 for another
        ``OrchestratorError`` (config, database), 130 when interrupted.
    """
    try:
        return action()
    except (CommandError, *mistakes) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OrchestratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
