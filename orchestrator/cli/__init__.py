"""The command line: ``orchestrator …`` and ``python -m orchestrator``.

The face of the project and a thin user of the public ``Aggregator`` API: it parses
arguments, configures logging (to stderr: stdout belongs to the MCP protocol when serving
over stdio) and tracing, and prints. Subcommands with a room of their own live beside
``_main``: ``doctor``, ``status``, ``traces merge``, the run view, and ``install/`` (client files, migration).
Nothing below this package imports it.
"""

from __future__ import annotations

from orchestrator.cli._main import main

__all__ = ["main"]
