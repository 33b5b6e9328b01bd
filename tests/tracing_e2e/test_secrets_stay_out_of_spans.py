"""No secret reaches a span: not from a server's env or headers, the aggregator's tokens, or tool arguments.

Canary values are planted in a stdio server's ``env``, an HTTP server's ``headers``, the
aggregator's ``ORCHESTRATOR_TOKENS`` (and, over HTTP, the caller's ``Authorization`` header)
and in tool arguments; every span every process exported is then searched for them (names,
status messages, attributes, events, resource attributes).

Canaries are short and not token-shaped, so the generic token patterns of the redactor
cannot hide them by accident: when payloads are recorded, only the configured-secret
matching masks them, and a look-alike value that is not configured must survive.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from orchestrator.tracing import MASK, tracer
from tests.e2e.harness import aggregator_params, fault_entry, http_aggregator, write_config
from tests.tracing.harness import export_spans_to
from tests.tracing_e2e._support import (
    AGGREGATOR,
    CALLER,
    Trace,
    example_server,
    export_env,
    http_example_server,
    leaks,
    text_of,
    wait_for_trace,
    write_workflow,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

    from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CALL_TIMEOUT = 30.0
ENV_SECRET = "CanaryEnvVal-4711q"
SECOND_ENV_SECRET = "CanaryEnvTwo-4711q"
HEADER_SECRET = "CanaryHeaderVal-4711q"
AUTH_HEADER_SECRET = "CanaryAuthHdr-4711q"
UPSTREAM_TOKEN = "CanaryUpstreamTok-4711q"
ARGUMENT_SECRET = "CanaryArgument-4711q"
BEARER_CREDENTIAL = "xyzCanaryBearer4711q"
LOOK_ALIKE = "CanaryPublicVal-4711q"
"""Shaped like the canaries but configured nowhere: recorded payloads must keep it."""
VISIBLE = "visible-marker"

PLANTED = (ENV_SECRET, SECOND_ENV_SECRET, HEADER_SECRET, AUTH_HEADER_SECRET, UPSTREAM_TOKEN)


def _relay(directory: Path) -> Path:
    """``relay``: passes its ``query`` to both trackers and its ``note`` to the fault server's echo."""
    return write_workflow(
        directory,
        "relay",
        {
            "local": {"tool": "tickets.search_tickets", "with": {"query": "${{ input.query }}"}},
            "remote": {"tool": "web.search_tickets", "with": {"query": "${{ input.query }}"}},
            "echo": {"tool": "f.echo", "with": {"text": "${{ input.note }}"}},
        },
        input={
            "type": "object",
            "required": ["query", "note"],
            "properties": {"query": {"type": "string"}, "note": {"type": "string"}},
        },
    )


def _config(directory: Path, web_url: str, **sections: object) -> Path:
    servers = {
        "tickets": example_server("tracker", {"TRACKER_API_KEY": ENV_SECRET}),
        "web": {
            "url": web_url,
            "headers": {"Authorization": f"Bearer {AUTH_HEADER_SECRET}", "X-Api-Key": HEADER_SECRET},
        },
        "f": fault_entry(env={"FAULT_SERVICE_PASSWORD": SECOND_ENV_SECRET}),
    }
    return write_config(directory, servers, workflows=[str(_relay(directory))], **sections)


@asynccontextmanager
async def _web_tracker(receiver: OtlpReceiver) -> AsyncGenerator[str]:
    async with http_example_server("tracker", export_env(receiver, OTEL_SERVICE_NAME="web")) as url:
        yield url


def _served_by_every_process(spans: list[ReceivedSpan]) -> bool:
    services = {s.service_name for s in spans if s.kind == "SERVER" and s.name.startswith("tools/call ")}
    return {AGGREGATOR, "tickets", "web"} <= services


