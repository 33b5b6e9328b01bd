"""``orchestrator traces merge``: several Jaeger-JSON trace files made into one upload.

Each stdio server writes its own file when the file exporter is on; ``serve`` and the
one-shot commands merge them at shutdown, and this command does it by hand (say, after a
crash), so the Jaeger UI shows the whole cross-process tree from one file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.telemetry import merge_jaeger_files

if TYPE_CHECKING:
    import argparse

    from orchestrator.cli._subcommands import SubcommandAdder

__all__ = ["add_parser", "run"]


def add_parser(subparsers: SubcommandAdder) -> None:
    """Register ``orchestrator traces merge`` with the CLI's subcommands."""
    parser = subparsers.add_parser("traces", help="work with Jaeger-JSON trace files")
    actions = parser.add_subparsers(dest="traces_command", required=True, metavar="ACTION")
    merge = actions.add_parser(
        "merge",
        help="merge trace files into one the Jaeger UI opens",
        description=(
            "Merge Jaeger-JSON trace files (the aggregator's and its servers') into OUT, spans of one trace "
            "together. OUT may be one of the inputs."
        ),
    )
    merge.add_argument("out", metavar="OUT", help="the file to write")
    merge.add_argument("inputs", nargs="+", metavar="IN", help="trace files to merge (missing ones are skipped)")


def run(args: argparse.Namespace) -> int:
    """Run ``traces merge``; exit status 1 when a file cannot be read or written."""
    out = Path(args.out)
    try:
        count = merge_jaeger_files([Path(p) for p in args.inputs], out)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {count} trace(s) to {out}", file=sys.stderr)
    return 0
