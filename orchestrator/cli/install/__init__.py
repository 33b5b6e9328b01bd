"""``orchestrator install``: register the orchestrator with an MCP client, or import a client's servers.

Owns the command (``add_parser``, ``run``), the clients' own files (where each client keeps
them, reading and editing them in place, ``_client_files``) and turning a client's entries
into servers of an orchestrator config (``_migrate``).
"""

from __future__ import annotations

from orchestrator.cli.install._command import add_parser, run

__all__ = ["add_parser", "run"]
