"""The merged catalogue: what each downstream offers, under the names we expose, and the way back."""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from orchestrator.catalog._apps import app_links, relinked_meta
from orchestrator.catalog._naming import DEFAULT_NAMING, NameNote, NameRequest, assign_names
from orchestrator.catalog._suggest import close_names
from orchestrator.catalog._uris import TemplateRoute, assign_uris
from orchestrator.config._models import NamingSpec, ToolFilterSpec
from orchestrator.errors import UnknownToolError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    import mcp_types as types

__all__ = ["EMPTY_CATALOG", "Catalog", "NameMapping", "Route", "ServerManifest", "build_catalog"]

_Item = TypeVar("_Item")
_Keyed = TypeVar("_Keyed")


@dataclass(frozen=True, slots=True)
class ServerManifest:
    """What one downstream server offers, and how its tools are filtered and renamed.

    Attributes:
        server: Config key of the downstream server.
        prefix: Prepended to tool and prompt names; ``None`` exposes them unprefixed.
        tools: The server's tools, as it listed them.
        prompts: The server's prompts.
        resources: The server's resources.
        resource_templates: The server's resource templates.
        tool_filter: Which tools are exposed, renamed and re-described; prompts are not filtered.
    """

    server: str
    prefix: str | None
    tools: tuple[types.Tool, ...] = ()
    prompts: tuple[types.Prompt, ...] = ()
    resources: tuple[types.Resource, ...] = ()
    resource_templates: tuple[types.ResourceTemplate, ...] = ()
    tool_filter: ToolFilterSpec = field(default_factory=ToolFilterSpec)


@dataclass(frozen=True, slots=True)
class Route:
    """Where an exposed name goes: the server, and the name (or resource URI) it knows."""

    server: str
    name: str


@dataclass(frozen=True, slots=True)
class NameMapping:
    """One exposed tool or prompt and where it comes from, for ``orchestrator tools`` and ``doctor``."""

    kind: Literal["tool", "prompt"]
    exposed: str
    server: str
    original: str
    notes: tuple[NameNote, ...]


@dataclass(frozen=True, slots=True)
class _ToolTables:
    routes: Mapping[str, Route]  # exposed name -> server and original name
    tools: Mapping[str, types.Tool]  # exposed name -> exposed Tool
    exposed_names: Mapping[tuple[str, str], str]  # (server, original) -> exposed name
    originals: Mapping[tuple[str, str], types.Tool]  # (server, original) -> the server's own Tool


_NO_TOOLS = _ToolTables(
    routes=MappingProxyType({}),
    tools=MappingProxyType({}),
    exposed_names=MappingProxyType({}),
    originals=MappingProxyType({}),
)


@dataclass(frozen=True, slots=True)
class _Tables:
    tools: _ToolTables
    prompt_routes: Mapping[str, Route]
    resource_routes: Mapping[str, Route]
    relinked: Mapping[tuple[str, str], str]  # (server, own URI) -> exposed URI, where they differ
    templates: tuple[TemplateRoute, ...]  # most specific first
    servers: frozenset[str]
    reserved_tools: frozenset[str]  # composite names: callable, though not routed here
    relinked_servers: frozenset[str] = frozenset()  # servers with a key in ``relinked``


_NO_TABLES = _Tables(
    tools=_NO_TOOLS,
    prompt_routes=MappingProxyType({}),
    resource_routes=MappingProxyType({}),
    relinked=MappingProxyType({}),
    templates=(),
    servers=frozenset(),
    reserved_tools=frozenset(),
)


