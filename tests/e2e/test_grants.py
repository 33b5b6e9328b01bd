"""Grants over HTTP: each token sees and calls only what it was granted; audit records and rate limits."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
import mcp_types as types
import pytest
import yaml
from mcp import MCPError

from orchestrator.server import ERROR_META_KEY
from tests.e2e.harness import audit_records, bearer_client, fault_entry, http_aggregator, write_config

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

FILES_TOKEN = "files-token-canary-5e1"
ADMIN_TOKEN = "admin-token-canary-9c3"
SECRET_ARGUMENT = "argument-value-canary-77d"
CATALOGUE_VERSION_KEY = "io.github.mcp-orchestrator/catalogue-version"


def _workflow(directory: Path, name: str, steps: dict[str, Any]) -> None:
    folder = directory / "workflows"
    folder.mkdir(exist_ok=True)
    document = {"version": 1, "name": name, "description": f"test workflow {name}", "steps": steps}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def _config(tmp_path: Path, **serve: Any) -> Path:
    _workflow(
        tmp_path,
        "files_twice",
        {"a": {"tool": "files.echo", "with": {"text": "1"}}, "b": {"tool": "files.echo", "with": {"text": "2"}}},
    )
    _workflow(
        tmp_path,
        "both",
        {"a": {"tool": "files.echo", "with": {"text": "1"}}, "b": {"tool": "mail.echo", "with": {"text": "2"}}},
    )
    auth = {"tokens": {"files": {"env": "FILES_TOKEN", "grant": ["server:files", "tool:files_twice", "tool:both"]}}}
    return write_config(
        tmp_path,
        {"files": fault_entry(), "mail": fault_entry()},
        workflows=[str(tmp_path / "workflows")],
        serve={"auth": auth, **serve},
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
    )


def _env() -> dict[str, str]:
    return {"FILES_TOKEN": FILES_TOKEN, "ORCHESTRATOR_TOKENS": ADMIN_TOKEN}


async def test_a_token_sees_and_calls_only_its_grant_and_the_rest_is_unknown(tmp_path: Path) -> None:
    config = _config(tmp_path)
    async with http_aggregator(config, env=_env()) as url:
        async with bearer_client(url, FILES_TOKEN) as limited:
            limited_listing = await limited.list_tools()
            names = {tool.name for tool in limited_listing.tools}
            assert "files__echo" in names
            assert "files_twice" in names
            assert not any(name.startswith("mail__") for name in names)
            assert "both" not in names  # granted itself, but one of its steps is not
            assert {p.name for p in (await limited.list_prompts()).prompts} == {"files__greet"}
            resources = [str(r.uri) for r in (await limited.list_resources()).resources]
            assert len(resources) == 1

            ok = await limited.call_tool("files__echo", {"text": SECRET_ARGUMENT})
            assert not ok.is_error
            assert not (await limited.call_tool("files_twice", {})).is_error

            refusals: dict[str, MCPError] = {}
            for name in ("mail__echo", "both", "mail__nothing_at_all"):
                with pytest.raises(MCPError) as caught:
                    await limited.call_tool(name, {"text": "x"})
                refusals[name] = caught.value
            # A granted-away tool fails as one that does not exist; suggestions name only granted tools.
            for name, error in refusals.items():
                assert error.code == refusals["mail__nothing_at_all"].code
                assert str(error).startswith(f"unknown tool {name!r}")
                suggested = str(error).partition("did you mean")[2]
                assert "mail__" not in suggested
                assert "both" not in suggested
            with pytest.raises(MCPError):
                await limited.get_prompt("mail__greet", {"name": "x"})

        status_url = url.removesuffix("/mcp") + "/status"
        async with httpx2.AsyncClient() as http:
            limited_status = await http.get(status_url, headers={"Authorization": f"Bearer {FILES_TOKEN}"})
            assert limited_status.status_code == 403  # every server's name and state: not for a partial grant
            admin_status = await http.get(status_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            assert admin_status.status_code == 200

        async with bearer_client(url, ADMIN_TOKEN) as admin:
            admin_listing = await admin.list_tools()
            names = {tool.name for tool in admin_listing.tools}
            assert {"files__echo", "mail__echo", "both", "files_twice"} <= names
            assert not (await admin.call_tool("both", {})).is_error

    records = audit_records(config)
    # One record per call and per step of a run: exactly the calls made above (refusals as unknown are no calls).
    assert sorted((r["client_id"], r["tool"], r["step_id"] or "") for r in records) == [
        ("token", "both", ""),
        ("token", "both", "a"),
        ("token", "both", "b"),
        ("token:files", "files__echo", ""),
        ("token:files", "files_twice", ""),
        ("token:files", "files_twice", "a"),
        ("token:files", "files_twice", "b"),
    ]
    # The version is of the whole catalogue, not of what one principal sees; every call records it.
    version = (admin_listing.meta or {})[CATALOGUE_VERSION_KEY]
    assert (limited_listing.meta or {})[CATALOGUE_VERSION_KEY] == version
    assert {r["catalogue_version"] for r in records} == {version}
    echo = next(r for r in records if r["tool"] == "files__echo")
    assert echo["server"] == "files"
    assert echo["downstream_tool"] == "echo"
    assert echo["argument_shape"] == {"text": "string"}
    dump = json.dumps(records)
    for secret in (SECRET_ARGUMENT, FILES_TOKEN, ADMIN_TOKEN):
        assert secret not in dump


async def test_a_runaway_principal_is_refused_with_a_retry_time_and_recovers(tmp_path: Path) -> None:
    config = _config(tmp_path, rate_limits={"per_tool": {"rate": 0.25, "burst": 1}})
    async with http_aggregator(config, env=_env()) as url, bearer_client(url, FILES_TOKEN) as client:
        assert not (await client.call_tool("files__echo", {"text": "1"})).is_error
        refused = await client.call_tool("files__echo", {"text": "2"})
        assert refused.is_error
        error = (refused.meta or {})[ERROR_META_KEY]
        assert error["type"] == "RateLimitedError"
        assert "retry in" in "".join(b.text for b in refused.content if isinstance(b, types.TextContent))
        # Another tool has its own bucket; another principal too.
        assert not (await client.call_tool("files__add", {"a": 1, "b": 2})).is_error
        async with bearer_client(url, ADMIN_TOKEN) as admin:
            assert not (await admin.call_tool("files__echo", {"text": "3"})).is_error
        await anyio.sleep(error["retry_after"])  # what a client told to retry in N seconds does
        assert not (await client.call_tool("files__echo", {"text": "4"})).is_error
    outcomes = [
        r["outcome"] for r in audit_records(config) if r["client_id"] == "token:files" and r["tool"] == "files__echo"
    ]
    assert outcomes == ["ok", "RateLimitedError", "ok"]
