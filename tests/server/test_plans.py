"""run_plan served in process: plans compiled for real against the live catalogue, run, capped and checked."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
import pytest
from mcp import MCPError

from orchestrator.auth import Grant, Principal
from orchestrator.catalog import Catalog, ServerManifest, build_catalog
from orchestrator.config import CatalogSpec, PlanLimitsSpec
from orchestrator.errors import WorkflowDefinitionError
from orchestrator.server import (
    RUN_META_KEY,
    RUN_PLAN_TOOL_NAME,
    Composites,
    Loaded,
    OrchestratorServer,
    Reloader,
)
from orchestrator.server._plans import ATTR_PLAN_SHAPE, EVENT_PLAN, Plans
from tests.fakes.inprocess import ToolServer
from tests.server.helpers import ToolsChanged, connect, text_of
from tests.server.helpers import serving as serving_servers
from tests.tracing.harness import capture_spans

if TYPE_CHECKING:
    from collections.abc import Mapping
    from contextlib import AbstractAsyncContextManager

pytestmark = pytest.mark.anyio

LIMIT = 10.0
"""Bound of every test; each takes well under a second."""

SUM_BOTH_THEN_SAY: dict[str, Any] = {
    "steps": {
        "left": {"tool": "a__add", "with": {"a": 2, "b": 3}},
        "right": {"tool": "b.add", "with": {"a": 10, "b": 20}},
        "say": {
            "tool": "a__echo",
            "needs": ["left", "right"],
            "with": {"text": "${{ steps.left.result.result }}+${{ steps.right.result.result }}"},
        },
    },
    "output": {"value": {"length": "${{ length(steps.say.result.result) }}"}},
}


def serving(
    servers: Mapping[str, ToolServer], *, catalog: Mapping[str, Any] | None = None, **entry: Any
) -> AbstractAsyncContextManager[OrchestratorServer]:
    """The orchestrator over in-process ``servers``, with ``catalog`` settings (plans on unless said)."""
    return serving_servers(servers, catalog={"plans": True} if catalog is None else catalog, **entry)


def _two_servers() -> dict[str, ToolServer]:
    return {"a": ToolServer("alpha"), "b": ToolServer("beta")}


async def test_a_plan_runs_its_steps_and_only_its_output_comes_back() -> None:
    servers = _two_servers()
    with anyio.fail_after(LIMIT):
        async with serving(servers) as server, connect(server) as client:
            assert RUN_PLAN_TOOL_NAME in [tool.name for tool in (await client.list_tools()).tools]
            result = await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": SUM_BOTH_THEN_SAY})
    assert not result.is_error, text_of(result)
    assert result.structured_content == {"length": 4}
    assert json.loads(text_of(result)) == {"length": 4}
    # The steps' results stayed here: neither the sums nor the echoed text reach the model.
    # (Only ids are in _meta, and they are hex: the content is where a value could leak.)
    returned = json.dumps([block.model_dump(mode="json") for block in result.content] + [result.structured_content])
    for intermediate in ("5+30", "30", '"result"'):
        assert intermediate not in returned
    assert set(result.meta or {}) == {RUN_META_KEY, types.SERVER_INFO_META_KEY}
    assert sorted(servers["a"].calls) == [("add", {"a": 2, "b": 3}), ("echo", {"text": "5+30"})]
    assert servers["b"].calls == [("add", {"a": 10, "b": 20})]
    assert result.meta is not None
    assert result.meta[RUN_META_KEY]["status"] == "succeeded"


async def test_a_plan_sent_as_json_text_is_taken_as_the_object_it_spells() -> None:
    with anyio.fail_after(LIMIT):
        async with serving(_two_servers()) as server, connect(server) as client:
            result = await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": json.dumps(SUM_BOTH_THEN_SAY)})
            not_json = await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": "{steps: "})
    assert result.structured_content == {"length": 4}
    assert not_json.is_error
    assert text_of(not_json).startswith("plan: plan is text that is not JSON")


async def test_a_wrong_plan_is_one_tool_error_listing_every_problem_with_its_place_and_nothing_runs() -> None:
    servers = _two_servers()
    plan = {
        "name": "mine",
        "steps": {
            "first": {"tool": "a__ad", "with": {"a": 1, "b": 2}},
            "second": {"tool": "b.add", "with": {"a": "${{ steps.first.result }}"}},
            "third": {"tool": "a.echo", "needs": ["fourth"], "with": {"text": "hi"}, "colour": "red"},
        },
        "output": {"value": "${{ steps.nowhere.result }}"},
    }
    with anyio.fail_after(LIMIT):
        async with serving(servers) as server, connect(server) as client:
            result = await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": plan})
    assert result.is_error
    assert result.meta is not None
    assert result.meta["io.github.mcp-orchestrator/error"]["type"] == "WorkflowDefinitionError"
    problems = text_of(result).splitlines()
    expected = [
        "plan: name: a plan has no name",
        "plan: steps.first.tool: unknown tool 'a__ad'; did you mean 'a__add'?",
        "plan: steps.second.with: refers to step 'first', which it does not need",
        "plan: steps.second.with: missing required argument 'b' of b.add",
        "plan: steps.third.colour: unknown key",
        "plan: steps.third.needs[0]: needs unknown step 'fourth'",
        "plan: output.value: refers to unknown step 'nowhere'",
    ]
    for start in expected:
        assert any(problem.startswith(start) for problem in problems), (start, problems)
    assert len(problems) == len(expected), problems
    assert servers["a"].calls == servers["b"].calls == []


async def test_a_plan_with_more_steps_than_its_cap_is_refused_before_anything_runs() -> None:
    servers = _two_servers()
    steps = {f"s{index}": {"tool": "a__add", "with": {"a": index, "b": 1}} for index in range(4)}
    with anyio.fail_after(LIMIT):
        async with (
            serving(servers, catalog={"plans": True, "plan_limits": {"max_steps": 3}}) as server,
            connect(server) as client,
        ):
            result = await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": {"steps": steps}})
    assert result.is_error
    assert text_of(result) == "plan: steps: the plan has 4 steps; run_plan runs at most 3"
    assert servers["a"].calls == []


async def test_a_for_each_over_more_items_than_the_cap_fails_its_step_saying_so() -> None:
    servers = _two_servers()

    def plan(items: str) -> dict[str, Any]:
        step = {"tool": "a__echo", "for_each": f"${{{{ `{items}` }}}}", "with": {"text": "${{ to_string(item) }}"}}
        return {"steps": {"many": step}, "output": {"value": "${{ steps.many.result }}"}}

    with anyio.fail_after(LIMIT):
        async with (
            serving(servers, catalog={"plans": True, "plan_limits": {"max_fan_out": 3}}) as server,
            connect(server) as client,
        ):
            result = await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": plan("[1, 2, 3, 4]")})
            within = await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": plan("[1, 2, 3]")})
    assert result.is_error
    assert "step 'many' failed: too_many_items: for_each yielded 4 items" in text_of(result)
    assert "run_plan runs at most 3 items per for_each" in text_of(result)
    assert result.meta is not None
    assert result.meta[RUN_META_KEY]["failed_step"] == "many"
    assert not within.is_error, text_of(within)
    assert within.structured_content is None  # a list output: text only
    assert json.loads(text_of(within)) == [{"result": "1"}, {"result": "2"}, {"result": "3"}]
    assert sorted(call[1]["text"] for call in servers["a"].calls) == ["1", "2", "3"]


async def test_a_plan_running_past_its_time_cap_fails_naming_the_step_in_flight() -> None:
    servers = _two_servers()
    plan = {"steps": {"stuck": {"tool": "a__hang"}}}
    with anyio.fail_after(LIMIT):
        async with (
            serving(servers, catalog={"plans": True, "plan_limits": {"timeout": "300ms"}}) as server,
            connect(server) as client,
        ):
            result = await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": plan})
    assert result.is_error
    assert "step 'stuck' failed: the run exceeded limits.timeout (0.3s)" in text_of(result)


def test_a_plan_may_lower_its_limits_but_not_raise_them_over_the_caps() -> None:
    plans = Plans(PlanLimitsSpec(max_steps=5, max_fan_out=10, max_concurrency=4, timeout=60))
    catalog = _catalog_of({"a": ["add", "echo"]})
    step = {"tool": "a.echo", "for_each": "${{ `[1]` }}", "with": {"text": "x"}}

    default = plans.prepare({"plan": {"steps": {"one": step}}}, catalog)
    assert (default.timeout, default.max_parallel, default.steps["one"].max_items) == (60, 4, 10)

    lowered = {"steps": {"one": {**step, "max_items": 2}}, "limits": {"timeout": "5s", "max_parallel": 2}}
    plan = plans.prepare({"plan": lowered}, catalog)
    assert (plan.timeout, plan.max_parallel, plan.steps["one"].max_items) == (5, 2, 2)

    raised = {"steps": {"one": {**step, "max_items": 11}}, "limits": {"timeout": "2m", "max_parallel": 5}}
    with pytest.raises(WorkflowDefinitionError) as caught:
        plans.prepare({"plan": raised}, catalog)
    assert caught.value.problems == [
        "plan: limits.timeout: 120s is more than run_plan allows (60s); a plan may only lower it",
        "plan: limits.max_parallel: 5 is more than run_plan allows (4); a plan may only lower it",
        "plan: steps.one.max_items: 11 is more than run_plan allows (10 items per for_each)",
    ]


def test_a_tool_the_caller_is_not_granted_is_told_exactly_as_an_unknown_one() -> None:
    plans = Plans(PlanLimitsSpec())
    catalog = _catalog_of({"a": ["add", "echo"], "b": ["add", "wipe"]})

    def allowed(server: str, tool: str) -> bool:
        return server == "a"

    def problems_of(tool: str) -> list[str]:
        with pytest.raises(WorkflowDefinitionError) as caught:
            plans.prepare({"plan": {"steps": {"one": {"tool": tool, "with": {"a": 1, "b": 2}}}}}, catalog, allowed)
        return caught.value.problems

    # Granted away and not there at all read alike, and suggest only what the caller may use.
    assert problems_of("b__add") == ["plan: steps.one.tool: unknown tool 'b__add'; did you mean 'a__add'?"]
    assert problems_of("c__add") == ["plan: steps.one.tool: unknown tool 'c__add'; did you mean 'a__add'?"]
    assert problems_of("b.add") == ["plan: steps.one.tool: unknown tool 'b.add'; did you mean 'a.add'?"]
    assert problems_of("c.add") == ["plan: steps.one.tool: unknown tool 'c.add'; did you mean 'a.add'?"]
    assert problems_of("b.wipe") == ["plan: steps.one.tool: unknown tool 'b.wipe'"]
    assert problems_of("c.wipe") == ["plan: steps.one.tool: unknown tool 'c.wipe'"]
    # The owner (everything granted) may name either server's tools, both ways.
    owner = plans.prepare({"plan": {"steps": {"one": {"tool": "b__wipe"}, "two": {"tool": "b.add"}}}}, catalog)
    assert [(step.server, step.tool) for step in owner.steps.values()] == [("b", "wipe"), ("b", "add")]


async def test_run_plan_is_neither_listed_nor_callable_while_plans_are_off() -> None:
    servers = _two_servers()
    with anyio.fail_after(LIMIT):
        async with serving(servers, catalog={}) as server, connect(server) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
            with pytest.raises(MCPError) as caught:
                await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": SUM_BOTH_THEN_SAY})
    assert RUN_PLAN_TOOL_NAME not in names
    assert caught.value.code == types.INVALID_PARAMS
    assert str(caught.value).startswith("unknown tool 'run_plan'")
    assert servers["a"].calls == servers["b"].calls == []


async def test_a_downstream_tool_called_run_plan_gives_way_to_the_meta_tool_while_plans_are_on() -> None:
    servers = {"a": ToolServer("alpha")}
    await servers["a"].add_echo_tool(RUN_PLAN_TOOL_NAME)
    with anyio.fail_after(LIMIT):
        async with serving(servers, prefix=False) as server, connect(server) as client:
            tools = (await client.list_tools()).tools
        async with serving(servers, catalog={}, prefix=False) as server, connect(server) as client:
            off = (await client.list_tools()).tools
    named = [tool for tool in tools if tool.name == RUN_PLAN_TOOL_NAME]
    assert len(named) == 1
    assert named[0].description is not None
    assert named[0].description.startswith("Run a plan")
    renamed = [tool.name for tool in tools if tool.name.startswith(f"{RUN_PLAN_TOOL_NAME}_")]
    assert len(renamed) == 1  # the downstream's own, under the catalogue's hash suffix
    assert [tool.description for tool in off if tool.name == RUN_PLAN_TOOL_NAME] == ["run_plan: returns the text."]


async def test_the_tool_definition_states_the_caps_and_stays_small() -> None:
    with anyio.fail_after(LIMIT):
        async with (
            serving(_two_servers(), catalog={"plans": True, "plan_limits": {"max_steps": 7}}) as server,
            connect(server) as client,
        ):
            tool = next(t for t in (await client.list_tools()).tools if t.name == RUN_PLAN_TOOL_NAME)
    assert tool.description is not None
    assert "Caps: 7 steps, 50 for_each items, 8 calls at once, 120s in all." in tool.description
    assert tool.input_schema["required"] == ["plan"]
    # About 4 characters a token: the whole definition stays under ~400 tokens.
    assert len(json.dumps(tool.model_dump(mode="json", by_alias=True, exclude_none=True))) < 1600


async def test_the_plan_shape_goes_on_the_call_span_but_not_its_values() -> None:
    plan = json.loads(json.dumps(SUM_BOTH_THEN_SAY))
    plan["steps"]["left"]["with"]["password"] = "hunter2-canary"
    with capture_spans() as exporter, anyio.fail_after(LIMIT):
        async with serving(_two_servers()) as server, connect(server) as client:
            result = await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": plan})
    assert not result.is_error, text_of(result)
    events = [event for span in exporter.get_finished_spans() for event in span.events if event.name == EVENT_PLAN]
    assert len(events) == 1
    attributes = events[0].attributes or {}
    assert attributes[ATTR_PLAN_SHAPE] == "left: a.add; right: b.add; say: a.echo <- left,right"
    spans = exporter.get_finished_spans()
    assert any(span.name == "invoke_workflow run_plan" for span in spans)
    dump = json.dumps([dict(span.attributes or {}) for span in spans] + [dict(attributes)])
    assert "hunter2-canary" not in dump


async def test_a_plan_with_an_approval_step_fails_before_calling_anything_when_nobody_can_be_asked() -> None:
    servers = _two_servers()
    plan = {"steps": {"ask": {"tool": "a__add", "approve": "Add them?", "with": {"a": 1, "b": 2}}}}
    with anyio.fail_after(LIMIT):
        async with serving(servers) as server, connect(server) as client:
            result = await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": plan})
    assert result.is_error
    assert "needs the user's approval, and the client cannot be asked" in text_of(result)
    assert servers["a"].calls == []


async def test_each_step_is_checked_against_the_callers_grant_before_anything_runs() -> None:
    servers = _two_servers()
    principal = Principal(kind="token", client_id="token:a", subject=None, grant=Grant.of(["server:a"]))
    plan = {"steps": {"mine": {"tool": "a__add", "with": {"a": 1, "b": 2}}, "theirs": {"tool": "b__add"}}}
    with anyio.fail_after(LIMIT):
        async with serving(servers) as server:
            plans = server.plans
            assert plans is not None
            result = await plans.run(server.pool, {"plan": plan}, principal=principal, policy=server.policy())
    assert result.is_error
    assert text_of(result) == "plan: steps.theirs.tool: unknown tool 'b__add'; did you mean 'a__add'?"
    assert servers["a"].calls == servers["b"].calls == []


def _catalog_of(servers: Mapping[str, list[str]]) -> Catalog:
    """A catalogue of servers whose tools take ``a`` and ``b`` (integers) or ``text``."""

    def tool(name: str) -> types.Tool:
        properties = {"text": {"type": "string"}} if name == "echo" else {"a": {"type": "integer"}}
        return types.Tool(name=name, input_schema={"type": "object", "properties": properties})

    manifests = [ServerManifest(key, key, tools=tuple(tool(name) for name in names)) for key, names in servers.items()]
    return build_catalog(manifests)


async def test_a_reload_that_turns_plans_on_offers_run_plan_and_tells_clients() -> None:
    servers = _two_servers()
    seen = ToolsChanged()
    with anyio.fail_after(LIMIT):
        async with (
            serving(servers, catalog={}) as server,
            connect(server, mode="legacy", message_handler=seen) as client,
        ):
            before = [tool.name for tool in (await client.list_tools()).tools]
            on = server.pool.config.model_copy(update={"catalog": CatalogSpec(plans=True)})
            record = await Reloader(server, server.pool, lambda: Loaded(on, Composites(()))).reload("test")
            await seen.changed.wait()
            after = [tool.name for tool in (await client.list_tools()).tools]
            result = await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": SUM_BOTH_THEN_SAY})
    assert record.ok
    assert RUN_PLAN_TOOL_NAME not in before
    assert after == [*before, RUN_PLAN_TOOL_NAME]
    assert result.structured_content == {"length": 4}
