"""Retries: counts, Temporal delays, error classes, deadlines, timeouts and unknown outcomes."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from orchestrator.errors import DownstreamTimeout, DownstreamToolError, DownstreamUnavailable
from orchestrator.workflow import RetryPolicy, StepEvent, compile_workflow, execute
from tests.workflow.helpers import Call, FunctionInvoker, catalog_of, plan_of, text_result, tool

pytestmark = pytest.mark.anyio


class Retries:
    """Collects retry events."""

    def __init__(self) -> None:
        self.events: list[StepEvent] = []

    async def __call__(self, event: StepEvent) -> None:
        if event.kind == "retrying":
            self.events.append(event)

    @property
    def delays(self) -> list[float]:
        return [e.delay or 0.0 for e in self.events]


def failing(times: int, error: Exception, then: Any = None) -> Any:
    """A handler that raises ``error`` the first ``times`` calls, then returns ``then``."""
    calls = 0

    async def handler(call: Call) -> Any:
        nonlocal calls
        calls += 1
        if calls <= times:
            raise error
        return then if then is not None else {"ok": True}

    return handler


def retrying_step(**retry: Any) -> dict[str, Any]:
    return {"tool": "s.t", "idempotent": True, "retry": retry}


async def test_flaky_step_recovers_by_retry_with_attempts_counted_and_waits_instant() -> None:
    plan = plan_of({"a": retrying_step(max_attempts=4, initial_interval="1h")})
    retries = Retries()

    with anyio.fail_after(5):
        result = await execute(
            plan, {}, FunctionInvoker(failing(2, DownstreamUnavailable("s", "reset"))), on_event=retries
        )

    assert result.status == "succeeded"
    assert result.steps["a"].attempts == 3
    assert result.steps["a"].result == {"ok": True}
    assert [(e.attempt, e.error) for e in retries.events] == [(1, "server 's': reset"), (2, "server 's': reset")]


async def test_waits_grow_by_the_coefficient_up_to_max_interval() -> None:
    plan = plan_of(
        {"a": retrying_step(max_attempts=5, initial_interval="1s", backoff_coefficient=3, max_interval="5s")}
    )
    retries = Retries()

    result = await execute(plan, {}, FunctionInvoker(failing(10, DownstreamUnavailable("s", "x"))), on_event=retries)

    assert result.status == "failed"
    assert result.steps["a"].attempts == 5
    assert retries.delays == [1.0, 3.0, 5.0, 5.0]
    assert result.error is not None
    assert str(result.error).endswith("transport_error: server 's': x (after 5 attempts)")


async def test_full_jitter_waits_between_zero_and_the_delay() -> None:
    plan = plan_of({"a": retrying_step(max_attempts=6, initial_interval="1s", jitter="full")})
    retries = Retries()

    await execute(plan, {}, FunctionInvoker(failing(10, DownstreamUnavailable("s", "x"))), on_event=retries)

    assert len(retries.delays) == 5
    assert all(0.0 <= delay <= 2.0**n for n, delay in enumerate(retries.delays))


def test_policy_delay_follows_temporal_and_defaults_max_interval_to_100x_initial() -> None:
    policy = RetryPolicy(10, 0.5, 2.0, 3.0, "none", frozenset({"timeout"}))

    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    plan = plan_of({"a": retrying_step(initial_interval="200ms")})
    retry = plan.steps["a"].retry
    assert retry is not None
    assert retry.max_interval == pytest.approx(20.0)
    assert retry.retry_on == {"transport_error", "timeout", "rate_limited"}


async def test_deadline_stops_retries_when_the_next_wait_would_pass_it() -> None:
    plan = plan_of(
        {"a": {**retrying_step(max_attempts=10, initial_interval="1s", backoff_coefficient=2), "deadline": "2500ms"}}
    )

    result = await execute(plan, {}, FunctionInvoker(failing(10, DownstreamUnavailable("s", "x"))))

    # Waits of 1s then 2s: after the second failure, 1s slept + 2s to come would pass 2.5s.
    assert result.steps["a"].attempts == 2
    assert result.steps["a"].error_class == "transport_error"


async def test_tool_error_results_are_not_retried_unless_listed() -> None:
    def error_once() -> FunctionInvoker:
        calls = 0

        async def handler(call: Call) -> Any:
            nonlocal calls
            calls += 1
            return text_result("quota exceeded", is_error=True) if calls == 1 else {"ok": True}

        return FunctionInvoker(handler)

    unlisted = await execute(plan_of({"a": retrying_step(max_attempts=3)}), {}, error_once())
    listed = await execute(plan_of({"a": retrying_step(max_attempts=3, retry_on=["tool_error"])}), {}, error_once())

    assert unlisted.steps["a"].status == "failed"
    assert unlisted.steps["a"].attempts == 1
    assert unlisted.steps["a"].error == "the tool reported an error: quota exceeded"
    assert unlisted.steps["a"].error_class == "tool_error"
    assert listed.steps["a"].status == "succeeded"
    assert listed.steps["a"].attempts == 2


@pytest.mark.parametrize(
    ("error", "error_class", "retried_by_default"),
    [
        (DownstreamUnavailable("s", "connection lost"), "transport_error", True),
        (DownstreamToolError("s", "slow down", 429), "rate_limited", True),
        (DownstreamToolError("s", "Rate limit exceeded", -32000), "rate_limited", True),
        (DownstreamToolError("s", "bad params", -32602), "mcp_error:-32602", False),
        # Only the server's words count: a server named so is no rate limit.
        (DownstreamUnavailable("ratelimit-proxy", "connection lost"), "transport_error", True),
    ],
)
async def test_downstream_errors_map_to_error_classes_and_default_retry_on(
    error: Exception, error_class: str, retried_by_default: bool
) -> None:
    plan = plan_of({"a": retrying_step(max_attempts=2)})

    result = await execute(plan, {}, FunctionInvoker(failing(2, error)))

    assert result.steps["a"].error_class == error_class
    assert result.steps["a"].attempts == (2 if retried_by_default else 1)


async def test_mcp_error_in_retry_on_covers_every_code() -> None:
    plan = plan_of({"a": retrying_step(max_attempts=2, retry_on=["mcp_error"])})

    result = await execute(plan, {}, FunctionInvoker(failing(1, DownstreamToolError("s", "busy", -32001))))

    assert result.steps["a"].status == "succeeded"
    assert result.steps["a"].attempts == 2


async def test_timed_out_call_of_a_non_idempotent_step_is_unknown_outcome_and_never_retried() -> None:
    plan = plan_of({"a": {"tool": "s.t", "timeout": "20ms", "retry": {"max_attempts": 5}}})
    never = anyio.Event()

    async def hang(call: Call) -> Any:
        await never.wait()

    invoker = FunctionInvoker(hang)
    with anyio.fail_after(5):
        result = await execute(plan, {}, invoker)

    assert result.steps["a"].status == "unknown_outcome"
    assert result.steps["a"].error_class == "timeout"
    assert result.steps["a"].error == "timed out after 0.02s"
    assert len(invoker.calls) == 1
    assert result.status == "failed"


async def test_downstream_timeout_of_an_idempotent_step_is_retried() -> None:
    plan = plan_of({"a": retrying_step(max_attempts=3)})

    result = await execute(plan, {}, FunctionInvoker(failing(1, DownstreamTimeout("s", "timed out after 1s", 1.0))))

    assert result.steps["a"].status == "succeeded"
    assert result.steps["a"].attempts == 2


async def test_deadline_bounds_a_hanging_attempt_too() -> None:
    plan = plan_of({"a": {**retrying_step(max_attempts=3), "deadline": "30ms"}})
    never = anyio.Event()

    async def hang(call: Call) -> Any:
        await never.wait()

    with anyio.fail_after(5):
        result = await execute(plan, {}, FunctionInvoker(hang))

    assert result.steps["a"].status == "failed"
    assert result.steps["a"].error_class == "timeout"
    assert result.steps["a"].error is not None
    assert result.steps["a"].error.startswith("deadline of 0.03s reached")


async def test_result_not_matching_the_tools_output_schema_is_output_invalid() -> None:
    catalog = catalog_of(s=[tool("t", readOnlyHint=True, output_schema={"type": "object", "required": ["n"]})])
    spec = plan_of({"a": {"tool": "s.t", "retry": {"max_attempts": 2, "retry_on": ["output_invalid"]}}}).spec
    plan = compile_workflow(spec, "test.yaml", catalog)

    result = await execute(plan, {}, FunctionInvoker(failing(0, DownstreamUnavailable("s", "-"), then={"m": 1})))

    assert result.steps["a"].error_class == "output_invalid"
    assert result.steps["a"].error == "result does not match the tool's outputSchema: 'n' is a required property"
    assert result.steps["a"].attempts == 2
