"""``run_plan``: a workflow the model writes, checked and run like a composite, only its output returned.

A plan is a workflow spec as JSON, minus ``name`` (it runs as ``run_plan``), with ``version``
and ``description`` optional. Its steps name tools by the exposed names the model sees
(``git__git_status``) or as ``<server>.<tool>``. It is checked by the workflow loader and
compiler against the live catalogue (the wiring checks a served composite gets), so a wrong
plan comes back as one tool error listing every problem as ``plan: key.path: message``,
and the model can fix it. A step whose tool the caller is not granted is reported exactly
as an unknown tool is, with suggestions drawn from what the caller may use only: no oracle.

Caps (``catalog.plan_limits``) are checked before anything runs where the plan states a
value (steps, ``limits``, ``max_items``); a plan may only lower them. The rest are applied
to the compiled plan: calls in flight, for_each items (a longer list fails its step as it
runs) and the run's time.

Runs with the composites' executor, retries, tracing and approver, through the invoker the
server wraps with grant checks and audit records; the result is the plan's output only.
Does not: journal the run (plans run in memory; a restart loses them), or rate-limit or
audit the ``run_plan`` call itself (the server's ``CallControls`` does, like any call).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final, cast

import mcp_types as types
from opentelemetry import trace

from orchestrator import workflow
from orchestrator.catalog import close_names
from orchestrator.config import PlanLimitsSpec, parse_duration
from orchestrator.errors import WorkflowDefinitionError, WorkflowExecutionError
from orchestrator.server._composites import progress_reporter, run_result_to_tool_result, step_invoker
from orchestrator.server._errors import tool_error_result
from orchestrator.server._search_mode import meta_tool_names
from orchestrator.tracing import current_trace_id

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from mcp.shared.dispatcher import ProgressFnT

    from orchestrator._locations import Problem
    from orchestrator.auth import AccessPolicy, Principal
    from orchestrator.catalog import Catalog
    from orchestrator.config import OrchestratorConfig
    from orchestrator.downstream import DownstreamPool, UpstreamPeer
    from orchestrator.workflow import Approver, ToolInvoker, WorkflowPlan

__all__ = ["PLAN_SOURCE", "RUN_PLAN_TOOL_NAME", "Plans", "reserved_tool_names", "run_plan_tool"]

RUN_PLAN_TOOL_NAME: Final = "run_plan"
"""The meta-tool's name; reserved in the catalogue while plans are offered."""

PLAN_SOURCE: Final = "plan"
"""What problem messages call a plan: ``plan: steps.b.with.x: ...``."""

EVENT_PLAN: Final = "run_plan.plan"
"""Span event on the ``tools/call run_plan`` span: the plan's shape (step ids, tools, needs; never values)."""
ATTR_PLAN_STEPS: Final = "mcp_orchestrator.plan.steps"
ATTR_PLAN_SHAPE: Final = "mcp_orchestrator.plan.shape"

_PLACEHOLDER_TOOL: Final = "(invalid).(invalid)"
"""Stands in for a step tool that resolves to nothing this caller may use; its own problem says why."""
_MAX_SHAPE_CHARS: Final = 4096
_DEFAULT_DESCRIPTION: Final = "A plan sent to run_plan."

_DESCRIPTION = (
    "Run a plan: a small workflow of tool calls, executed here. Only the plan's output value comes back; "
    "step results stay here, so use a plan to chain or fan out calls whose in-between data you do not need.\n"
    'plan = {"steps": {ID: {"tool": NAME, "with": {ARG: VALUE}, "needs": [ID], "for_each": EXPR, "as": "item"}}, '
    '"output": {"value": VALUE}}. NAME is a tool name as listed (e.g. git__git_status) or "<server>.<tool>". '
    'A VALUE may be "${{ JMESPath }}" over steps.ID.result (only steps in needs, directly or through theirs) '
    "and, in a for_each step, the item and index. Steps without needs run in parallel.\n"
    'Example: {"steps": {"a": {"tool": "time__now"}, "b": {"tool": "git__git_log", "with": {"max_count": 3}}, '
    '"c": {"tool": "notes__add", "needs": ["a", "b"], "with": {"text": "${{ steps.b.result }} at '
    '${{ steps.a.result.time }}"}}}, "output": {"value": "${{ steps.c.result.id }}"}}\n'
    "Also as in workflow files: if, retry, on_error, default, timeout, limits (only lower). "
    "Caps: {max_steps} steps, {max_fan_out} for_each items, {max_concurrency} calls at once, {timeout} in all. "
    "A wrong plan is not run: every problem comes back as plan: key.path: message."
)


