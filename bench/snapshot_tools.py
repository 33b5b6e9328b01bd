"""Make the catalogue benchmark's snapshot: the real ``tools/list`` of real MCP servers.

Run from the repository root (after ``make setup``)::

    python -m bench.snapshot_tools [--extra-npm DIR] [--out bench/data/tool_catalogue.json]

Each server is started over stdio with the SDK client (``mcp.Client``), its tools are listed
once, and the response is saved as it came (``Tool.model_dump(by_alias=True, mode="json",
exclude_none=True)``), with the package and version it came from. The benchmark reads only the
committed snapshot, so it runs without any of these servers installed.

Always listed: the third-party servers the tests use (``mcp-server-time`` and ``mcp-server-git``
from PyPI; ``server-everything``, ``server-filesystem`` and ``server-memory`` from
``tests/node/node_modules``). ``--extra-npm DIR`` adds larger servers installed with
``npm install`` in DIR (``@playwright/mcp``, ``@modelcontextprotocol/server-github``,
``@notionhq/notion-mcp-server``, ``@wonderwhy-er/desktop-commander``, ``mcp-server-kubernetes``,
``@modelcontextprotocol/server-sequential-thinking``, ``@modelcontextprotocol/server-slack``), each
listed with no credentials (Slack's server refuses to start without a token and team id:
placeholders are passed, and listing calls no API); ``--extra-python VENV`` adds
``mcp-server-fetch`` installed in that virtual environment. A server that fails to start or list
is reported and left out.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

REPO_ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = REPO_ROOT / "tests" / "node" / "node_modules"
DEFAULT_OUT = REPO_ROOT / "bench" / "data" / "tool_catalogue.json"


@dataclass(frozen=True, slots=True)
class _Source:
    key: str
    package: str
    registry: str
    version: str
    command: str
    args: tuple[str, ...]
    env: dict[str, str] | None = None


def _npm_version(node_modules: Path, package: str) -> str:
    manifest = json.loads((node_modules / package / "package.json").read_text(encoding="utf-8"))
    return str(manifest["version"])


def _npm_source(key: str, node_modules: Path, package: str, bin_name: str, *args: str) -> _Source:
    return _Source(
        key=key,
        package=package,
        registry="npm",
        version=_npm_version(node_modules, package),
        command=str(node_modules / ".bin" / bin_name),
        args=args,
    )


def _with_env(source: _Source, env: dict[str, str]) -> _Source:
    return _Source(source.key, source.package, source.registry, source.version, source.command, source.args, env)


def _sources(scratch: Path, extra_npm: Path | None, extra_python: Path | None) -> list[_Source]:
    sources = [
        _Source(
            "time",
            "mcp-server-time",
            "pypi",
            importlib.metadata.version("mcp-server-time"),
            sys.executable,
            ("-m", "mcp_server_time", "--local-timezone=UTC"),
        ),
        _Source(
            "git",
            "mcp-server-git",
            "pypi",
            importlib.metadata.version("mcp-server-git"),
            sys.executable,
            ("-m", "mcp_server_git", "--repository", str(REPO_ROOT)),
        ),
        _npm_source("everything", NODE_MODULES, "@modelcontextprotocol/server-everything", "mcp-server-everything"),
        _npm_source(
            "filesystem", NODE_MODULES, "@modelcontextprotocol/server-filesystem", "mcp-server-filesystem", str(scratch)
        ),
        _npm_source("memory", NODE_MODULES, "@modelcontextprotocol/server-memory", "mcp-server-memory"),
    ]
    if extra_npm is not None:
        modules = extra_npm / "node_modules"
        sources += [
            _npm_source("playwright", modules, "@playwright/mcp", "playwright-mcp", "--headless"),
            _npm_source("github", modules, "@modelcontextprotocol/server-github", "mcp-server-github"),
            _npm_source("notion", modules, "@notionhq/notion-mcp-server", "notion-mcp-server"),
            _npm_source("desktop", modules, "@wonderwhy-er/desktop-commander", "desktop-commander"),
            _npm_source("kubernetes", modules, "mcp-server-kubernetes", "mcp-server-kubernetes"),
            _npm_source(
                "thinking",
                modules,
                "@modelcontextprotocol/server-sequential-thinking",
                "mcp-server-sequential-thinking",
            ),
            # It refuses to start without these; the placeholders are no credentials (listing calls no API).
            _with_env(
                _npm_source("slack", modules, "@modelcontextprotocol/server-slack", "mcp-server-slack"),
                {"SLACK_BOT_TOKEN": "placeholder", "SLACK_TEAM_ID": "placeholder"},
            ),
        ]
    if extra_python is not None:
        python = extra_python / "bin" / "python"
        version = _pip_version(extra_python, "mcp-server-fetch")
        sources.append(_Source("fetch", "mcp-server-fetch", "pypi", version, str(python), ("-m", "mcp_server_fetch")))
    return sources


def _pip_version(venv: Path, distribution: str) -> str:
    for found in (venv / "lib").glob(f"python*/site-packages/{distribution.replace('-', '_')}-*.dist-info"):
        return found.name.removesuffix(".dist-info").rsplit("-", 1)[1]
    raise FileNotFoundError(f"{distribution} is not installed in {venv}")


async def _list(source: _Source) -> list[dict[str, Any]]:
    params = StdioServerParameters(command=source.command, args=list(source.args), env=source.env)
    with anyio.fail_after(60):
        async with Client(params) as client:
            result = await client.list_tools()
    return [tool.model_dump(by_alias=True, mode="json", exclude_none=True) for tool in result.tools]


async def _snapshot(sources: list[_Source]) -> dict[str, Any]:
    servers: list[dict[str, Any]] = []
    for source in sources:
        try:
            tools = await _list(source)
        # One broken server must not lose the others' lists: report it and go on.
        except Exception as exc:
            print(f"{source.key}: {source.package} failed: {exc!r}", file=sys.stderr)
            continue
        print(f"{source.key}: {source.package} {source.version}: {len(tools)} tools")
        servers.append(
            {
                "key": source.key,
                "package": source.package,
                "registry": source.registry,
                "version": source.version,
                "tools": tools,
            }
        )
    return {
        "description": (
            "tools/list responses of real MCP servers, listed with no credentials by bench/snapshot_tools.py"
        ),
        "servers": servers,
    }


def main() -> None:
    """Write the snapshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--extra-npm", type=Path, default=None, help="a folder where the larger npm servers are installed"
    )
    parser.add_argument("--extra-python", type=Path, default=None, help="a venv where mcp-server-fetch is installed")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="catalogue-fs-") as scratch:
        snapshot = anyio.run(_snapshot, _sources(Path(scratch), options.extra_npm, options.extra_python))
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(snapshot, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    total = sum(len(server["tools"]) for server in snapshot["servers"])
    print(f"{total} tools from {len(snapshot['servers'])} servers -> {options.out}")


if __name__ == "__main__":
    main()
