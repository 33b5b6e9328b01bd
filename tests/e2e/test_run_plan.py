"""run_plan end to end: ``orchestrator serve`` over a stdio and an HTTP fault server, driven by the SDK client."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
import pytest
from mcp import Client, MCPError

from orchestrator.server import ERROR_META_KEY, RUN_META_KEY, RUN_PLAN_TOOL_NAME
from tests.e2e.harness import (
    aggregator_params,
    audit_records,
    bearer_client,
    events_seen,
    fault_entry,
    http_aggregator,
    http_fault_server,
    write_config,
)
from tests.fakes import EVENTS_FILE_ENV

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

pytestmark = pytest.mark.anyio

LIMIT = 60.0
"""Bound of each test: two servers and the aggregator start (a few seconds on a busy machine)."""

FILES_TOKEN = "files-token-canary-41b"
ADMIN_TOKEN = "admin-token-canary-c07"

PARALLEL_THEN_JOIN: dict[str, Any] = {
    "steps": {
        "local": {"tool": "files__add", "with": {"a": 2, "b": 3}},
        "remote": {"tool": "mail.add", "with": {"a": 1000, "b": 337}},
        "join": {
            "tool": "files__echo",
            "needs": ["local", "remote"],
            "with": {"text": "sum ${{ steps.local.result.sum }} and ${{ steps.remote.result.sum }}"},
        },
    },
    "output": {"value": {"characters": "${{ length(steps.join.result.text) }}"}},
}


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


@asynccontextmanager
async def _deployment(tmp_path: Path, *, plans: bool = True) -> AsyncGenerator[tuple[Path, Path, Path], None]:
    """A config over ``files`` (stdio) and ``mail`` (HTTP), each logging its calls; yields it and their events files."""
    files_events, mail_events = tmp_path / "files.events", tmp_path / "mail.events"
    async with http_fault_server("--call-events", env={EVENTS_FILE_ENV: str(mail_events)}) as (mail_url, _process):
        auth = {"tokens": {"files": {"env": "FILES_TOKEN", "grant": ["server:files"]}}}
        config = write_config(
            tmp_path,
            {
                "files": fault_entry("--call-events", env={EVENTS_FILE_ENV: str(files_events)}),
                "mail": {"url": mail_url},
            },
            catalog={
                "plans": plans,
                "plan_limits": {"max_steps": 4, "max_fan_out": 3, "max_concurrency": 4, "timeout": "2s"},
            },
            serve={"auth": auth},
            state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
        )
        yield config, files_events, mail_events


def _env() -> dict[str, str]:
    return {"FILES_TOKEN": FILES_TOKEN, "ORCHESTRATOR_TOKENS": ADMIN_TOKEN}


def _calls(events: Path) -> list[str]:
    if not events.exists():  # a server that was never called has written nothing
        return []
    return [line for line in events.read_text(encoding="utf-8").splitlines() if line.startswith("called ")]


async def test_a_valid_plan_runs_over_stdio_and_http_servers_and_only_its_output_comes_back(tmp_path: Path) -> None:
    with anyio.fail_after(LIMIT):
        async with _deployment(tmp_path) as (config, files_events, mail_events):
            async with Client(aggregator_params(config, env=_env())) as client:
                listed = [tool.name for tool in (await client.list_tools()).tools]
                result = await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": PARALLEL_THEN_JOIN})
            assert RUN_PLAN_TOOL_NAME in listed
            assert not result.is_error, _text(result)
            assert result.structured_content == {"characters": len("sum 5 and 1337")}
            # Nothing of the steps' results reaches the model: not the sums, not the echoed text.
            # (Only ids are in _meta, and they are hex: the content is where a value could leak.)
            returned = json.dumps([b.model_dump(mode="json") for b in result.content] + [result.structured_content])
            for intermediate in ("1337", "sum 5", '"sum"'):
                assert intermediate not in returned
            assert set(result.meta or {}) == {RUN_META_KEY, types.SERVER_INFO_META_KEY}
            assert result.meta is not None
            assert result.meta[RUN_META_KEY]["status"] == "succeeded"
            assert sorted(_calls(files_events)) == ["called add", "called echo"]
            assert _calls(mail_events) == ["called add"]


async def test_a_wrong_plan_comes_back_as_one_tool_error_listing_each_problem_where_it_is(tmp_path: Path) -> None:
    plan = {
        "steps": {
            "one": {"tool": "files__ech", "with": {"text": "x"}},
            "two": {"tool": "mail.add", "with": {"a": "${{ steps.one.result }}"}, "retry": {"max_attempts": 0}},
            "three": {"tool": "files.echo", "needs": ["zero"]},
        },
        "output": {"value": "${{ steps.two.result.sum }}"},
        "limits": {"timeout": "10s"},
    }
    with anyio.fail_after(LIMIT):
        async with _deployment(tmp_path) as (config, files_events, mail_events):
            async with http_aggregator(config, env=_env()) as url, bearer_client(url, ADMIN_TOKEN) as client:
                result = await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": plan})
                marker = await client.call_tool("mail__echo", {"text": "marker"})
                await events_seen(mail_events, "called echo")
            assert not marker.is_error
            assert result.is_error
            assert (result.meta or {})[ERROR_META_KEY]["type"] == "WorkflowDefinitionError"
            problems = _text(result).splitlines()
            expected = [
                "plan: steps.one.tool: unknown tool 'files__ech'; did you mean 'files__echo'?",
                "plan: limits.timeout: 10s is more than run_plan allows (2s); a plan may only lower it",
                "plan: steps.two.retry.max_attempts: ",
                "plan: steps.three.needs[0]: needs unknown step 'zero'",
                "plan: steps.two.with: refers to step 'one', which it does not need",
                "plan: steps.three.with: missing required argument 'text' of files.echo",
                "plan: steps.two.with: missing required argument 'b' of mail.add",
            ]
            for start in expected:
                assert sum(problem.startswith(start) for problem in problems) == 1, (start, problems)
            assert len(problems) == len(expected), problems
            assert _calls(files_events) == []
            assert _calls(mail_events) == ["called echo"]


async def test_plans_over_their_caps_are_refused_or_fail_saying_which_cap(tmp_path: Path) -> None:
    five_steps = {f"s{n}": {"tool": "files__add", "with": {"a": n, "b": 1}} for n in range(5)}
    fan_out = {
        "steps": {"each": {"tool": "mail__echo", "for_each": "${{ `[1, 2, 3, 4]` }}", "with": {"text": "x"}}},
    }
    stuck = {"steps": {"wait": {"tool": "files__hang"}}}
    with anyio.fail_after(LIMIT):
        async with _deployment(tmp_path) as (config, files_events, mail_events):
            async with http_aggregator(config, env=_env()) as url, bearer_client(url, ADMIN_TOKEN) as client:
                too_many = await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": {"steps": five_steps}})
                too_wide = await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": fan_out})
                too_long = await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": stuck})
                await events_seen(files_events, "cancelled hang")  # the call in flight was cancelled downstream
            assert too_many.is_error
            assert _text(too_many) == "plan: steps: the plan has 5 steps; run_plan runs at most 4"
            assert not any(line == "called add" for line in _calls(files_events))

            assert too_wide.is_error
            assert "step 'each' failed: too_many_items: for_each yielded 4 items" in _text(too_wide)
            assert "run_plan runs at most 3 items per for_each" in _text(too_wide)
            assert _calls(mail_events) == []

            assert too_long.is_error
            assert "step 'wait' failed: the run exceeded limits.timeout (2s)" in _text(too_long)
            assert (too_long.meta or {})[ERROR_META_KEY]["failed_step"] == "wait"


async def test_a_step_the_caller_is_not_granted_is_refused_as_unknown_and_nothing_runs(tmp_path: Path) -> None:
    plan = {
        "steps": {
            "mine": {"tool": "files__echo", "with": {"text": "allowed"}},
            "theirs": {"tool": "mail__echo", "with": {"text": "not allowed"}},
        },
    }
    with anyio.fail_after(LIMIT):
        async with _deployment(tmp_path) as (config, files_events, mail_events):
            async with http_aggregator(config, env=_env()) as url:
                async with bearer_client(url, FILES_TOKEN) as limited:
                    listed = [tool.name for tool in (await limited.list_tools()).tools]
                    refused = await limited.call_tool(RUN_PLAN_TOOL_NAME, {"plan": plan})
                    plan["steps"]["theirs"]["tool"] = "mail__nothing_at_all"
                    unknown = await limited.call_tool(RUN_PLAN_TOOL_NAME, {"plan": plan})
                    del plan["steps"]["theirs"]
                    granted = await limited.call_tool(RUN_PLAN_TOOL_NAME, {"plan": plan})
                await events_seen(files_events, "called echo")
            assert RUN_PLAN_TOOL_NAME in listed  # offered to every principal: each step is checked
            assert refused.is_error
            assert _text(refused) == "plan: steps.theirs.tool: unknown tool 'mail__echo'; did you mean 'files__echo'?"
            assert _text(unknown).startswith("plan: steps.theirs.tool: unknown tool 'mail__nothing_at_all'")
            assert "mail__" not in _text(unknown).partition("did you mean")[2]
            assert not granted.is_error, _text(granted)
            # The refused plans ran nothing, not even their granted step; the granted plan ran once.
            assert _calls(files_events) == ["called echo"]
            assert _calls(mail_events) == []

    records = audit_records(config)
    plan_records = sorted((r["tool"], r["step_id"] or "", r["outcome"]) for r in records if r["tool"] == "run_plan")
    # The refused plans are recorded as calls that failed, the granted one with its one step.
    assert plan_records == [
        ("run_plan", "", "ok"),
        ("run_plan", "", "tool_error"),
        ("run_plan", "", "tool_error"),
        ("run_plan", "mine", "ok"),
    ]


async def test_run_plan_is_not_offered_and_is_an_unknown_tool_while_plans_are_off(tmp_path: Path) -> None:
    with anyio.fail_after(LIMIT):
        async with _deployment(tmp_path, plans=False) as (config, files_events, _mail_events):
            async with Client(aggregator_params(config, env=_env())) as client:
                listed = [tool.name for tool in (await client.list_tools()).tools]
                with pytest.raises(MCPError) as caught:
                    await client.call_tool(RUN_PLAN_TOOL_NAME, {"plan": PARALLEL_THEN_JOIN})
            assert "files__echo" in listed
            assert RUN_PLAN_TOOL_NAME not in listed
            assert caught.value.code == types.INVALID_PARAMS
            assert str(caught.value).startswith("unknown tool 'run_plan'")
            assert _calls(files_events) == []