def reserved_tool_names(config: OrchestratorConfig, composite_names: Iterable[str]) -> frozenset[str]:
    """Names downstream tools may not take: the composites', search mode's meta-tools, and ``run_plan`` while on.

    A downstream tool that would be exposed under a reserved name gets the catalogue's
    hash suffix instead, as on any clash, and ``orchestrator tools`` shows it.
    """
    names = frozenset(composite_names) | meta_tool_names(config.catalog)
    return names | {RUN_PLAN_TOOL_NAME} if config.catalog.plans else names


def run_plan_tool(limits: PlanLimitsSpec) -> types.Tool:
    """The ``run_plan`` tool definition, its caps stated in the description.

    Kept short (about 350 tokens): in search mode it is part of a deliberately tiny manifest.
    """
    description = (
        _DESCRIPTION.replace("{max_steps}", str(limits.max_steps))
        .replace("{max_fan_out}", str(limits.max_fan_out))
        .replace("{max_concurrency}", str(limits.max_concurrency))
        .replace("{timeout}", f"{limits.timeout:g}s")
    )
    return types.Tool(
        name=RUN_PLAN_TOOL_NAME,
        description=description,
        input_schema={
            "type": "object",
            "properties": {"plan": {"type": "object", "description": "The plan: steps and output, as above."}},
            "required": ["plan"],
        },
        annotations=types.ToolAnnotations(title="Run a plan of tool calls", read_only_hint=False, open_world_hint=True),
    )


class Plans:
    """Checks and runs the plans sent to ``run_plan``, within ``limits``."""

    def __init__(self, limits: PlanLimitsSpec) -> None:
        self.limits = limits

    def tool(self) -> types.Tool:
        """The ``run_plan`` tool definition."""
        return run_plan_tool(self.limits)

    def prepare(
        self, arguments: Mapping[str, Any], catalog: Catalog, allowed: Callable[[str, str], bool] | None = None
    ) -> WorkflowPlan:
        """The plan in ``arguments`` compiled against ``catalog``, within the caps.

        Args:
            arguments: ``run_plan``'s arguments: ``{"plan": {...}}`` (the plan may be a JSON string).
            catalog: The catalogue served now.
            allowed: Whether the caller may call a server's own tool (``server``, ``original``);
                ``None``: everything (the local owner).

        Raises:
            WorkflowDefinitionError: The plan is invalid or over its caps; every problem, each as
                ``plan: key.path: message``. Nothing ran.
        """
        document = _plan_document(arguments)
        steps: object = document.get("steps")
        if isinstance(steps, dict) and len(cast("dict[str, Any]", steps)) > self.limits.max_steps:
            count = len(cast("dict[str, Any]", steps))
            message = f"the plan has {count} steps; run_plan runs at most {self.limits.max_steps}"
            raise WorkflowDefinitionError(PLAN_SOURCE, [f"{PLAN_SOURCE}: steps: {message}"])
        known = _shape_problems(document)
        known += _resolve_tools(document, catalog, allowed)
        known += self._cap_problems(document)
        check = workflow.check_workflow_data(document, PLAN_SOURCE, catalog, known_problems=known)
        if check.plan is None:
            raise WorkflowDefinitionError(PLAN_SOURCE, check.problems)
        return self._capped(check.plan)

    async def run(
        self,
        pool: DownstreamPool,
        arguments: Mapping[str, Any],
        *,
        principal: Principal,
        policy: AccessPolicy,
        progress: ProgressFnT | None = None,
        peer: UpstreamPeer | None = None,
        wrap_invoker: Callable[[ToolInvoker], ToolInvoker] | None = None,
        catalogue_version: str | None = None,
        approver: Approver | None = None,
    ) -> types.CallToolResult:
        """Check and run one plan; the result is its output, or a tool error saying what is wrong.

        Args:
            pool: Where the steps' calls go.
            arguments: ``run_plan``'s arguments.
            principal: The caller: each step's tool must be granted to it (checked for every
                step before anything runs, and again as each call is made, by ``wrap_invoker``).
            policy: The access policy over what is served now.
            progress: Told of each finished step, when the caller asked for progress.
            peer: The caller's client, for the calls' progress and cancellation.
            wrap_invoker: Puts the server's grant checks and audit records around each call.
            catalogue_version: The served catalogue's version, for the run's span and result.
            approver: Asks the caller before ``approve`` steps (without one, such a plan fails
                before calling anything).
        """
        allowed = None if principal.grant.everything else _step_allowed(policy, principal)
        try:
            plan = self.prepare(arguments, pool.catalog, allowed)
        except WorkflowDefinitionError as exc:
            return tool_error_result(exc)
        _record_shape(plan)

        invoker = step_invoker(pool, peer, wrap_invoker)
        result = await workflow.execute(
            plan,
            {},
            invoker,
            on_event=progress_reporter(progress),
            catalogue_version=catalogue_version,
            approver=approver,
        )
        error = result.error
        failed = result.steps.get(error.step_id) if error is not None else None
        if error is not None and failed is not None and failed.error_class == "too_many_items":
            message = (
                f"{failed.error_class}: {failed.error}; run_plan runs at most {self.limits.max_fan_out} items "
                "per for_each"
            )
            result = replace(result, error=WorkflowExecutionError(error.run_id, error.step_id, message))
        return run_result_to_tool_result(result, current_trace_id())

    def _cap_problems(self, document: Mapping[str, Any]) -> list[Problem]:
        """Values the plan states above the caps (a plan may only lower them)."""
        limits = self.limits
        problems: list[Problem] = []
        stated: object = document.get("limits")
        if isinstance(stated, dict):
            stated_limits = cast("dict[str, Any]", stated)
            timeout = _seconds(stated_limits.get("timeout"))
            if timeout is not None and timeout > limits.timeout:
                message = f"{timeout:g}s is more than run_plan allows ({limits.timeout:g}s); a plan may only lower it"
                problems.append((("limits", "timeout"), message))
            parallel = _int(stated_limits.get("max_parallel"))
            if parallel is not None and parallel > limits.max_concurrency:
                allows = limits.max_concurrency
                message = f"{parallel} is more than run_plan allows ({allows}); a plan may only lower it"
                problems.append((("limits", "max_parallel"), message))
        for step_id, step in _steps(document):
            items = _int(step.get("max_items"))
            if items is not None and items > limits.max_fan_out:
                message = f"{items} is more than run_plan allows ({limits.max_fan_out} items per for_each)"
                problems.append((("steps", step_id, "max_items"), message))
        return problems

    def _capped(self, plan: WorkflowPlan) -> WorkflowPlan:
        """``plan`` within the caps where it left a value at its default (above the caps)."""
        limits = self.limits
        steps = {
            step_id: replace(step, max_items=min(step.max_items, limits.max_fan_out))
            for step_id, step in plan.steps.items()
        }
        return replace(
            plan,
            steps=steps,
            timeout=min(plan.timeout, limits.timeout),
            max_parallel=min(plan.max_parallel, limits.max_concurrency),
        )


