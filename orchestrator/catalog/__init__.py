"""The merged catalogue: merge + naming + routing. Pure module: no I/O, no async.

Owns: merging the tools, prompts, resources and resource templates of every downstream
server into one catalogue; provider-safe exposed names (``^[a-zA-Z0-9_-]{1,max_length}$``,
unique, stable whatever the order of servers or tools); and the lookup tables that route an
exposed name or URI back to (server, original name or URI); and the exposed catalogue as one
document with its version (a digest of every exposed definition) and the diff of two; the
RFC 8785 canonical JSON that both the version and the pins hash; apps (MCP Apps and OpenAI
Apps SDK keys in ``_meta``): who may call a tool, and links that follow renamed resources.

Does not: do any I/O, talk to a server, log, or await anything. Callers fetch the manifests
(``orchestrator.downstream``) and serve the result (``orchestrator.server``).
"""

from __future__ import annotations

from orchestrator.catalog._apps import (
    APP_MIME_TYPE,
    UI_EXTENSION,
    has_app,
    is_app_only,
    relinked_result,
    visibility,
)
from orchestrator.catalog._canonical import VOLATILE_META_KEYS, canonical_json, without_volatile_meta
from orchestrator.catalog._catalog import (
    EMPTY_CATALOG,
    Catalog,
    NameMapping,
    Route,
    ServerManifest,
    build_catalog,
)
from orchestrator.catalog._catalogue_diff import DefinitionChange, diff_catalogues
from orchestrator.catalog._exposed import (
    CATALOGUE_FORMAT,
    DEFINITION_KINDS,
    VERSION_LENGTH,
    ExposedCatalogue,
    catalogue_digest,
    exposed_catalogue,
)
from orchestrator.catalog._naming import NameNote, is_valid_name
from orchestrator.catalog._suggest import close_names

__all__ = [
    "APP_MIME_TYPE",
    "CATALOGUE_FORMAT",
    "DEFINITION_KINDS",
    "EMPTY_CATALOG",
    "UI_EXTENSION",
    "VERSION_LENGTH",
    "VOLATILE_META_KEYS",
    "Catalog",
    "DefinitionChange",
    "ExposedCatalogue",
    "NameMapping",
    "NameNote",
    "Route",
    "ServerManifest",
    "build_catalog",
    "canonical_json",
    "catalogue_digest",
    "close_names",
    "diff_catalogues",
    "exposed_catalogue",
    "has_app",
    "is_app_only",
    "is_valid_name",
    "relinked_result",
    "visibility",
    "without_volatile_meta",
]
