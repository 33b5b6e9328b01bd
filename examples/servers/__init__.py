"""Offline, deterministic example MCP servers, each runnable as ``python -m examples.servers.<name>``.

- ``incidents_db``: a read-only SQLite database of services, deploys and incidents.
- ``analytics``: synthetic but deterministic service metrics and error signatures.
- ``tracker``: an in-memory project tracker with tickets, comments, resources and a prompt.

They use ``from __future__ import annotations``: the SDK evaluates the string annotations of
tool, resource and prompt functions with ``inspect.signature(eval_str=True)`` against the
module's globals, so every name an annotation uses must be a module-level runtime import
(never one under ``TYPE_CHECKING``, never a local).
"""