@dataclass(frozen=True, slots=True, eq=False)
class Catalog:
    """The merged, immutable catalogue; built by ``build_catalog``.

    Every sequence is sorted by exposed name (resources by exposed URI).
    """

    tools: tuple[types.Tool, ...] = ()
    prompts: tuple[types.Prompt, ...] = ()
    resources: tuple[types.Resource, ...] = ()
    resource_templates: tuple[types.ResourceTemplate, ...] = ()
    mappings: tuple[NameMapping, ...] = ()
    _tables: _Tables = field(default=_NO_TABLES, repr=False)

    @property
    def servers(self) -> frozenset[str]:
        """Keys of every server a manifest was given for, whether or not it exposes anything."""
        return self._tables.servers

    def route_tool(self, exposed: str) -> Route:
        """The server and original name behind an exposed tool name.

        Raises:
            UnknownToolError: No exposed tool has this name.
        """
        return _lookup(self._tables.tools.routes, exposed, "tool", self._tables.reserved_tools)

    def route_prompt(self, exposed: str) -> Route:
        """The server and original name behind an exposed prompt name.

        Raises:
            UnknownToolError: No exposed prompt has this name.
        """
        return _lookup(self._tables.prompt_routes, exposed, "prompt")

    def route_resource(self, uri: str) -> Route:
        """The server and its own URI for a resource read, by exact URI or else by template.

        When several templates match, the one with the most literal text wins, then the
        smallest exposed template.

        Raises:
            UnknownToolError: No resource or template matches ``uri``.
        """
        if (route := self._tables.resource_routes.get(uri)) is not None:
            return route
        for template in self._tables.templates:
            if (original := template.original_uri(uri)) is not None:
                return Route(template.server, original)
        raise UnknownToolError("resource", uri)

    def exposed_resource_uri(self, server: str, uri: str) -> str:
        """The URI under which ``server``'s resource ``uri`` is exposed (for update notifications)."""
        for exposed, route in self._tables.resource_routes.items():
            if route.server == server and route.name == uri:
                return exposed
        prefixed = f"{server}+{uri}"
        for template in self._tables.templates:
            if template.server == server and template.exposed != template.original:
                return prefixed
        return uri

    def relink(self, server: str, uri: str) -> str:
        """The URI a client must use for ``server``'s resource ``uri``: a link in its tools or results.

        The server's own URI unless the catalogue exposes that resource under another one.
        """
        return self._tables.relinked.get((server, uri), uri)

    def relinks(self, server: str) -> bool:
        """Whether any of ``server``'s resources is exposed under another URI (its links need rewriting)."""
        return server in self._tables.relinked_servers

    def route_template(self, exposed: str) -> Route:
        """The server and its own URI template behind an exposed resource template (exact match).

        Raises:
            UnknownToolError: No exposed template is ``exposed``.
        """
        for template in self._tables.templates:
            if template.exposed == exposed:
                return Route(template.server, template.original)
        raise UnknownToolError("resource template", exposed)

    def has_tool(self, exposed: str) -> bool:
        """Whether a tool is exposed under ``exposed``."""
        return exposed in self._tables.tools.tools

    def tool(self, exposed: str) -> types.Tool:
        """The exposed Tool (exposed name, configured description).

        Raises:
            UnknownToolError: No exposed tool has this name.
        """
        return _lookup(self._tables.tools.tools, exposed, "tool", self._tables.reserved_tools)

    def exposed_tool_name(self, server: str, original: str) -> str | None:
        """The exposed name of a server's tool, or ``None`` if it is not exposed."""
        return self._tables.tools.exposed_names.get((server, original))

    def original_tool(self, server: str, original: str) -> types.Tool | None:
        """The server's own Tool (its name, description and schemas), or ``None`` if it is not exposed."""
        return self._tables.tools.originals.get((server, original))


def _lookup(table: Mapping[str, _Keyed], name: str, kind: str, also: Iterable[str] = ()) -> _Keyed:
    try:
        return table[name]
    except KeyError:
        raise UnknownToolError(kind, name, close_names(name, [*table, *also])) from None


def _first_by(items: Iterable[_Item], key: Callable[[_Item], str]) -> dict[str, _Item]:
    """Items by key; a server listing one key twice is a server bug, and its first listing wins."""
    by_key: dict[str, _Item] = {}
    for item in items:
        by_key.setdefault(key(item), item)
    return by_key


def _name(item: types.Tool | types.Prompt) -> str:
    return item.name


def _uri(resource: types.Resource) -> str:
    return resource.uri


def _template(template: types.ResourceTemplate) -> str:
    return template.uri_template


def _is_exposed(name: str, spec: ToolFilterSpec) -> bool:
    return any(fnmatchcase(name, p) for p in spec.include) and not any(fnmatchcase(name, p) for p in spec.exclude)


def _relinker(relinked: Mapping[tuple[str, str], str], server: str) -> Callable[[str], str]:
    """How ``server``'s links are rewritten: to the URI its resource is exposed under."""

    def relink(uri: str) -> str:
        return relinked.get((server, uri), uri)

    return relink


