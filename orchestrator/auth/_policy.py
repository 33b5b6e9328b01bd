"""The one policy: which exposed tools, prompts and resources a principal may see and call.

- A downstream tool is granted by ``tool:NAME`` (its exposed name) or ``server:KEY`` (its server).
- A prompt, resource or resource template is granted with its whole server (``server:KEY``);
  granting single tools of a server does not open the server's prompts and resources.
- A composite tool is granted only if ``tool:NAME`` names it and every downstream tool its
  steps call is granted too, so a composite is never a way around a grant. A run re-checks
  each step's tool when it calls it (``step_allowed``), since grants can change mid-run.
- ``"*"`` grants everything, composites included.

Something not granted is treated as if it did not exist: callers answer "unknown", so the
policy is no oracle for what else is served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.errors import UnknownToolError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    import mcp_types as types

    from orchestrator.auth._principal import Principal
    from orchestrator.catalog import Catalog, Route
    from orchestrator.workflow import WorkflowPlan

__all__ = ["AccessPolicy"]


class AccessPolicy:
    """Decides for one catalogue and set of composites; cheap to make, so make one per request."""

    def __init__(self, catalog: Catalog, composites: Mapping[str, WorkflowPlan]) -> None:
        self._catalog = catalog
        self._composites = composites

    def step_allowed(self, principal: Principal, server: str, original: str) -> bool:
        """May ``principal`` call the server's own tool ``original`` (as a workflow step does)?"""
        grant = principal.grant
        if grant.covers_server(server):
            return True
        exposed = self._catalog.exposed_tool_name(server, original)
        return exposed is not None and grant.covers_tool(exposed, server)

    def tool_allowed(self, principal: Principal, name: str) -> bool:
        """May ``principal`` see and call the exposed tool or composite ``name``?"""
        grant = principal.grant
        if grant.everything:
            return True
        plan = self._composites.get(name)
        if plan is not None:
            return grant.covers_tool(name, None) and all(
                self.step_allowed(principal, step.server, step.tool) for step in plan.steps.values()
            )
        try:
            server = self._catalog.route_tool(name).server
        except UnknownToolError:
            return False
        return grant.covers_tool(name, server)

    def tools(self, principal: Principal, tools: Iterable[types.Tool]) -> list[types.Tool]:
        """The tools of ``tools`` that ``principal`` may see, in order."""
        return [tool for tool in tools if self.tool_allowed(principal, tool.name)]

    def prompt_allowed(self, principal: Principal, name: str) -> bool:
        """May ``principal`` see and get the exposed prompt ``name``?"""
        return self._server_granted(principal, self._catalog.route_prompt, name)

    def resource_allowed(self, principal: Principal, uri: str) -> bool:
        """May ``principal`` see, read or subscribe to the exposed resource ``uri`` (or a template match)?"""
        return self._server_granted(principal, self._catalog.route_resource, uri)

    def template_allowed(self, principal: Principal, uri_template: str) -> bool:
        """May ``principal`` see the exposed resource template ``uri_template``?"""
        return self._server_granted(principal, self._catalog.route_template, uri_template)

    @staticmethod
    def _server_granted(principal: Principal, route: Callable[[str], Route], name: str) -> bool:
        """Prompts and resources come with their whole server only; an unknown name with nothing."""
        if principal.grant.everything:
            return True
        try:
            return principal.grant.covers_server(route(name).server)
        except UnknownToolError:
            return False
