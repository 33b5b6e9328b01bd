"""The principal of each request, and what its calls pass through: grants, rate limits, audit.

The HTTP edge authenticates (``_http``) and leaves the SDK's ``AuthenticatedUser`` in the
request's ASGI scope; here it becomes a ``Principal``. Over stdio, and over HTTP when no
credentials are configured (loopback only), the caller is the local owner. A request that
reached us over an authenticated endpoint without a user (which the edge does not let
happen) is granted nothing, so a wiring mistake fails closed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser

from orchestrator.auth import OWNER, Grant, Principal, audit_record, outcome_of, principal_of
from orchestrator.errors import RateLimitedError, RateLimitsUnavailable, StepNotGranted, StoreError
from orchestrator.server._errors import tool_error_result
from orchestrator.tracing import current_trace_id
from orchestrator.workflow import step_call_of

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    import mcp_types as types
    from mcp.server.context import ServerRequestContext

    from orchestrator.auth import AccessPolicy, AuditLog, CallLimiter
    from orchestrator.workflow import ToolInvoker

__all__ = [
    "AUTH_REQUIRED_SCOPE_KEY",
    "AuditingInvoker",
    "CallControls",
    "GrantCheckingInvoker",
    "ServedBy",
    "request_principal",
    "scope_principal",
]

AUTH_REQUIRED_SCOPE_KEY = "orchestrator.auth_required"
"""Set in an HTTP request's ASGI scope by the edge when the endpoint requires credentials."""


class _CallOutcome(Protocol):
    """What the audit log needs of a call's result: whether it is an error."""

    @property
    def is_error(self) -> bool | None: ...


_ResultT = TypeVar("_ResultT", bound=_CallOutcome)

_NOBODY = Principal(kind="token", client_id=None, subject=None, grant=Grant(frozenset()))


def request_principal(ctx: ServerRequestContext[Any, Any]) -> Principal:
    """Who sent the request ``ctx`` belongs to (stdio requests carry no HTTP scope: the owner)."""
    scope: dict[str, Any] | None = getattr(ctx.request, "scope", None)
    return OWNER if scope is None else scope_principal(scope)


def scope_principal(scope: Mapping[str, Any]) -> Principal:
    """Who sent the HTTP request of ASGI ``scope``, as the edge authenticated it."""
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


@dataclass(frozen=True, slots=True)
class ServedBy:
    """Where a call went, as its audit record names it."""

    server: str | None = None
    downstream_tool: str | None = None
    run_id: str | None = None
    catalogue_version: str | None = None


@dataclass(slots=True)
class CallControls:
    """What every call passes through besides the grant check: rate limits and the audit log.

    Both are off until the process that serves sets them (``orchestrator serve`` over HTTP):
    an embedding application's in-process calls are its own business. The limiter keeps its
    buckets in memory (one process), or in the store or Redis (several processes sharing one limit).
    """

    limiter: CallLimiter | None = None
    audit: AuditLog | None = None

    async def call(
        self,
        principal: Principal,
        name: str,
        arguments: dict[str, Any],
        call: Callable[[], Awaitable[_ResultT]],
        served_by: Callable[[_ResultT | None], ServedBy],
    ) -> _ResultT | types.CallToolResult:
        """Run ``call`` within ``principal``'s rate limits (the local owner has none), leaving an audit record.

        A refused call is a tool error saying when to retry, recorded too; nothing is called.
        So is a call whose limits are shared through the store or Redis when that cannot be
        reached: limits that cannot be checked do not let calls through.
        """
        if self.limiter is not None and principal.kind != "owner":
            try:
                await self.limiter.enforce(principal.key, name)
            except (RateLimitedError, RateLimitsUnavailable, StoreError) as exc:
                await self._record(principal, name, arguments, outcome_of(exc), 0.0, served_by(None))
                return tool_error_result(exc)
        if self.audit is None:
            return await call()
        started = time.monotonic()
        error: BaseException | None = None
        result: _ResultT | None = None
        try:
            result = await call()
            return result
        except BaseException as exc:
            error = exc
            raise
        finally:
            outcome = outcome_of(error, is_error=bool(result and result.is_error))
            await self._record(principal, name, arguments, outcome, time.monotonic() - started, served_by(result))

    async def _record(
        self,
        principal: Principal,
        name: str,
        arguments: dict[str, Any],
        outcome: str,
        duration: float,
        where: ServedBy,
    ) -> None:
        if self.audit is None:
            return
        record = audit_record(
            principal=principal,
            tool=name,
            arguments=arguments,
            outcome=outcome,
            duration=duration,
            server=where.server,
            downstream_tool=where.downstream_tool,
            trace_id=current_trace_id(),
            run_id=where.run_id,
            catalogue_version=where.catalogue_version,
        )
        await self.audit.record(record)


class AuditingInvoker:
    """A run's way out, leaving one audit record per step call (each attempt, each item)."""

    def __init__(
        self,
        inner: ToolInvoker,
        principal: Principal,
        audit: AuditLog,
        composite: str,
        catalogue_version: str | None = None,
    ) -> None:
        self._inner = inner
        self._principal = principal
        self._audit = audit
        self._composite = composite
        self._catalogue_version = catalogue_version

    async def call_tool(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        timeout: float | None,
        meta: dict[str, Any] | None,
    ) -> types.CallToolResult:
        """Call through, and record how it went.

        Raises:
            DownstreamError: As the inner invoker raises (recorded first).
        """
        started = time.monotonic()
        error: BaseException | None = None
        result: types.CallToolResult | None = None
        try:
            result = await self._inner.call_tool(server, tool, arguments, timeout=timeout, meta=meta)
            return result
        except BaseException as exc:
            error = exc
            raise
        finally:
            call = step_call_of(meta)
            await self._audit.record(
                audit_record(
                    principal=self._principal,
                    tool=self._composite,
                    arguments=arguments,
                    outcome=outcome_of(error, is_error=bool(result and result.is_error)),
                    duration=time.monotonic() - started,
                    server=server,
                    downstream_tool=tool,
                    trace_id=current_trace_id(),
                    run_id=call.run_id if call is not None else None,
                    step_id=call.step_id if call is not None else None,
                    catalogue_version=self._catalogue_version,
                )
            )