def _build_tools(
    manifests: Iterable[ServerManifest],
    naming: NamingSpec,
    reserved: Iterable[str],
    relinked: Mapping[tuple[str, str], str],
) -> tuple[_ToolTables, list[NameMapping]]:
    originals: dict[tuple[str, str], types.Tool] = {}
    requests: dict[tuple[str, str], NameRequest] = {}
    specs: dict[str, ToolFilterSpec] = {}
    for manifest in manifests:
        spec = specs[manifest.server] = manifest.tool_filter
        for original, tool in _first_by(manifest.tools, _name).items():
            if _is_exposed(original, spec):
                base = spec.rename.get(original, original)
                key = (manifest.server, original)
                originals[key] = tool
                requests[key] = NameRequest(*key, base, manifest.prefix, renamed=base != original)
    names = assign_names(requests.values(), naming, reserved)
    tools: dict[str, types.Tool] = {}
    for key, name in names.items():
        describe, request = specs[key[0]].describe, requests[key]
        # The renamed key is the more specific one: it names what the user sees.
        description = describe.get(request.base, describe.get(request.original, originals[key].description))
        update: dict[str, Any] = {"name": name.exposed, "description": description}
        meta = originals[key].meta
        relinked_links = relinked_meta(meta, _relinker(relinked, key[0]))
        if relinked_links is not meta:  # an app link to a resource exposed under another URI
            update["meta"] = relinked_links
        tools[name.exposed] = originals[key].model_copy(update=update)
    tables = _ToolTables(
        routes=MappingProxyType({name.exposed: Route(*key) for key, name in names.items()}),
        tools=MappingProxyType(tools),
        exposed_names=MappingProxyType({key: name.exposed for key, name in names.items()}),
        originals=MappingProxyType(originals),
    )
    return tables, [NameMapping("tool", name.exposed, *key, name.notes) for key, name in names.items()]


def build_catalog(
    manifests: Iterable[ServerManifest], naming: NamingSpec = DEFAULT_NAMING, reserved: Iterable[str] = ()
) -> Catalog:
    """Merge server manifests into one catalogue with provider-safe, unique, stable names.

    The result does not depend on the order of manifests or of the entries within them,
    except that a server listing one name (or URI) twice has its first listing used.
    Prompts are named like tools, in a namespace of their own, and are not filtered.

    Args:
        manifests: One per downstream server; server keys must be unique.
        naming: Separator and maximum exposed-name length.
        reserved: Tool names taken in advance (composite workflow tools); they always win.

    Returns:
        The catalogue.

    Raises:
        ValueError: Two manifests have the same server key.
    """
    by_server: dict[str, ServerManifest] = {}
    for manifest in manifests:
        if by_server.setdefault(manifest.server, manifest) is not manifest:
            raise ValueError(f"two manifests for server {manifest.server!r}")

    resources = {(m.server, uri): r for m in by_server.values() for uri, r in _first_by(m.resources, _uri).items()}
    # An app link to a resource its server does not list still routes to that server, and
    # takes part in the clash check: another server's same URI must not answer for it.
    linked = {(m.server, uri) for m in by_server.values() for tool in m.tools for uri in app_links(tool.meta)}
    resource_uris = assign_uris([*resources, *(key for key in linked if key not in resources)], keep_app_scheme=True)
    relinked = {key: uri for key, uri in resource_uris.items() if uri != key[1]}

    reserved = frozenset(reserved)
    tool_tables, tool_mappings = _build_tools(by_server.values(), naming, reserved, relinked)

    prompts = {
        (m.server, name): prompt for m in by_server.values() for name, prompt in _first_by(m.prompts, _name).items()
    }
    prompt_names = assign_names((NameRequest(s, o, o, by_server[s].prefix) for s, o in prompts), naming)
    exposed_prompts = [p.model_copy(update={"name": prompt_names[key].exposed}) for key, p in prompts.items()]
    mappings = tool_mappings + [
        NameMapping("prompt", name.exposed, *key, name.notes) for key, name in prompt_names.items()
    ]

    exposed_resources = [r.model_copy(update={"uri": resource_uris[key]}) for key, r in resources.items()]

    templates = {
        (m.server, uri): t for m in by_server.values() for uri, t in _first_by(m.resource_templates, _template).items()
    }
    template_uris = assign_uris(templates)
    exposed_templates = [t.model_copy(update={"uri_template": template_uris[key]}) for key, t in templates.items()]
    template_routes = sorted(
        (TemplateRoute.build(template_uris[key], *key) for key in templates), key=lambda t: (-t.specificity, t.exposed)
    )

    tables = _Tables(
        tools=tool_tables,
        prompt_routes=MappingProxyType({name.exposed: Route(*key) for key, name in prompt_names.items()}),
        resource_routes=MappingProxyType({uri: Route(*key) for key, uri in resource_uris.items()}),
        relinked=MappingProxyType(relinked),
        templates=tuple(template_routes),
        servers=frozenset(by_server),
        reserved_tools=reserved,
        relinked_servers=frozenset(server for server, _ in relinked),
    )
    return Catalog(
        tools=tuple(sorted(tool_tables.tools.values(), key=_name)),
        prompts=tuple(sorted(exposed_prompts, key=_name)),
        resources=tuple(sorted(exposed_resources, key=_uri)),
        resource_templates=tuple(sorted(exposed_templates, key=_template)),
        mappings=tuple(sorted(mappings, key=lambda m: (m.kind != "tool", m.exposed))),
        _tables=tables,
    )


EMPTY_CATALOG = build_catalog(())
