"""Apps through the aggregator: who sees a tool only an app may call, and how an app's calls find their tool.

A client that renders apps says so by naming the MCP Apps extension (``io.modelcontextprotocol/ui``)
in its capabilities (the handshake's, or each 2026-07-28 request's). Such a client is a host: it
keeps app-only tools from its model itself and needs them listed, to let its apps call them. Any
other client's tool list is what its model sees, so app-only tools are left out of it and are not
callable by it (to that client they do not exist).

An app's own code calls tools by the names its server gave them; behind the aggregator they are
exposed under prefixed names. A client that renders apps may call an app-visible tool by its
server's own name while exactly one such tool it may use has that name.

Does not: decide what a tool's ``_meta`` says (``orchestrator.catalog``), check grants (the
server does, by exposed name, after the name is resolved here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.catalog import has_app, is_app_only, visibility
from orchestrator.errors import UnknownToolError

if TYPE_CHECKING:
    from collections.abc import Callable

    import mcp_types as types

    from orchestrator.catalog import Catalog

__all__ = ["AppTools"]


class AppTools:
    """The served tools as a model sees them, and app calls by their servers' own names.

    Worked out once per change of the served tools (compared by identity), not per request.
    """

    def __init__(self) -> None:
        self._served: tuple[types.Tool, ...] | None = None
        self._model: tuple[types.Tool, ...] = ()
        self._app_only: frozenset[str] = frozenset()
        self._with_apps = False
        self._catalog: Catalog | None = None
        self._by_original: dict[str, tuple[str, ...]] = {}

    def _update(self, served: tuple[types.Tool, ...]) -> None:
        if served is self._served:
            return
        app_only = frozenset(tool.name for tool in served if is_app_only(tool))
        self._model = tuple(tool for tool in served if tool.name not in app_only) if app_only else served
        self._app_only = app_only
        self._with_apps = bool(app_only) or any(has_app(tool) for tool in served)
        self._served = served

    def model_facing(self, served: tuple[types.Tool, ...]) -> tuple[types.Tool, ...]:
        """``served`` without the tools only an app may call (the same tuple while ``served`` is)."""
        self._update(served)
        return self._model

    def app_only(self, served: tuple[types.Tool, ...], name: str) -> bool:
        """Whether ``name`` is a served tool only an app may call."""
        self._update(served)
        return name in self._app_only

    def offers_apps(self, served: tuple[types.Tool, ...]) -> bool:
        """Whether any served tool links an app or is for apps only."""
        self._update(served)
        return self._with_apps

    @staticmethod
    def kept_in_search(tool: types.Tool) -> bool:
        """Whether search mode still lists ``tool`` to a client that renders apps.

        Its host renders a widget only for a tool it has listed, and keeps app-only tools from
        its model itself: neither costs the model a search.
        """
        return has_app(tool) or is_app_only(tool)

    def resolve(self, catalog: Catalog, name: str, allowed: Callable[[str], bool]) -> str | None:
        """The exposed tool an app means by its server's own tool name ``name``; ``None``: no such tool.

        Only tools an app may call (``visibility`` includes ``"app"``) and ``allowed`` lets
        through are candidates.

        Raises:
            UnknownToolError: Several candidates have that name (the error names them all).
        """
        if catalog is not self._catalog:
            by_original: dict[str, list[str]] = {}
            for mapping in catalog.mappings:
                if mapping.kind == "tool" and "app" in visibility(catalog.tool(mapping.exposed)):
                    by_original.setdefault(mapping.original, []).append(mapping.exposed)
            self._by_original = {original: tuple(names) for original, names in by_original.items()}
            self._catalog = catalog
        candidates = [exposed for exposed in self._by_original.get(name, ()) if allowed(exposed)]
        if len(candidates) > 1:
            raise UnknownToolError("tool", name, candidates)
        return candidates[0] if candidates else None
