"""``orchestrator status``: what a running instance says about its servers.

Asks a server started with ``orchestrator serve --transport http`` for ``GET /status`` (with
the bearer token from the environment when tokens are configured) and prints each server's
state, health and circuit breaker, the composites, and the last reload. The address comes
from ``--url``, else from the config's ``serve`` section. Exit status: 0 when every server is
healthy, 1 when any is not, 2 when the instance cannot be reached.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any, cast

from orchestrator.cli._subcommands import SubcommandAdder, add_config_option, add_json_option, config_of
from orchestrator.config import AuthSpec
from orchestrator.errors import ConfigError
from orchestrator.server import STATUS_PATH

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser", "fetch_status", "render_status", "run"]

_TIMEOUT = 10.0


def _status_url(url: str) -> str:
    """``http://host:port/status`` from a base URL or an MCP endpoint URL."""
    scheme, _, rest = url.partition("://")
    authority = rest.split("/", 1)[0]
    return f"{scheme}://{authority}{STATUS_PATH}"


def fetch_status(url: str, token: str | None) -> dict[str, Any]:
    """The status document of the instance at ``url``.

    Raises:
        ConnectionError: The instance did not answer, or refused the token.
    """
    request = urllib.request.Request(_status_url(url), headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            return cast("dict[str, Any]", json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        hint = " (a token is needed: put it in the variable serve.auth.tokens_env names)" if exc.code == 401 else ""
        raise ConnectionError(f"{_status_url(url)} answered HTTP {exc.code}{hint}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionError(f"cannot reach {_status_url(url)}: {reason}") from None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def render_status(document: dict[str, Any], url: str) -> str:
    """The status document as text for a terminal."""
    lines = [
        f"{document.get('name')} {document.get('version')} at {url}, up {_duration(document.get('uptime_seconds', 0))}"
        f" - {'ready' if document.get('ready') else 'NOT READY'}"
    ]
    servers = cast("list[dict[str, Any]]", document.get("servers", []))
    width = max((len(str(server["name"])) for server in servers), default=4)
    for server in servers:
        mark = "ok  " if server["healthy"] else "FAIL"
        line = f"  {mark} {server['name']:<{width}}  {server['state']:<10}"
        if server["state"] == "cold":
            line += f"  {server['tools']} tools (lazy: not running; starts on its first call)"
        elif server["healthy"]:
            line += f"  {server['tools']} tools, protocol {server['protocol_version']}"
        else:
            line += f"  unhealthy: {server['health_reason']}"
        breaker = cast("dict[str, Any]", server.get("breaker") or {})
        if breaker.get("state") == "open":
            line += f"; circuit open ({breaker['reason']}), next try in {breaker['retry_in_seconds']:.0f}s"
        elif breaker.get("state") == "half_open":
            line += "; circuit half-open (a trial call may go through)"
        if server.get("restarts"):
            line += f"; restarted {server['restarts']}x"
        lines.append(line)
    composites = cast("dict[str, Any]", document.get("composites", {}))
    if composites.get("active") or composites.get("withdrawn"):
        lines.append("Composite tools:")
        lines += [f"  ok   {name}" for name in composites.get("active", [])]
        for name, reasons in cast("dict[str, list[str]]", composites.get("withdrawn", {})).items():
            lines.append(f"  FAIL {name}: {'; '.join(reasons)}")
    last = document.get("last_reload")
    if last:
        when = time.strftime("%H:%M:%S", time.localtime(last["at"]))
        if last["ok"]:
            lines.append(f"Last reload: {when} ({last['trigger']}), applied")
        else:
            lines.append(f"Last reload: {when} ({last['trigger']}), REJECTED; the previous config keeps serving:")
            lines += [f"  - {problem}" for problem in last["problems"]]
    return "\n".join(lines) + "\n"


def add_parser(subparsers: SubcommandAdder) -> None:
    """Register ``orchestrator status`` with the CLI's subcommands."""
    parser = subparsers.add_parser(
        "status",
        help="show the servers' state in a running `serve --transport http` instance",
        description=(
            "Ask a running instance (orchestrator serve --transport http) for its status: each server's "
            "state, health and circuit breaker, the composite tools, and the last config reload. "
            "Exit status 0 when every server is healthy, 1 when any is not, 2 when it cannot be reached."
        ),
    )
    add_config_option(parser, "config file, for the address (default as for serve)")
    parser.add_argument("--url", help="the instance's base or MCP URL (default: from the config's serve section)")
    add_json_option(parser, "print the status document as JSON")


def _target(args: argparse.Namespace) -> tuple[str, str | None]:
    """The URL to ask, and the bearer token to present (the first configured one)."""
    auth = AuthSpec()
    url = cast("str | None", args.url)
    if url is None or args.config:
        config = config_of(args.config)
        auth = config.serve.auth
        if url is None:
            host = config.serve.host if config.serve.host not in ("0.0.0.0", "::") else "127.0.0.1"
            url = f"http://{host}:{config.serve.port}{config.serve.path}"
    tokens = auth.shared_tokens(os.environ)
    return url, tokens[0] if tokens else None


def run(args: argparse.Namespace) -> int:
    """Run ``orchestrator status`` as parsed by ``add_parser``'s parser."""
    try:
        url, token = _target(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not url.startswith(("http://", "https://")):
        print(f"error: --url must be an http(s) URL, got {url!r}", file=sys.stderr)
        return 2
    try:
        document = fetch_status(url, token)
    except ConnectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(render_status(document, url))
    servers = cast("list[dict[str, Any]]", document.get("servers", []))
    return 0 if all(server.get("healthy") for server in servers) else 1
