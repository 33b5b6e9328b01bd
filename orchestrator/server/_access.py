"""The principal of each request, and the grant checks of the calls it makes.

The HTTP edge authenticates (``_http``) and leaves the SDK's ``AuthenticatedUser`` in the
request's ASGI scope; here it becomes a ``Principal``. Over stdio, and over HTTP when no
credentials are configured (loopback only), the caller is the local owner. A request that
reached us over an authenticated endpoint without a user (which the edge does not let
happen) is granted nothing, so a wiring mistake fails closed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser

from orchestrator.auth import OWNER, Grant, Principal, principal_of
from orchestrator.errors import StepNotGranted

if TYPE_CHECKING:
    from collections.abc import Callable

    import mcp_types as types
    from mcp.server.context import ServerRequestContext

    from orchestrator.auth import AccessPolicy
    from orchestrator.workflow import ToolInvoker

__all__ = ["AUTH_REQUIRED_SCOPE_KEY", "GrantCheckingInvoker", "request_principal"]

AUTH_REQUIRED_SCOPE_KEY = "orchestrator.auth_required"
"""Set in an HTTP request's ASGI scope by the edge when the endpoint requires credentials."""

_NOBODY = Principal(kind="token", client_id=None, subject=None, grant=Grant(frozenset()))


def request_principal(ctx: ServerRequestContext[Any, Any]) -> Principal:
    """Who sent the request ``ctx`` belongs to."""
    request = ctx.request
    scope: dict[str, Any] | None = getattr(request, "scope", None)
    if scope is None:
        return OWNER
    user = scope.get("user")
    if isinstance(user, AuthenticatedUser):
        return principal_of(user.access_token)
    return _NOBODY if scope.get(AUTH_REQUIRED_SCOPE_KEY) else OWNER


class GrantCheckingInvoker:
    """A run's way out, checking each step's tool against its principal's grant as it is called.

    The composite was granted as a whole when the run started; this catches a grant narrowed
    while the run goes on.
    """

    def __init__(self, inner: ToolInvoker, principal: Principal, policy: Callable[[], AccessPolicy]) -> None:
        self._inner = inner
        self._principal = principal
        self._policy = policy

    async def call_tool(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        timeout: float | None,
        meta: dict[str, Any] | None,
    ) -> types.CallToolResult:
        """Call through, if granted.

        Raises:
            StepNotGranted: The principal may not call ``tool`` of ``server`` (any more).
            DownstreamError: As the inner invoker raises.
        """
        if not self._policy().step_allowed(self._principal, server, tool):
            raise StepNotGranted(server, f"tool {tool!r} is not granted to this client")
        return await self._inner.call_tool(server, tool, arguments, timeout=timeout, meta=meta)
