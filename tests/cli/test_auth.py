"""``orchestrator auth``: run as a process against a config whose state is a temporary SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
import pytest
from sqlalchemy.engine import make_url

from orchestrator.auth._owner import verify_password
from orchestrator.store import (
    IssuedToken,
    find_access_token,
    find_client,
    find_owner,
    issue_tokens,
    open_store,
    save_client,
    set_grant,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from sqlalchemy.ext.asyncio import AsyncEngine

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "orchestrator.yaml"
    path.write_text(f"servers: {{}}\nstate: {{url: 'sqlite:///{tmp_path / 'state.db'}'}}\n", encoding="utf-8")
    return path


def _auth(
    tmp_path: Path, *argv: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "auth", *argv, "-c", str(_config(tmp_path))],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def _in_store(tmp_path: Path, work: Callable[[AsyncEngine], Awaitable[None]]) -> None:
    async def run() -> None:
        async with open_store(make_url(f"sqlite+aiosqlite:///{tmp_path / 'state.db'}")) as store:
            await work(store.engine)

    anyio.run(run)


def _seed(tmp_path: Path) -> None:
    async def seed(engine: AsyncEngine) -> None:
        for client_id, name in (("claude-1", "Claude"), ("chatgpt-1", "ChatGPT")):
            await save_client(
                engine,
                client_id,
                origin="dynamic",
                registration={"client_name": name, "redirect_uris": [f"https://{name.lower()}.example/cb"]},
                secret_hash=None,
                now=NOW,
            )
        await set_grant(engine, "claude-1", ["server:db", "tool:tickets__get"], NOW)
        token = IssuedToken(
            "0" * 64, "claude-1", "f" * 32, ("mcp",), "https://x/mcp", "owner", NOW, NOW.replace(year=2099)
        )
        await issue_tokens(engine, token, None)

    _in_store(tmp_path, seed)


def _grant_of(tmp_path: Path, client_id: str) -> tuple[str, ...] | None:
    found: list[tuple[str, ...] | None] = []

    async def read(engine: AsyncEngine) -> None:
        client = await find_client(engine, client_id)
        assert client is not None
        found.append(client.grant)

    _in_store(tmp_path, read)
    return found[0]


def test_set_password_stores_only_a_hash_and_refuses_a_short_one(tmp_path: Path) -> None:
    short = _auth(tmp_path, "set-password", "--password-stdin", stdin="too short\n")
    assert short.returncode == 1
    assert "at least 12 characters" in short.stderr
    done = _auth(tmp_path, "set-password", "--password-stdin", stdin="a sufficiently long password\n")
    assert done.returncode == 0, done.stderr
    owners: list[str] = []

    async def read(engine: AsyncEngine) -> None:
        owner = await find_owner(engine)
        assert owner is not None
        owners.append(owner.password_hash)

    _in_store(tmp_path, read)
    assert verify_password("a sufficiently long password", owners[0])
    assert "sufficiently" not in owners[0]


def test_clients_are_listed_as_a_table_and_as_json(tmp_path: Path) -> None:
    _seed(tmp_path)
    table = _auth(tmp_path, "clients")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["CLIENT", "NAME", "REDIRECTS", "TO", "STATUS", "GRANT", "REGISTERED"]
    by_id = {row.split()[0]: row for row in rows}
    assert "claude.example" in by_id["claude-1"]
    assert "approved" in by_id["claude-1"]
    assert "server:db, tool:tickets__get" in by_id["claude-1"]
    assert "not approved" in by_id["chatgpt-1"]

    listed = json.loads(_auth(tmp_path, "clients", "--json").stdout)
    assert [(item["client_id"], item["status"], item["grant"]) for item in listed] == [
        ("chatgpt-1", "not approved", None),
        ("claude-1", "approved", ["server:db", "tool:tickets__get"]),
    ]


def test_grants_are_shown_and_set_and_a_bad_selector_changes_nothing(tmp_path: Path) -> None:
    _seed(tmp_path)
    shown = _auth(tmp_path, "grants", "claude-1")
    assert shown.stdout.splitlines() == ["server:db", "tool:tickets__get"]
    bad = _auth(tmp_path, "grants", "claude-1", "--set", "server:db", "servers:all")
    assert bad.returncode == 1
    assert "--set servers:all: 'servers:all' is not a grant selector" in bad.stderr
    assert _grant_of(tmp_path, "claude-1") == ("server:db", "tool:tickets__get")
    done = _auth(tmp_path, "grants", "chatgpt-1", "--set", "tool:a__b", "server:c", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"client_id": "chatgpt-1", "grant": ["server:c", "tool:a__b"]}
    assert _grant_of(tmp_path, "chatgpt-1") == ("server:c", "tool:a__b")
    assert _auth(tmp_path, "grants", "nobody").returncode == 1


def _editor(tmp_path: Path, text: str) -> dict[str, str]:
    """An $EDITOR that checks it was given the current grant, then writes ``text`` over it."""
    script = tmp_path / "editor.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import pathlib, sys
            path = pathlib.Path(sys.argv[1])
            assert "- server:db" in path.read_text(), path.read_text()
            path.write_text({text!r})
            """
        ),
        encoding="utf-8",
    )
    return {"EDITOR": f"{sys.executable} {script}", "VISUAL": ""}


def test_grants_edit_saves_a_valid_list_and_names_the_line_of_a_bad_one(tmp_path: Path) -> None:
    _seed(tmp_path)
    bad = _auth(tmp_path, "grants", "claude-1", "--edit", env=_editor(tmp_path, "# mine\n- server:db\n- 'sever db'\n"))
    assert bad.returncode == 1
    assert "grant.yaml:3: 'sever db' is not a grant selector" in bad.stderr
    assert _grant_of(tmp_path, "claude-1") == ("server:db", "tool:tickets__get")

    good = _auth(tmp_path, "grants", "claude-1", "--edit", env=_editor(tmp_path, "- server:db\n- '*'\n"))
    assert good.returncode == 0, good.stderr
    assert _grant_of(tmp_path, "claude-1") == ("*", "server:db")


def test_revoke_takes_the_grant_and_tokens_and_an_unknown_client_is_an_error(tmp_path: Path) -> None:
    _seed(tmp_path)
    done = _auth(tmp_path, "revoke", "claude-1")
    assert done.returncode == 0, done.stderr
    assert "must be approved again" in done.stderr
    assert _grant_of(tmp_path, "claude-1") is None
    tokens: list[object] = []

    async def read(engine: AsyncEngine) -> None:
        tokens.append(await find_access_token(engine, "0" * 64, NOW))

    _in_store(tmp_path, read)
    assert tokens == [None]
    unknown = _auth(tmp_path, "revoke", "nobody")
    assert unknown.returncode == 1
    assert "no client 'nobody'" in unknown.stderr


@pytest.mark.parametrize("action", [["clients"], ["revoke", "x"]])
def test_a_broken_config_is_reported_before_anything_happens(tmp_path: Path, action: list[str]) -> None:
    (tmp_path / "broken.yaml").write_text("state: {url: 'mysql://root:hunter22@db/x'}\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "auth", *action, "-c", str(tmp_path / "broken.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "not supported" in result.stderr
    assert "hunter22" not in result.stderr
