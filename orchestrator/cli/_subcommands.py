"""What the command modules (``_main``, ``_doctor``, ``_status``, ``install``) share of ``argparse``.

The options several commands take are defined here once, so ``-c`` and ``--json`` mean the
same everywhere; each command may word the help for what the option does there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import argparse

__all__ = ["CONFIG_HELP", "SubcommandAdder", "add_config_option", "add_json_option"]

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
