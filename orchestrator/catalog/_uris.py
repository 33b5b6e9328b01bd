"""Exposed resource URIs and the matching of reads against resource templates.

A resource keeps its own URI unless another server exposes the same one; then each of the
clashing copies is exposed as ``{server}+{uri}`` and routed back by table. An app resource
(``ui://…``) keeps its scheme, which hosts look for: it becomes ``ui://{server}/…``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mcp.shared.uri_template import InvalidUriTemplate, UriTemplate

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["APP_SCHEME", "TemplateRoute", "assign_uris"]

_EXPRESSION = re.compile(r"\{[^}]*\}")

APP_SCHEME = "ui://"
"""The scheme of MCP Apps resources; hosts tell an app's HTML by it, so a rewrite keeps it."""


def _namespaced(server: str, uri: str, *, keep_app_scheme: bool) -> str:
    if keep_app_scheme and uri.startswith(APP_SCHEME):
        return f"{APP_SCHEME}{server}/{uri[len(APP_SCHEME) :]}"
    return f"{server}+{uri}"


def assign_uris(entries: Iterable[tuple[str, str]], *, keep_app_scheme: bool = False) -> dict[tuple[str, str], str]:
    """Give every (server, uri) a unique exposed URI, deterministically.

    A URI offered by one server only is exposed as is. A URI offered by several is exposed
    as ``{server}+{uri}`` for each of them (``ui://{server}/…`` for an app resource, with
    ``keep_app_scheme``); should that be taken too (a server really offers such a URI), the
    server prefix is repeated until the result is free.

    Args:
        entries: Unique (server, uri) pairs.
        keep_app_scheme: Namespace ``ui://`` URIs inside the scheme (resources; templates
            keep the plain prefix, which their matching relies on).

    Returns:
        (server, uri) -> exposed URI.
    """
    owners: defaultdict[str, list[str]] = defaultdict(list)
    for server, uri in entries:
        owners[uri].append(server)
    assigned = {(servers[0], uri): uri for uri, servers in owners.items() if len(servers) == 1}
    taken = set(assigned.values())
    for uri in sorted(u for u, servers in owners.items() if len(servers) > 1):
        for server in sorted(owners[uri]):
            exposed = _namespaced(server, uri, keep_app_scheme=keep_app_scheme)
            while exposed in taken:
                exposed = _namespaced(server, exposed, keep_app_scheme=keep_app_scheme)
            taken.add(exposed)
            assigned[server, uri] = exposed
    return assigned


@dataclass(frozen=True, slots=True)
class TemplateRoute:
    """An exposed resource template, able to map a concrete URI back to its server's own URI."""

    exposed: str
    server: str
    original: str
    parsed: UriTemplate | None  # None: not a template the RFC 6570 matcher accepts; exact match only

    @classmethod
    def build(cls, exposed: str, server: str, original: str) -> TemplateRoute:
        try:
            parsed = UriTemplate.parse(exposed)
        except InvalidUriTemplate:
            parsed = None
        return cls(exposed, server, original, parsed)

    @property
    def specificity(self) -> int:
        """Length of the literal text; the more literal, the more specific the template."""
        return len(_EXPRESSION.sub("", self.exposed))

    def original_uri(self, uri: str) -> str | None:
        """The URI the downstream knows for the concrete ``uri``, or ``None`` if it does not match."""
        prefix = self.exposed[: len(self.exposed) - len(self.original)]
        if not uri.startswith(prefix):
            return None
        if uri == self.exposed or (self.parsed is not None and self.parsed.match(uri) is not None):
            return uri[len(prefix) :]
        return None
