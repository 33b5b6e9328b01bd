"""``auth: oauth`` on HTTP server entries: both spellings, and clear errors naming file, line and key."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest

from orchestrator.config import DownstreamOAuthSpec, HttpServerSpec, load_config
from orchestrator.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "orchestrator.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    return caught.value.problems


def test_short_and_long_forms_become_one_model(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        servers:
          short:
            url: http://127.0.0.1:9/mcp
            auth: oauth
          long:
            url: https://mcp.example.com/mcp
            auth: {type: oauth, scopes: [read, write], client_id: my-client}
          document:
            url: https://mcp.example.com/mcp
            auth: {type: oauth, client_metadata_url: "https://me.example.com/oauth/client.json"}
        """,
    )

    servers = load_config(path, env={}).servers

    short, long, document = (servers[key] for key in ("short", "long", "document"))
    assert isinstance(short, HttpServerSpec)
    assert short.auth == DownstreamOAuthSpec(type="oauth")
    assert isinstance(long, HttpServerSpec)
    assert long.auth == DownstreamOAuthSpec(type="oauth", scopes=("read", "write"), client_id="my-client")
    assert isinstance(document, HttpServerSpec)
    assert document.auth is not None
    assert document.auth.client_metadata_url == "https://me.example.com/oauth/client.json"


def test_cursors_own_auth_mapping_stays_ignored(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        servers:
          linear:
            url: https://mcp.linear.app/mcp
            auth: {CLIENT_ID: abc, scopes: [read]}
        """,
    )

    config = load_config(path, env={})

    linear = config.servers["linear"]
    assert isinstance(linear, HttpServerSpec)
    assert linear.auth is None
    assert config.origin is not None
    assert config.origin.ignored_entry_keys == ("servers.linear.auth (Cursor's OAuth client settings, not used here)",)


def test_mistakes_are_reported_together_with_file_line_and_key(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        servers:
          typo:
            url: http://127.0.0.1:9/mcp
            auth: oath
          scopes:
            url: https://mcp.example.com/mcp
            auth: {type: oauth, scopes: ["read write"]}
          document:
            url: https://mcp.example.com/mcp
            auth: {type: oauth, client_metadata_url: "http://me.example.com/client.json"}
          both:
            url: https://mcp.example.com/mcp
            auth: {type: oauth, client_id: a, client_metadata_url: "https://me.example.com/client.json"}
          stdio:
            command: my-server
            auth: oauth
          unknown:
            url: https://mcp.example.com/mcp
            auth: {type: oauth, scope: [read]}
        """,
    )

    problems = _problems(path)

    assert any(
        f"{path}:4: servers.typo.auth: 'oath' is not a kind of sign-in; the only one is 'oauth'" in p for p in problems
    )
    assert any(f"{path}:7: servers.scopes.auth.scopes: 'read write' is not a scope" in p for p in problems)
    assert any(f"{path}:10: servers.document.auth.client_metadata_url: must be an https URL" in p for p in problems)
    assert any(f"{path}:13: servers.both.auth: client_id and client_metadata_url: give one" in p for p in problems)
    assert any(f"{path}:14: servers.stdio: auth: OAuth sign-in is for HTTP servers" in p for p in problems)
    assert any(f"{path}:19: servers.unknown.auth.scope: unknown key" in p for p in problems)
    assert len(problems) == 6


def test_oauth_together_with_an_authorization_header_is_an_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        servers:
          docs:
            url: https://mcp.example.com/mcp
            headers: {authorization: "Bearer ${TOKEN:-x}"}
            auth: oauth
        """,
    )

    [problem] = _problems(path)

    assert problem.startswith(f"{path}:2: servers.docs: ")
    assert "auth: oauth and an Authorization header both set the credentials; keep one" in problem
    assert "Bearer" not in problem
