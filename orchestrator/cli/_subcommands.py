"""What the command modules (``_doctor``, ``_install``, ``_status``) need of ``argparse``."""

from __future__ import annotations

import argparse
from typing import Any, Protocol

__all__ = ["SubcommandAdder"]


class SubcommandAdder(Protocol):
    """What ``ArgumentParser.add_subparsers()`` returns, as far as the command modules use it."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        """Add a subcommand parser."""
        ...
