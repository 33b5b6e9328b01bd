"""``Aggregator``, the embedding API, against real server processes (the fault server)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import anyio
import httpx2
import mcp_types as types
import pytest
import uvicorn
import yaml
from mcp import Client

from orchestrator import Aggregator, InvalidArgumentsError, UnknownToolError, UsageError, load_config
from tests.e2e.harness import REPO_ROOT, fault_entry, write_config

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def _workflow(directory: Path) -> Path:
    folder = directory / "workflows"
    folder.mkdir()
    path = folder / "double.yaml"
    document = {
        "version": 1,
        "name": "double",
        "description": "Add a number to itself.",
        "input": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
        "steps": {"sum": {"tool": "a.add", "with": {"a": "${{ input.n }}", "b": "${{ input.n }}"}}},
        "output": {"value": {"doubled": "${{ steps.sum.result.sum }}"}},
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return folder


def _config(tmp_path: Path) -> Path:
    return write_config(tmp_path, {"a": fault_entry("--name", "a")}, workflows=[str(_workflow(tmp_path))])


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def test_an_aggregator_lists_calls_and_runs_its_workflows(tmp_path: Path) -> None:
    async with Aggregator(load_config(_config(tmp_path))) as aggregator:
        with anyio.fail_after(30):
            [status] = await aggregator.wait_for_servers()
        assert (status.server, status.state) == ("a", "ready")
        names = {tool.name for tool in await aggregator.list_tools()}
        assert {"a__echo", "a__add", "double"} <= names
        added = await aggregator.call("a__add", {"a": 2, "b": 3})
        assert not added.is_error
        assert "5" in _text(added)
        composite = await aggregator.call("double", {"n": 4})
        assert not composite.is_error, _text(composite)
        run = await aggregator.run("double", {"n": 21})
        assert run.status == "succeeded"
        assert run.output == {"doubled": 42}


async def test_mistakes_raise_the_documented_errors(tmp_path: Path) -> None:
    async with Aggregator(load_config(_config(tmp_path))) as aggregator:
        with pytest.raises(UnknownToolError) as unknown:
            await aggregator.call("a__ech", {})
        assert unknown.value.suggestions == ("a__echo",)
        with pytest.raises(InvalidArgumentsError) as invalid:
            await aggregator.run("double", {"n": "four"})
        assert invalid.value.tool == "double"
        assert any("n" in problem for problem in invalid.value.problems)
        with pytest.raises(UsageError, match="did you mean 'double'"):
            await aggregator.run("doubel", {})
        bad_arguments = await aggregator.call("a__add", {"a": "two", "b": 3})
        assert bad_arguments.is_error


async def test_serve_http_stops_gracefully_when_its_task_is_cancelled(tmp_path: Path) -> None:
    urls: list[str] = []
    listening = anyio.Event()

    def announce(url: str) -> None:
        urls.append(url)
        listening.set()

    async with Aggregator(load_config(_config(tmp_path))) as aggregator, anyio.create_task_group() as tg:
        tg.start_soon(lambda: aggregator.serve_http(port=0, on_listening=announce))
        with anyio.fail_after(30):
            await listening.wait()
            async with Client(urls[0]) as client:
                result = await client.call_tool("a__echo", {"text": "over http"})
        assert "over http" in _text(result)
        tg.cancel_scope.cancel()
    # Stopped: the port is free to bind again and nobody answers there any more.
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(urls[0].rsplit("/", 1)[0] + "/healthz", timeout=5)


async def test_the_http_app_runs_in_an_asgi_server_of_ones_own_with_its_guard(tmp_path: Path) -> None:
    # Listening before uvicorn starts: connections wait in the backlog, no need to poll for "started".
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    async with Aggregator(load_config(_config(tmp_path))) as aggregator:
        app = aggregator.http_app(host="127.0.0.1")
        server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: server.serve(sockets=[sock]))
            with anyio.fail_after(30):
                base = f"http://127.0.0.1:{port}"
                async with httpx2.AsyncClient() as http:
                    assert (await http.get(f"{base}/healthz")).status_code == 200
                    foreign = await http.post(f"{base}/mcp", headers={"Origin": "https://evil.example"}, json={})
                    assert foreign.status_code == 403
                async with Client(f"{base}/mcp") as client:
                    listed = await client.list_tools()
            assert "a__echo" in {tool.name for tool in listed.tools}
            server.should_exit = True


def test_an_aggregator_changes_nothing_process_wide(tmp_path: Path) -> None:
    config = _config(tmp_path)
    script = textwrap.dedent(
        f"""
        import json, logging, os, signal, sys
        import anyio
        from opentelemetry import trace
        from orchestrator import Aggregator, load_config

        def snapshot():
            return {{
                "provider": type(trace.get_tracer_provider()).__name__,
                "signals": [str(signal.getsignal(s)) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)],
                "fd1": list(os.fstat(1))[:2],
                "root_handlers": len(logging.getLogger().handlers),
                "root_level": logging.getLogger().level,
            }}

        async def main():
            before = snapshot()
            async with Aggregator(load_config({str(config)!r})) as aggregator:
                await aggregator.wait_for_servers()
                result = await aggregator.call("a__echo", {{"text": "hi"}})
                during = snapshot()
            print(json.dumps({{"before": before, "during": during, "after": snapshot(), "ok": not result.is_error}}))

        anyio.run(main)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["ok"]
    assert seen["before"] == seen["during"] == seen["after"]
    assert seen["before"]["provider"] == "ProxyTracerProvider"
