"""Apps behind the catalogue: the MCP Apps extension's and the OpenAI Apps SDK's keys in ``_meta``.

A tool may link an HTML resource that a host renders as an interactive app (a widget): MCP
Apps (``io.modelcontextprotocol/ui``) says so in ``_meta.ui.resourceUri`` (and, in its early
form, the flat key ``_meta["ui/resourceUri"]``), ChatGPT's Apps SDK in
``_meta["openai/outputTemplate"]``. Who may call a tool is ``_meta.ui.visibility`` (``"model"``,
``"app"``; both when absent), or ``_meta["openai/visibility"]: "private"`` for app only.

When the catalogue exposes a server's resource under another URI (two servers offer the same
one), every link of that server's to it is rewritten the same way; these are the functions
that find and rewrite them. Nothing else in ``_meta`` is touched.

Does not: decide exposed URIs (``_uris``), or who sees what (the server does, by the client's
declared support for the extension).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import mcp_types as types

__all__ = [
    "APP_MIME_TYPE",
    "UI_EXTENSION",
    "app_links",
    "has_app",
    "is_app_only",
    "relinked_meta",
    "relinked_result",
    "visibility",
]

UI_EXTENSION: Final = "io.modelcontextprotocol/ui"
"""The MCP Apps extension's identifier, in client and server capabilities."""

APP_MIME_TYPE: Final = "text/html;profile=mcp-app"
"""The MIME type of an MCP Apps HTML resource (what a client that renders apps declares)."""

_UI: Final = "ui"
_LEGACY_RESOURCE_URI: Final = "ui/resourceUri"
_OUTPUT_TEMPLATE: Final = "openai/outputTemplate"
_OPENAI_VISIBILITY: Final = "openai/visibility"

_EVERYONE: Final = frozenset({"model", "app"})


def _ui(meta: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    ui: object = (meta or {}).get(_UI)
    return cast("Mapping[str, Any]", ui) if isinstance(ui, dict) else None


def app_links(meta: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The resource URIs a ``_meta`` links as an app, in key order, each once."""
    if not meta:
        return ()
    found: list[str] = []
    ui = _ui(meta)
    for value in ((ui or {}).get("resourceUri"), meta.get(_LEGACY_RESOURCE_URI), meta.get(_OUTPUT_TEMPLATE)):
        if isinstance(value, str) and value not in found:
            found.append(value)
    return tuple(found)


def has_app(tool: types.Tool) -> bool:
    """Whether the tool links an app resource (a host renders a widget for its results)."""
    return bool(app_links(tool.meta))


def visibility(tool: types.Tool) -> frozenset[str]:
    """Who may call the tool: ``"model"``, ``"app"``, or both (the default)."""
    meta = tool.meta
    if not meta:
        return _EVERYONE
    declared: object = (_ui(meta) or {}).get("visibility")
    if isinstance(declared, list):
        return frozenset(v for v in cast("list[object]", declared) if isinstance(v, str))
    if meta.get(_OPENAI_VISIBILITY) == "private":
        return frozenset({"app"})
    return _EVERYONE


def is_app_only(tool: types.Tool) -> bool:
    """Whether only an app may call the tool: a model must neither see nor call it."""
    return "model" not in visibility(tool)


def relinked_meta(meta: dict[str, Any] | None, relink: Callable[[str], str]) -> dict[str, Any] | None:
    """``meta`` with every app link passed through ``relink``; the same object when none changes.

    Only the link values are replaced; every other key, nested ones included, is kept as it is.
    """
    if not meta:
        return meta
    changed: dict[str, Any] = {}
    ui = _ui(meta)
    uri: object = ui.get("resourceUri") if ui is not None else None
    if ui is not None and isinstance(uri, str) and relink(uri) != uri:
        changed[_UI] = {**ui, "resourceUri": relink(uri)}
    for key in (_LEGACY_RESOURCE_URI, _OUTPUT_TEMPLATE):
        value: object = meta.get(key)
        if isinstance(value, str) and relink(value) != value:
            changed[key] = relink(value)
    return {**meta, **changed} if changed else meta


def relinked_result(result: types.CallToolResult, relink: Callable[[str], str]) -> types.CallToolResult:
    """A tool result with its resource links, embedded resources and ``_meta`` app links relinked.

    The same object when nothing changes; anything not a link is kept as it is.
    """
    changed: dict[str, Any] = {}
    content: list[types.ContentBlock] = []
    for block in result.content:
        if block.type == "resource_link" and relink(block.uri) != block.uri:
            block = block.model_copy(update={"uri": relink(block.uri)})
            changed["content"] = content
        elif block.type == "resource" and relink(block.resource.uri) != block.resource.uri:
            resource = block.resource.model_copy(update={"uri": relink(block.resource.uri)})
            block = block.model_copy(update={"resource": resource})
            changed["content"] = content
        content.append(block)
    meta = relinked_meta(result.meta, relink)
    if meta is not result.meta:
        changed["meta"] = meta
    return result.model_copy(update=changed) if changed else result