def _plan_document(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The plan as a mutable JSON object, with the keys a plan leaves out filled in.

    Raises:
        WorkflowDefinitionError: There is no plan, or it is not a JSON object.
    """
    plan: object = arguments.get("plan")
    if isinstance(plan, str):
        # Models often send the object as JSON text; take it as the object it spells.
        try:
            plan = json.loads(plan)
        except json.JSONDecodeError as exc:
            problem = f"{PLAN_SOURCE}: plan is text that is not JSON ({exc.msg} at character {exc.pos})"
            raise WorkflowDefinitionError(PLAN_SOURCE, [problem]) from None
    if not isinstance(plan, dict):
        found = "nothing" if plan is None else f"a {_json_type(plan)}"
        problem = f'{PLAN_SOURCE}: run_plan takes {{"plan": {{"steps": ..., "output": ...}}}}; plan is {found}'
        raise WorkflowDefinitionError(PLAN_SOURCE, [problem])
    document = dict(cast("dict[str, Any]", plan))
    steps: object = document.get("steps")
    if isinstance(steps, dict):
        document["steps"] = dict(cast("dict[str, Any]", steps))  # steps are rewritten: never the caller's
    document.setdefault("version", 1)
    document.setdefault("description", _DEFAULT_DESCRIPTION)
    return document


def _shape_problems(document: dict[str, Any]) -> list[Problem]:
    """Keys a workflow file has and a plan does not (taken out, each a problem), and the name put in."""
    problems: list[Problem] = []
    if "name" in document:
        problems.append((("name",), f"a plan has no name (it runs as {RUN_PLAN_TOOL_NAME}); leave it out"))
    if "input" in document:
        problems.append((("input",), "a plan takes no input; write the values into the steps"))
        del document["input"]
    document["name"] = RUN_PLAN_TOOL_NAME
    return problems


def _resolve_tools(
    document: dict[str, Any], catalog: Catalog, allowed: Callable[[str, str], bool] | None
) -> list[Problem]:
    """Rewrite each step's ``tool`` to ``<server>.<tool>``; a tool that is unknown, or not granted, is a problem.

    Both are told the same way, with suggestions from the tools the caller may use only.
    """
    problems: list[Problem] = []
    visible: tuple[list[str], list[str]] | None = None
    for step_id, step in _steps(document):
        reference: object = step.get("tool")
        if not isinstance(reference, str):
            continue  # missing or not text: the format check says so
        resolved = _resolve(reference, catalog, allowed)
        if resolved is not None:
            step["tool"] = resolved
            continue
        if visible is None:
            visible = _visible_names(catalog, allowed)
        exposed, dotted = visible
        suggestions = close_names(reference, dotted if "." in reference else exposed)
        hint = "; did you mean " + " or ".join(repr(s) for s in suggestions) + "?" if suggestions else ""
        problems.append((("steps", step_id, "tool"), f"unknown tool {reference!r}{hint}"))
        step["tool"] = _PLACEHOLDER_TOOL
    return problems


def _resolve(reference: str, catalog: Catalog, allowed: Callable[[str, str], bool] | None) -> str | None:
    """``<server>.<tool>`` for a tool the caller may use, by exposed name or by server and tool; else ``None``."""
    if "." not in reference:  # exposed names never hold a dot
        if not catalog.has_tool(reference):
            return None
        route = catalog.route_tool(reference)
        server, tool = route.server, route.name
    else:
        server, tool = workflow.split_tool_reference(reference, catalog.servers)
        if catalog.original_tool(server, tool) is None:
            return None
    if allowed is not None and not allowed(server, tool):
        return None
    return f"{server}.{tool}"


def _visible_names(catalog: Catalog, allowed: Callable[[str, str], bool] | None) -> tuple[list[str], list[str]]:
    """The exposed and the ``<server>.<tool>`` names of every tool the caller may use."""
    exposed: list[str] = []
    dotted: list[str] = []
    for mapping in catalog.mappings:
        if mapping.kind == "tool" and (allowed is None or allowed(mapping.server, mapping.original)):
            exposed.append(mapping.exposed)
            dotted.append(f"{mapping.server}.{mapping.original}")
    return exposed, dotted


def _step_allowed(policy: AccessPolicy, principal: Principal) -> Callable[[str, str], bool]:
    def allowed(server: str, tool: str) -> bool:
        return policy.step_allowed(principal, server, tool)

    return allowed


def _steps(document: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The plan's steps that are JSON objects, by id: copies put in place of the originals, edited in ``document``."""
    steps: object = document.get("steps")
    if not isinstance(steps, dict):
        return []
    found: list[tuple[str, dict[str, Any]]] = []
    by_id = cast("dict[Any, Any]", steps)
    for step_id, step in list(by_id.items()):
        if isinstance(step_id, str) and isinstance(step, dict):
            copied = dict(cast("dict[str, Any]", step))
            by_id[step_id] = copied
            found.append((step_id, copied))
    return found


def _seconds(value: object) -> float | None:
    try:
        return parse_duration(value) if value is not None else None
    except ValueError:
        return None  # the format check reports it


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "list" if isinstance(value, list) else type(value).__name__


def _record_shape(plan: WorkflowPlan) -> None:
    """Put what the model asked for on the current (``tools/call run_plan``) span: steps, tools, needs.

    Never argument values (they may hold secrets): those are recorded, redacted, only when
    payload recording is on, as every call's arguments are.
    """
    span = trace.get_current_span()
    if not span.is_recording():
        return
    parts: list[str] = []
    for step in plan.steps.values():
        needs = f" <- {','.join(step.needs)}" if step.needs else ""
        fan_out = " (for_each)" if step.for_each is not None else ""
        parts.append(f"{step.id}: {step.server}.{step.tool}{fan_out}{needs}")
    shape = "; ".join(parts)
    if len(shape) > _MAX_SHAPE_CHARS:
        shape = f"{shape[:_MAX_SHAPE_CHARS]}…[+{len(shape) - _MAX_SHAPE_CHARS} chars]"
    span.add_event(EVENT_PLAN, {ATTR_PLAN_STEPS: len(plan.steps), ATTR_PLAN_SHAPE: shape})
