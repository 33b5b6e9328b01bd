"""The merged catalogue: merge + naming + routing. Pure module: no I/O, no async.

Owns: merging the tools, prompts, resources and resource templates of every downstream
server into one catalogue; provider-safe exposed names (``^[a-zA-Z0-9_-]{1,max_length}$``,
unique, stable whatever the order of servers or tools); and the lookup tables that route an
exposed name or URI back to (server, original name or URI).

Does not: do any I/O, talk to a server, log, or await anything. Callers fetch the manifests
(``orchestrator.downstream``) and serve the result (``orchestrator.server``).
"""

from __future__ import annotations

from orchestrator.catalog._catalog import (
    EMPTY_CATALOG,
    Catalog,
    NameMapping,
    Route,
    ServerManifest,
    build_catalog,
)
from orchestrator.catalog._naming import NameNote, is_valid_name
from orchestrator.catalog._suggest import close_names

__all__ = [
    "EMPTY_CATALOG",
    "Catalog",
    "NameMapping",
    "NameNote",
    "Route",
    "ServerManifest",
    "build_catalog",
    "close_names",
    "is_valid_name",
]