async def test_secrets_in_env_headers_tokens_and_arguments_appear_in_no_span_by_default(
    tmp_path: Path, otlp_receiver: OtlpReceiver
) -> None:
    note = f"{ARGUMENT_SECRET} Bearer {BEARER_CREDENTIAL}"
    async with _web_tracker(otlp_receiver) as web_url:
        config = _config(tmp_path, web_url)
        env = export_env(otlp_receiver, ORCHESTRATOR_TOKENS=UPSTREAM_TOKEN)
        with export_spans_to(otlp_receiver.url):
            async with Client(aggregator_params(config, env=env), read_timeout_seconds=CALL_TIMEOUT) as client:
                with tracer.start_as_current_span("caller with secrets"):
                    calls = [
                        await client.call_tool("tickets__search_tickets", {"query": ARGUMENT_SECRET}),
                        await client.call_tool("web__search_tickets", {"query": ARGUMENT_SECRET}),
                        await client.call_tool("f__echo", {"text": note}),
                        await client.call_tool("relay", {"query": ARGUMENT_SECRET, "note": note}),
                    ]
        assert [text_of(c) for c in calls if c.is_error] == []
        assert ARGUMENT_SECRET in text_of(calls[2])  # the secret did travel through every process

        def complete(trace: Trace) -> bool:
            return len(trace.named("tools/call search_tickets", kind="SERVER")) >= 4 and bool(
                trace.named("invoke_workflow relay")
            )

        wait_for_trace(otlp_receiver, "caller with secrets", complete)
    spans = otlp_receiver.wait_for(_served_by_every_process)

    assert leaks(spans, [*PLANTED, ARGUMENT_SECRET, BEARER_CREDENTIAL]) == []
    recorded = [s for s in spans if {"gen_ai.tool.call.arguments", "gen_ai.tool.call.result"} & set(s.attributes)]
    assert recorded == [], "payloads are recorded only when tracing.record_payloads is on"


async def test_recorded_payloads_mask_configured_secrets_and_token_like_strings(
    tmp_path: Path, otlp_receiver: OtlpReceiver
) -> None:
    text = (
        f"{VISIBLE}; env {ENV_SECRET} and {SECOND_ENV_SECRET}; header {HEADER_SECRET}; "
        f"auth Bearer {BEARER_CREDENTIAL}; public {LOOK_ALIKE}"
    )
    async with _web_tracker(otlp_receiver) as web_url:
        config = _config(tmp_path, web_url, tracing={"record_payloads": True})
        env = export_env(otlp_receiver, ORCHESTRATOR_TOKENS=UPSTREAM_TOKEN)
        async with http_aggregator(config, env=env) as url:
            with export_spans_to(otlp_receiver.url):
                async with (
                    create_mcp_http_client(headers={"Authorization": f"Bearer {UPSTREAM_TOKEN}"}) as http_client,
                    Client(streamable_http_client(url, http_client=http_client)) as client,
                ):
                    with tracer.start_as_current_span("caller recording payloads"):
                        echoed = await client.call_tool("f__echo", {"text": text})
                        relayed = await client.call_tool("relay", {"query": VISIBLE, "note": text})
        assert not echoed.is_error, text_of(echoed)
        assert not relayed.is_error, text_of(relayed)
        assert text_of(echoed) == text  # unredacted for the caller: masking is for spans only

        trace = wait_for_trace(
            otlp_receiver,
            "caller recording payloads",
            lambda t: (
                bool(t.named("tools/call f__echo", kind="SERVER")) and bool(t.named("tools/call relay", kind="SERVER"))
            ),
        )
    spans = otlp_receiver.wait_for(_served_by_every_process)

    # The upstream call over HTTP continues the caller's trace too.
    echo_span = trace.one("tools/call f__echo", service=AGGREGATOR, kind="SERVER")
    assert trace.chain(echo_span)[-1] == (CALLER, "INTERNAL", "caller recording payloads")

    arguments = echo_span.attributes["gen_ai.tool.call.arguments"]
    result = echo_span.attributes["gen_ai.tool.call.result"]
    for recorded in (arguments, result):
        assert VISIBLE in recorded
        assert LOOK_ALIKE in recorded
        assert f"Bearer {MASK}" in recorded
        assert recorded.count(MASK) >= 4  # env, second env, header, bearer credential
    relay_arguments = trace.one("tools/call relay", service=AGGREGATOR).attributes["gen_ai.tool.call.arguments"]
    assert VISIBLE in relay_arguments
    assert LOOK_ALIKE in relay_arguments

    assert leaks(spans, [*PLANTED, BEARER_CREDENTIAL]) == []


async def test_recorded_payloads_also_mask_the_aggregators_own_bearer_tokens(
    tmp_path: Path, otlp_receiver: OtlpReceiver
) -> None:
    config = write_config(tmp_path, {"f": fault_entry()}, tracing={"record_payloads": True})
    env = export_env(otlp_receiver, ORCHESTRATOR_TOKENS=f"other-token-0001,{UPSTREAM_TOKEN}")
    async with Client(aggregator_params(config, env=env), read_timeout_seconds=CALL_TIMEOUT) as client:
        result = await client.call_tool("f__echo", {"text": f"{VISIBLE}: my token is {UPSTREAM_TOKEN}"})
    assert not result.is_error, text_of(result)

    spans = otlp_receiver.wait_for(lambda spans: any(s.name == "tools/call f__echo" for s in spans))
    (echo_span,) = [s for s in spans if s.name == "tools/call f__echo"]
    assert VISIBLE in echo_span.attributes["gen_ai.tool.call.arguments"]
    assert leaks(spans, [UPSTREAM_TOKEN]) == []
