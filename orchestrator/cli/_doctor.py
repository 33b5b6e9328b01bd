"""``orchestrator doctor``: start everything once and say what works and what does not.

A lazy server (``start: lazy``) whose last listing the state database keeps is not started:
it is reported ``cold``, with the tools of that listing, as ``serve`` would serve it; with
``--start-lazy`` it is started and checked like the others. A lazy server with no kept
listing is started (``serve`` would start it too, to learn its listing). ``doctor`` never
writes a listing: it leaves the state as it found it.

Owns the health report of one config: whether it loads, and as what kind of file (an
orchestrator config, or an MCP client's file, with the parts of it that were ignored); per
server whether it started, its
protocol version, tool count, start time and (when it failed) its stderr tail; every exposed
name that was renamed, sanitised, truncated or de-duplicated; every workflow compiled against
the live catalogue; and whether the tracing endpoint answers (an empty OTLP export over
HTTP, or a TCP connect for gRPC, bounded to 2 s, with no credentials). It renders the report
for a terminal or as JSON, and exits 1 when anything failed.

Does not: call any tool, serve anything, or configure the OpenTelemetry SDK (it only reads the
settings ``serve`` would use). Changed names are warnings, not failures: they work, they are
just not the names a user may expect.

``--json`` prints one object::

    {
      "ok": bool,                        # false when any check below failed
      "config": {"path": str | null, "ok": bool, "problems": [str],
                 "kind": str | null,             # "orchestrator", "claude-desktop", "cursor", "windsurf",
                                                 # "vscode", "claude-code", "claude-code-user", "mcp-servers"
                 "ignored_keys": [str],          # top-level keys of a client's file that were not read
                 "ignored_entry_keys": [str],    # client-only server-entry keys, with what they are for
                 "notes": [str]},                # e.g. a renamed entry, the Claude Code project used
      "servers": [{"name": str, "ok": bool,
                   "state": "ready" | "cold" | "starting" | "restarting" | "needs_login" | "disabled",
                   "protocol_version": str | null, "tool_count": int, "seconds": float | null,
                   "error": str | null, "stderr_tail": str}],          # stderr_tail only for failures
      "names": [{"kind": "tool" | "prompt", "exposed": str, "server": str, "original": str,
                 "notes": ["renamed" | "sanitized" | "truncated" | "collision"]}],
      "workflows": [{"name": str | null, "file": str, "ok": bool, "problems": [str]}],
      "tracing": {"configured": bool, "ok": bool, "problems": [str],
                  "checks": [{"exporter": str, "target": str, "ok": bool, "detail": str}]},
      "auth": {"mode": "none" | "tokens" | "oauth" | "jwt", "ok": bool, "issuer": str | null,
               "resource_url": str | null, "static_tokens": int,
               "checks": [{"what": str, "url": str, "ok": bool, "detail": str, "required": bool}]}
               | null,                   # null when the config did not load
      "pins": {"ok": bool,               # false: changes withheld, definitions quarantined, or
               "problem": str | null,    #   the state database unreadable (problem says why)
               "servers": [{"server": str, "trust": "pin" | "auto" | "warn",   # only servers with
                            "pending": [{"kind": str, "name": str,             # something to say
                                         "change": "added" | "changed" | "removed"}],
                            "pending_identity": str | null,
                            "findings": [{"kind": str, "name": str, "check": str, "severity": str,
                                          "field": str, "detail": str}]}]}
              | null                     # null when the config did not load
    }
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import anyio

from orchestrator import store as state_db
from orchestrator import trust, workflow
from orchestrator.cli._doctor_auth import AuthReport, check_auth
from orchestrator.cli._doctor_pins import PinsReport, ServerPinsReport, check_pins
from orchestrator.cli._subcommands import SubcommandAdder, add_config_option, add_json_option
from orchestrator.config import (
    ConfigOrigin,
    HttpServerSpec,
    OrchestratorConfig,
    TracingSpec,
    find_config_path,
    load_config,
)
from orchestrator.downstream import DownstreamPool, DownstreamServer
from orchestrator.errors import ConfigError, SecretKeyError, StoreError, WorkflowDefinitionError
from orchestrator.telemetry import TracingSettings, resolve_settings
from orchestrator.trust import show_hidden

if TYPE_CHECKING:
    import argparse
    from collections.abc import Generator, Mapping, Sequence

    from orchestrator.catalog import Catalog, NameMapping
    from orchestrator.workflow import WorkflowSpec

__all__ = [
    "DoctorReport",
    "ServerReport",
    "TracingCheck",
    "TracingReport",
    "WorkflowReport",
    "add_parser",
    "diagnose",
    "render_text",
    "run",
]

DEFAULT_TIMEOUT = 30.0
PROBE_TIMEOUT = 2.0
"""Bound on each tracing probe, so a black-holed endpoint cannot stall the report."""

_QUIET_LOGGERS = ("orchestrator", "mcp", "httpx", "httpx2")


# ----------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class ServerReport:
    """One configured server after its first start attempt."""

    name: str
    ok: bool
    state: str
    protocol_version: str | None
    tool_count: int
    seconds: float | None
    error: str | None
    stderr_tail: str


@dataclass(frozen=True, slots=True)
class WorkflowReport:
    """One workflow file, loaded and compiled against the live catalogue."""

    name: str | None
    file: str
    ok: bool
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TracingCheck:
    """One exporter's destination and whether it is usable."""

    exporter: str
    target: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class TracingReport:
    """The tracing setup ``serve`` would use, and whether its destinations answer."""

    configured: bool
    checks: tuple[TracingCheck, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """No problem in the settings and every destination usable."""
        return not self.problems and all(check.ok for check in self.checks)


@dataclass(frozen=True, slots=True)
class DoctorReport:
    """Everything ``doctor`` found."""

    config_path: str | None
    config_problems: tuple[str, ...] = ()
    config_origin: ConfigOrigin | None = None
    servers: tuple[ServerReport, ...] = ()
    names: tuple[NameMapping, ...] = ()
    """The exposed names that differ from ``prefix + separator + original``."""
    workflows: tuple[WorkflowReport, ...] = ()
    tracing: TracingReport = field(default_factory=lambda: TracingReport(configured=False))
    auth: AuthReport | None = None
    pins: PinsReport | None = None

    @property
    def failures(self) -> list[str]:
        """One line per failed check; empty when all is well."""
        failed = [f"config {self.config_path or '(none)'} is invalid" for _ in self.config_problems[:1]]
        failed += [
            f"server {s.name!r} needs login" if s.state == "needs_login" else f"server {s.name!r} did not start"
            for s in self.servers
            if not s.ok
        ]
        failed += [f"workflow {w.name or w.file!r} is invalid" for w in self.workflows if not w.ok]
        if not self.tracing.ok:
            failed.append("tracing is not usable")
        if self.auth is not None and not self.auth.ok:
            failed.append("authentication is not usable")
        if self.pins is not None:
            failed += self.pins.failures
        return failed

    @property
    def ok(self) -> bool:
        """Whether nothing failed (changed names do not count)."""
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        """The documented ``--json`` object (see the module docstring)."""
        origin = self.config_origin
        return {
            "ok": self.ok,
            "config": {
                "path": self.config_path,
                "ok": not self.config_problems,
                "problems": [*self.config_problems],
                "kind": origin.kind if origin else None,
                "ignored_keys": [*origin.ignored_keys] if origin else [],
                "ignored_entry_keys": [*origin.ignored_entry_keys] if origin else [],
                "notes": [*origin.notes] if origin else [],
            },
            "servers": [
                {
                    "name": s.name,
                    "ok": s.ok,
                    "state": s.state,
                    "protocol_version": s.protocol_version,
                    "tool_count": s.tool_count,
                    "seconds": None if s.seconds is None else round(s.seconds, 3),
                    "error": s.error,
                    "stderr_tail": s.stderr_tail,
                }
                for s in self.servers
            ],
            "names": [
                {"kind": n.kind, "exposed": n.exposed, "server": n.server, "original": n.original, "notes": [*n.notes]}
                for n in self.names
            ],
            "workflows": [
                {"name": w.name, "file": w.file, "ok": w.ok, "problems": [*w.problems]} for w in self.workflows
            ],
            "tracing": {
                "configured": self.tracing.configured,
                "ok": self.tracing.ok,
                "problems": [*self.tracing.problems],
                "checks": [
                    {"exporter": c.exporter, "target": c.target, "ok": c.ok, "detail": c.detail}
                    for c in self.tracing.checks
                ],
            },
            "auth": None if self.auth is None else self.auth.to_json(),
            "pins": None if self.pins is None else self.pins.to_json(),
        }


# -------------------------------------------------------------- diagnosis


async def diagnose(
    config_path: Path | None,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
    *,
    start_lazy: bool = False,
) -> DoctorReport:
    """Load the config, start every server, and check names, workflows and tracing.

    Args:
        config_path: The ``--config`` value; ``None`` looks for the default file.
        timeout: How long servers get for their first start attempt.
        env: Where ``${VAR}`` and ``OTEL_*`` are read; default ``os.environ``.
        start_lazy: Start lazy servers too; by default one whose last listing is kept is
            reported ``cold`` from that listing, not started.

    Returns:
        The report; a config that cannot be found or loaded is a report with ``config_problems``.
    """
    env = os.environ if env is None else env
    try:
        path = find_config_path(config_path, env)
        config = load_config(path, env)
    except ConfigError as exc:
        return DoctorReport(config_path=exc.path, config_problems=tuple(exc.problems))
    specs, workflow_reports = _load_workflows(config)
    seconds: dict[str, float] = {}
    tracing: list[TracingReport] = []
    auth: list[AuthReport] = []
    pins: list[PinsReport] = []

    async def check_tracing() -> None:
        tracing.append(await _check_tracing(config.tracing, env))

    async def check_authentication() -> None:
        auth.append(await check_auth(config, env))

    async def check_pinned() -> None:
        pins.append(await check_pins(config, env))

    async with AsyncExitStack() as stack:
        try:
            auth_for = await _downstream_auth(config, env, stack)
        except (StoreError, SecretKeyError) as exc:
            return DoctorReport(config_path=str(path), config_origin=config.origin, config_problems=(str(exc),))
        pool = await stack.enter_async_context(
            DownstreamPool.running(
                config,
                reserved=[spec.name for spec, _ in specs],
                auth_for=auth_for,
                manifests=None if start_lazy else _kept_listings(config, env, stack),
            )
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(check_tracing)
            tg.start_soon(check_authentication)
            tg.start_soon(check_pinned)
            started = time.monotonic()
            with anyio.move_on_after(timeout):
                async with anyio.create_task_group() as waits:
                    for server in pool.servers.values():
                        waits.start_soon(_time_settling, server, started, seconds)
        servers = _server_reports(config, pool, seconds, timeout)
        catalog = pool.catalog
    failed = {s.name for s in servers if not s.ok}
    workflow_reports += [_compile(spec, file, catalog, failed) for spec, file in specs]
    workflow_reports.sort(key=lambda w: w.file)
    names = tuple(mapping for mapping in catalog.mappings if mapping.notes)
    return DoctorReport(
        config_path=str(path),
        config_origin=config.origin,
        servers=tuple(servers),
        names=names,
        workflows=tuple(workflow_reports),
        tracing=tracing[0],
        auth=auth[0],
        pins=pins[0],
    )


async def _downstream_auth(
    config: OrchestratorConfig, env: Mapping[str, str], stack: AsyncExitStack
) -> trust.DownstreamAuthFactory | None:
    """The stored OAuth tokens of servers with ``auth: oauth`` (``None`` when there are none)."""
    if not any(isinstance(spec, HttpServerSpec) and spec.auth for spec in config.enabled_servers().values()):
        return None
    url = state_db.state_url(config.state, env, str(config.source or "<config>"))
    store = await stack.enter_async_context(state_db.open_store(url))
    return trust.DownstreamAuthFactory(store.engine, trust.open_secret_box(url, env))


def _kept_listings(
    config: OrchestratorConfig, env: Mapping[str, str], stack: AsyncExitStack
) -> trust.StoredManifests | None:
    """Lazy servers' kept listings, read (never written) from the state database; ``None`` without lazy servers."""
    if not any(spec.start == "lazy" for spec in config.enabled_servers().values()):
        return None
    url = state_db.state_url(config.state, env, str(config.source or "<config>"))
    opened: list[state_db.Store] = []
    opening = anyio.Lock()

    async def open_once() -> state_db.Store:
        async with opening:
            if not opened:
                opened.append(await stack.enter_async_context(state_db.open_store(url)))
            return opened[0]

    return trust.StoredManifests(open_once, writes=False)


async def _time_settling(server: DownstreamServer, started: float, seconds: dict[str, float]) -> None:
    await server.wait_settled()
    seconds[server.name] = time.monotonic() - started


def _server_reports(
    config: OrchestratorConfig, pool: DownstreamPool, seconds: Mapping[str, float], timeout: float
) -> list[ServerReport]:
    reports: list[ServerReport] = []
    for key, spec in config.servers.items():
        if spec.disabled:
            reports.append(ServerReport(key, True, "disabled", None, 0, None, None, ""))
            continue
        status = pool.servers[key].status()
        ok = status.state in ("ready", "cold")
        error = status.last_error
        if status.state == "starting" and key not in seconds:
            error = f"still starting after {timeout:g}s (raise --timeout if it is just slow)"
        reports.append(
            ServerReport(
                name=key,
                ok=ok,
                state=status.state,
                protocol_version=status.protocol_version,
                tool_count=status.tool_count,
                seconds=status.start_seconds if status.start_seconds is not None else seconds.get(key),
                error=None if ok else error or "did not start",
                stderr_tail="" if ok else status.stderr_tail,
            )
        )
    return reports


def _load_workflows(config: OrchestratorConfig) -> tuple[list[tuple[WorkflowSpec, str]], list[WorkflowReport]]:
    """Every workflow file that loads, and a report for each that does not (or repeats a name)."""
    loaded: list[tuple[WorkflowSpec, str]] = []
    reports: list[WorkflowReport] = []
    first_file: dict[str, str] = {}
    for entry in config.workflows:
        try:
            files = workflow.workflow_files([entry])
        except WorkflowDefinitionError as exc:
            reports.append(WorkflowReport(None, exc.path, False, tuple(exc.problems)))
            continue
        for file in files:
            try:
                spec = workflow.load_workflow(file)
            except WorkflowDefinitionError as exc:
                reports.append(WorkflowReport(None, str(file), False, tuple(exc.problems)))
                continue
            if (other := first_file.setdefault(spec.name, str(file))) != str(file):
                problem = f"{file}: name: composite {spec.name!r} is also defined in {other}"
                reports.append(WorkflowReport(spec.name, str(file), False, (problem,)))
                continue
            loaded.append((spec, str(file)))
    return loaded, reports


def _compile(spec: WorkflowSpec, file: str, catalog: Catalog, failed_servers: set[str]) -> WorkflowReport:
    try:
        workflow.compile_workflow(spec, file, catalog=catalog)
    except WorkflowDefinitionError as exc:
        problems = list(exc.problems)
        down = sorted({s for s in failed_servers if any(step.tool.startswith(f"{s}.") for step in spec.steps.values())})
        if down:
            problems.append(f"{file}: (note) uses server(s) that did not start, so not checked live: {', '.join(down)}")
        return WorkflowReport(spec.name, file, False, tuple(problems))
    return WorkflowReport(spec.name, file, True)


# ---------------------------------------------------------------- tracing


def _without_credentials(url: str) -> str:
    """``url`` without user info, query or fragment: where it points, never a credential."""
    parts = urlsplit(url if "://" in url else f"//{url}")
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")).removeprefix("//")


async def _check_tracing(spec: TracingSpec, env: Mapping[str, str]) -> TracingReport:
    try:
        settings = resolve_settings(spec, env)
    except ConfigError as exc:
        return TracingReport(configured=True, problems=tuple(exc.problems))
    if not settings.enabled:
        return TracingReport(configured=False)
    checks = [await _check_exporter(name, settings) for name in settings.exporters]
    return TracingReport(configured=True, checks=tuple(checks))


async def _check_exporter(exporter: str, settings: TracingSettings) -> TracingCheck:
    if exporter == "jaeger_file" and settings.file is not None:
        folder = settings.file.parent
        usable = folder.is_dir() and os.access(folder, os.W_OK)
        detail = "folder is writable" if usable else f"cannot write in {folder}"
        return TracingCheck(exporter, str(settings.file), usable, detail)
    if exporter != "otlp" or settings.endpoint is None:
        return TracingCheck(exporter, "stderr" if exporter == "console" else "", True, "nothing to check")
    target = f"{settings.protocol} {_without_credentials(settings.endpoint)}"
    started = time.monotonic()
    ok, detail = False, f"no answer within {PROBE_TIMEOUT:g}s"
    with anyio.move_on_after(PROBE_TIMEOUT + 0.5):
        if settings.protocol == "grpc":
            ok, detail = await _connect(settings.endpoint)
        else:
            ok, detail = await anyio.to_thread.run_sync(_post_empty_export, settings.endpoint, abandon_on_cancel=True)
    return TracingCheck(exporter, target, ok, f"{detail} ({(time.monotonic() - started) * 1000:.0f} ms)")


async def _connect(endpoint: str) -> tuple[bool, str]:
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    host, port = parts.hostname or "localhost", parts.port or 4317
    try:
        with anyio.fail_after(PROBE_TIMEOUT):
            stream = await anyio.connect_tcp(host, port)
    except TimeoutError:
        return False, f"no TCP answer from {host}:{port} within {PROBE_TIMEOUT:g}s"
    except OSError as exc:
        return False, f"cannot connect to {host}:{port}: {exc.strerror or exc}"
    await stream.aclose()
    return True, f"{host}:{port} accepts connections"


def _post_empty_export(url: str) -> tuple[bool, str]:
    """POST an empty ``ExportTraceServiceRequest`` (zero protobuf bytes): a receiver answers 200.

    No headers from ``OTEL_EXPORTER_OTLP_HEADERS`` are sent: they may hold credentials.
    """
    request = urllib.request.Request(url, data=b"", method="POST", headers={"Content-Type": "application/x-protobuf"})
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT) as response:
            return True, f"answered HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code in (401, 403):
            return True, f"answered HTTP {exc.code}: it wants credentials (OTEL_EXPORTER_OTLP_HEADERS; not sent here)"
        if exc.code in (404, 405):
            return False, f"answered HTTP {exc.code}: nothing receives traces at this path (OTLP/HTTP: /v1/traces)"
        if exc.code == 400:
            return True, "answered HTTP 400: it listens, but refused the empty probe (collectors accept it)"
        return exc.code < 500, f"answered HTTP {exc.code}"
    except urllib.error.URLError as exc:
        return False, f"no answer: {exc.reason}"
    except (OSError, ValueError) as exc:
        return False, f"no answer: {exc}"


# -------------------------------------------------------------- rendering


@dataclass(frozen=True, slots=True)
class _Style:
    color: bool
    unicode: bool

    def mark(self, kind: str) -> str:
        symbols = {"ok": ("✓", "+"), "fail": ("✗", "x"), "warn": ("!", "!"), "skip": ("-", "-")}[kind]
        symbol = symbols[0] if self.unicode else symbols[1]
        colors = {"ok": "32", "fail": "31", "warn": "33", "skip": "2"}
        return f"\033[{colors[kind]}m{symbol}\033[0m" if self.color else symbol

    def bold(self, text: str) -> str:
        return f"\033[1m{text}\033[0m" if self.color else text

    def dim(self, text: str) -> str:
        return f"\033[2m{text}\033[0m" if self.color else text


def _style_for(stream: TextIO) -> _Style:
    color = stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
    try:
        "✓✗".encode(stream.encoding or "ascii")
        unicode = True
    except (UnicodeEncodeError, LookupError):
        unicode = False
    return _Style(color, unicode)


def render_text(report: DoctorReport, *, color: bool = False, unicode: bool = True) -> str:
    """The report for a terminal: one line per check, marked ✓, ✗, ! (warning) or - (skipped)."""
    style = _Style(color, unicode)
    lines = [f"{style.bold('Config')}  {report.config_path or '(none found)'}"]
    for problem in report.config_problems:
        lines.append(f"  {style.mark('fail')} {problem}")
    if report.config_problems:
        return "\n".join([*lines, "", _summary(report, style)]) + "\n"
    if report.config_origin is not None:
        lines += _origin_lines(report.config_origin, style)
    lines += _server_lines(report.servers, style)
    if report.names:
        lines += ["", style.bold(f"Names changed to fit the model-API rules ({len(report.names)})")]
        width = max(len(n.exposed) for n in report.names)
        for n in report.names:
            lines.append(
                f"  {style.mark('warn')} {n.exposed:<{width}}  <-  {n.server}.{n.original}  ({', '.join(n.notes)})"
            )
    if report.workflows:
        valid = sum(w.ok for w in report.workflows)
        lines += ["", style.bold(f"Workflows ({valid} of {len(report.workflows)} valid)")]
        for w in report.workflows:
            lines.append(f"  {style.mark('ok' if w.ok else 'fail')} {w.name or '?'}  {style.dim(w.file)}")
            lines += [f"      {problem}" for problem in w.problems]
    lines += ["", style.bold("Tracing")]
    tracing = report.tracing
    if not tracing.configured:
        lines.append(f"  {style.mark('skip')} not configured (tracing.exporter, or OTEL_EXPORTER_OTLP_ENDPOINT)")
    lines += [f"  {style.mark('fail')} {problem}" for problem in tracing.problems]
    for check in tracing.checks:
        lines.append(f"  {style.mark('ok' if check.ok else 'fail')} {check.exporter} {check.target}: {check.detail}")
    if report.auth is not None:
        lines += _auth_lines(report.auth, style)
    if report.pins is not None:
        lines += _pins_lines(report.pins, style)
    return "\n".join([*lines, "", _summary(report, style)]) + "\n"


def _origin_lines(origin: ConfigOrigin, style: _Style) -> list[str]:
    """What kind of file the config is, and what of it was not used (never a value)."""
    if origin.kind == "orchestrator":
        lines = [f"  {style.mark('ok')} read as {origin.title} (every key checked)"]
    else:
        lines = [f"  {style.mark('ok')} read as {origin.title}: its server entries are used, the rest is ignored"]
    if origin.ignored_keys:
        lines.append(f"  {style.mark('skip')} ignored keys of {origin.title}: {', '.join(origin.ignored_keys)}")
    lines += [f"  {style.mark('skip')} ignored: {entry}" for entry in origin.ignored_entry_keys]
    lines += [f"  {style.mark('skip')} {note}" for note in origin.notes]
    return lines


def _server_lines(servers: Sequence[ServerReport], style: _Style) -> list[str]:
    started = sum(s.ok and s.state not in ("disabled", "cold") for s in servers)
    enabled = sum(s.state != "disabled" for s in servers)
    cold = sum(s.state == "cold" for s in servers)
    also = f", {cold} cold" if cold else ""
    lines = ["", style.bold(f"Servers ({started} of {enabled} started{also})")]
    width = max((len(s.name) for s in servers), default=0)
    for s in servers:
        took = f"{s.seconds:.2f}s" if s.seconds is not None else "-"
        if s.state == "disabled":
            lines.append(f"  {style.mark('skip')} {s.name:<{width}}  disabled")
        elif s.state == "cold":
            lines.append(
                f"  {style.mark('ok')} {s.name:<{width}}  cold  {s.tool_count} tools from its last listing"
                f"  {style.dim('(lazy: starts on its first call; --start-lazy checks it now)')}"
            )
        elif s.ok:
            version = s.protocol_version or "unknown"
            lines.append(f"  {style.mark('ok')} {s.name:<{width}}  {took}  protocol {version}  {s.tool_count} tools")
        else:
            lines.append(f"  {style.mark('fail')} {s.name:<{width}}  {took}  {s.error}")
            tail = s.stderr_tail.rstrip().splitlines()[-15:]
            if tail:
                lines.append(f"      {style.dim('stderr (last lines):')}")
                lines += [f"      {style.dim('|')} {line}" for line in tail]
    return lines


_AUTH_MODES = {
    "none": "none: loopback only, no credentials (HTTP); stdio needs none",
    "tokens": "static bearer tokens",
    "oauth": "embedded OAuth 2.1 authorization server",
    "jwt": "JWTs from an external identity provider",
}


def _auth_lines(auth: AuthReport, style: _Style) -> list[str]:
    lines = ["", style.bold("Authentication (HTTP)"), f"  {style.mark('ok')} mode: {_AUTH_MODES[auth.mode]}"]
    if auth.static_tokens:
        lines.append(f"  {style.mark('ok')} static tokens set: {auth.static_tokens}")
    if auth.issuer:
        lines.append(f"  {style.mark('ok')} issuer: {auth.issuer}")
    if auth.resource_url:
        lines.append(f"  {style.mark('ok')} endpoint (token audience): {auth.resource_url}")
    for check in auth.checks:
        kind = "ok" if check.ok else "fail" if check.required else "warn"
        hint = "" if check.ok or check.required else " (is serve, and the tunnel or proxy, running?)"
        lines.append(f"  {style.mark(kind)} {check.what}: {check.url}: {check.detail}{hint}")
    return lines


def _pins_lines(pins: PinsReport, style: _Style) -> list[str]:
    """Nothing when all is clean; else per server what waits for approval and what was found."""
    if pins.problem is None and not pins.servers:
        return []
    lines = ["", style.bold("Pins")]
    if pins.problem is not None:
        lines.append(f"  {style.mark('fail')} cannot read the pins: {pins.problem}")
    for server in pins.servers:
        lines += _server_pins_lines(server, style)
    return lines


def _server_pins_lines(server: ServerPinsReport, style: _Style) -> list[str]:
    lines: list[str] = []
    if server.waiting:
        what = [f"{change.kind} {change.name!r} ({change.change})" for change in server.pending]
        if server.pending_identity is not None:
            what.append("its identity")
        served = "served meanwhile (trust: warn)" if not server.withheld else "withheld until approved"
        mark = "fail" if server.withheld else "warn"
        lines.append(f"  {style.mark(mark)} {server.server}: {len(what)} change(s) {served}: {', '.join(what)}")
        lines.append(f"      see them with: orchestrator pins --server {server.server}")
        lines.append(f"      approve with: orchestrator pins approve {server.server}")
    if quarantined := server.quarantined:
        lines.append(f"  {style.mark('fail')} {server.server}: not served (quarantined): {', '.join(quarantined)}")
    for finding in server.findings:
        mark = "fail" if finding.severity == "quarantine" else "warn"
        where = f"{finding.kind} {show_hidden(finding.name)!r} {show_hidden(finding.field)}"
        lines.append(f"  {style.mark(mark)} {server.server}: {finding.check}: {where}: {show_hidden(finding.detail)}")
    return lines


def _summary(report: DoctorReport, style: _Style) -> str:
    failures = report.failures
    if not failures:
        return f"{style.mark('ok')} everything works"
    return f"{style.mark('fail')} {len(failures)} problem(s): " + "; ".join(failures)


# ------------------------------------------------------------------ entry


@contextmanager
def _quiet_logs(verbosity: int) -> Generator[None]:
    """Silence start-up logging (the report says it better) unless ``-v`` asked for it."""
    if verbosity:
        yield
        return
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def add_parser(subparsers: SubcommandAdder) -> None:
    """Register ``orchestrator doctor`` with the CLI's subcommands."""
    parser = subparsers.add_parser(
        "doctor",
        help="start every server and check names, workflows and tracing; exit 1 if anything is wrong",
        description=(
            "Start every configured server once and report whether it started (protocol, tools, time; "
            "stderr when it failed), every renamed or clashing name, every workflow checked against the "
            "live catalogue, and whether the tracing endpoint answers. Exit status 1 if anything failed."
        ),
    )
    add_config_option(parser)
    add_json_option(parser, "print one JSON object (see `orchestrator._doctor`)")
    parser.add_argument(
        "--start-lazy",
        action="store_true",
        help="start lazy servers too (by default one whose last listing is kept is shown cold, not started)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long servers get to start (default {DEFAULT_TIMEOUT:g})",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``orchestrator doctor`` as parsed by ``add_parser``'s parser.

    Returns:
        0 when every check passed, 1 when any failed (warnings about names do not count).
    """
    config = Path(args.config) if args.config else None
    timeout = float(args.timeout)
    if timeout <= 0:
        print("error: --timeout must be positive", file=sys.stderr)
        return 2
    with _quiet_logs(int(getattr(args, "verbose", 0) or 0)):
        try:
            report = anyio.run(partial(diagnose, config, timeout, start_lazy=bool(args.start_lazy)))
        except KeyboardInterrupt:
            return 130
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        style = _style_for(sys.stdout)
        sys.stdout.write(render_text(report, color=style.color, unicode=style.unicode))
    return 0 if report.ok else 1
