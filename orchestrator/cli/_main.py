"""Command line: the composition root.

Reads the config, configures logging (to stderr: stdout belongs to the MCP protocol when
serving over stdio), starts the downstream pool and runs one command. The only module
that wires the layers together.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio
import mcp_types as types

from orchestrator._version import __version__
from orchestrator.catalog import close_names
from orchestrator.cli import _doctor, _status, _traces
from orchestrator.cli import install as _install
from orchestrator.cli._runview import RunView
from orchestrator.cli._subcommands import add_config_option, add_json_option
from orchestrator.config import OrchestratorConfig, find_config_path, load_config
from orchestrator.downstream import DownstreamPool, ServerStatus, secret_values
from orchestrator.errors import OrchestratorError, UnknownToolError, UsageError, WorkflowDefinitionError
from orchestrator.server import (
    Composites,
    HttpSecurity,
    Loaded,
    OrchestratorServer,
    PoolInvoker,
    Reloader,
    StatusReporter,
    run_result_to_tool_result,
    serve_http,
    serve_stdio,
)
from orchestrator.telemetry import TracingHandle, configure_tracing
from orchestrator.tracing import Redactor, current_trace_id, tracer
from orchestrator.workflow import (
    WorkflowPlan,
    WorkflowSpec,
    check_workflow,
    compile_workflow,
    execute,
    load_workflow,
    load_workflows,
    render_graph,
    validate_input,
)

__all__ = ["main"]

logger = logging.getLogger("orchestrator")

_SETTLE_TIMEOUT = 30.0
"""How long one-shot commands wait for every server's first start attempt."""
_STDERR_LINES = 6
"""Lines of a server's stderr shown when it did not start: a traceback's end says why."""


def _configure_logging(verbosity: int, command: str) -> None:
    # A server's log is its only window; one-shot commands show their own output instead.
    base = logging.INFO if command == "serve" else logging.WARNING
    level = base - 10 * verbosity
    logging.basicConfig(
        level=max(level, logging.DEBUG),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The SDK and HTTP libraries are chatty at INFO; their warnings still show.
    for noisy in ("mcp", "httpx", "httpx2", "uvicorn.error", "watchfiles"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, level))


def _load(path: str | None) -> OrchestratorConfig:
    return load_config(find_config_path(Path(path) if path else None))


@dataclass(frozen=True, slots=True)
class _Runtime:
    """What every command needs: the config and the tracing set up for it."""

    config: OrchestratorConfig
    tracing: TracingHandle

    def pool(self, reserved: Iterable[str] = ()) -> AbstractAsyncContextManager[DownstreamPool]:
        """Start the config's servers; stdio children export traces where we do."""
        return DownstreamPool.running(self.config, reserved=reserved, child_env=self.tracing.child_environment)

    def redactor(self, config: OrchestratorConfig | None = None) -> Redactor | None:
        """Only when payload recording is on: every configured secret (of ``config``) is masked."""
        if not self.tracing.record_payloads:
            return None
        config = config or self.config
        tokens = config.serve.auth.tokens(os.environ)
        return Redactor.from_secrets(tokens, *(secret_values(spec) for spec in config.servers.values()))

    def report_trace(self, trace_id: str | None) -> None:
        """Tell the user where the trace of this command is (stderr)."""
        if trace_id is None or not self.tracing.enabled:
            return
        url = self.tracing.trace_url(trace_id)
        print(f"trace: {trace_id}" + (f"  {url}" if url else ""), file=sys.stderr)


def _unavailable(statuses: Iterable[ServerStatus], label: str) -> list[str]:
    """Print each server that is not up, with its error and the end of its stderr; return their keys."""
    down: list[str] = []
    for status in statuses:
        if status.state == "ready":
            continue
        down.append(status.server)
        why = status.last_error or (
            f"still starting after {_SETTLE_TIMEOUT:g}s" if status.state == "starting" else "did not start"
        )
        print(f"{label}: server {status.server!r} is not available: {why}", file=sys.stderr)
        tail = _telling_tail(status.stderr_tail)
        if tail:
            print("  its stderr ended with:", file=sys.stderr)
            for line in tail:
                print(f"  | {line}", file=sys.stderr)
    return down


def _telling_tail(stderr: str) -> list[str]:
    """The last distinct lines of a server's stderr: a server restarted in a loop repeats itself."""
    tail: list[str] = []
    for line in reversed(stderr.splitlines()):
        if line.strip() and line not in tail:
            tail.append(line)
            if len(tail) == _STDERR_LINES:
                break
    return tail[::-1]


# ------------------------------------------------------------------ workflows


def _static_plans(specs: list[WorkflowSpec]) -> list[WorkflowPlan]:
    """Compile without a catalogue: every file's problems, all at once, before anything starts."""
    plans: list[WorkflowPlan] = []
    problems: list[str] = []
    for spec in specs:
        path = spec.source.path if spec.source else spec.name
        try:
            plans.append(compile_workflow(spec, path))
        except WorkflowDefinitionError as exc:
            problems.extend(exc.problems)
    if problems:
        raise WorkflowDefinitionError(problems[0].split(":", 1)[0], problems)
    return plans


def _load_composites(config: OrchestratorConfig) -> Composites:
    specs = load_workflows(config.workflows)
    _static_plans(specs)
    return Composites([(spec, spec.source.path if spec.source else spec.name) for spec in specs])


# ---------------------------------------------------------------------- serve


async def _stop_on_signals(scope: anyio.CancelScope) -> None:
    """stdio serving: SIGTERM or SIGINT stops gracefully (children stopped, spans flushed)."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            logger.info("received %s; shutting down", signal.Signals(signum).name)
            scope.cancel()
            return


async def _serve(rt: _Runtime, transport: str, host: str, port: int) -> int:
    config = rt.config
    security = None
    if transport == "http":
        security = HttpSecurity.from_config(config.serve, host, os.environ, str(config.source))
    composites = _load_composites(config)
    assert config.source is not None, "a served config comes from a file"
    source = config.source

    def load() -> Loaded:
        fresh = load_config(source)
        return Loaded(fresh, _load_composites(fresh), rt.redactor(fresh))

    async with (
        rt.pool(composites.names) as pool,
        OrchestratorServer(pool, composites, redactor=rt.redactor(config)) as server,
        anyio.create_task_group() as tg,
    ):
        reloader = Reloader(server, pool, load)
        tg.start_soon(reloader.watch_signals)  # SIGHUP reloads, on both transports
        if config.serve.watch:
            tg.start_soon(reloader.watch_files)
        if transport == "stdio":
            # stdio_server restores the descriptors when done; nothing else may touch stdout.
            tg.start_soon(_stop_on_signals, tg.cancel_scope)
            await serve_stdio(server)
            logger.info("client closed stdin; shutting down")
        else:
            assert security is not None

            def announce(url: str) -> None:
                print(f"mcp-orchestrator listening on {url}", file=sys.stderr, flush=True)

            # uvicorn handles SIGTERM and SIGINT: it stops accepting, drains, then returns here.
            await serve_http(
                server,
                security,
                port=port,
                path=config.serve.path,
                on_listening=announce,
                reporter=StatusReporter(server, reloader),
            )
            logger.info("shutting down")
        tg.cancel_scope.cancel()
    return 0


# ---------------------------------------------------------------------- tools


async def _tools(rt: _Runtime, as_json: bool) -> int:
    composites = _load_composites(rt.config)
    async with rt.pool(composites.names) as pool:
        await pool.wait_settled(_SETTLE_TIMEOUT)
        catalog = pool.catalog
        statuses = pool.statuses()
        composites.refresh(catalog)
    descriptions = {tool.name: tool.description or "" for tool in catalog.tools}
    rows = [
        {
            "name": mapping.exposed,
            "server": mapping.server,
            "tool": mapping.original,
            "description": descriptions.get(mapping.exposed, ""),
        }
        for mapping in catalog.mappings
        if mapping.kind == "tool"
    ]
    rows.sort(key=lambda row: row["name"])
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        width = max((len(r["name"]) for r in rows), default=4)
        for row in rows:
            print(f"{row['name']:<{width}}  {row['server']}.{row['tool']}")
        if composites.names:
            print("\nComposite tools (workflows):")
            for name in sorted(composites.names):
                state = "" if name in composites.active else "  (unavailable: see the log above)"
                print(f"{name:<{width}}  workflow{state}")
        notes = [m for m in catalog.mappings if m.notes]
        if notes:
            print("\nNames changed to fit the model-API rules:", file=sys.stderr)
            for m in notes:
                print(f"  {m.exposed}  <-  {m.server}.{m.original}  ({', '.join(m.notes)})", file=sys.stderr)
    # An empty or partial list that exits 0 would read as "these are all the tools".
    return 1 if _unavailable(statuses, "error") else 0


# ----------------------------------------------------------------------- call


def _print_result(result: types.CallToolResult) -> None:
    if result.structured_content is not None:
        print(json.dumps(result.structured_content, indent=2, ensure_ascii=False))
        return
    for block in result.content:
        if isinstance(block, types.TextContent):
            print(block.text)
        else:
            print(block.model_dump_json(by_alias=True, exclude_none=True))


async def _call(rt: _Runtime, name: str, arguments: dict[str, Any]) -> int:
    composites = _load_composites(rt.config)
    async with rt.pool(composites.names) as pool:
        await pool.wait_settled(_SETTLE_TIMEOUT)
        server = OrchestratorServer(pool, composites, redactor=rt.redactor())
        # The command is the caller: its span is the root of the call's trace.
        with tracer.start_as_current_span(f"orchestrator call {name}"):
            trace_id = current_trace_id()
            try:
                result = await server.call(name, arguments)
            except UnknownToolError as exc:
                # The tool may well exist, on a server that did not start: say so first.
                _unavailable(pool.statuses(), "warning")
                print(f"error: {exc} (see `orchestrator tools`)", file=sys.stderr)
                return 2
    rt.report_trace(trace_id)
    _print_result(result)
    return 1 if result.is_error else 0


# ------------------------------------------------------------- validate, graph


def _print_problems(problems: list[str]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)


async def _validate(rt: _Runtime | None, files: list[str], live: bool) -> int:
    checks = [check_workflow(file) for file in files]
    checked_against = ""
    if live:
        assert rt is not None
        names = {check.spec.name for check in checks if check.spec is not None}
        async with rt.pool(names) as pool:
            await pool.wait_settled(_SETTLE_TIMEOUT)
            down = _unavailable(pool.statuses(), "warning")
            # Every file again, with the tools: a step that parsed is checked even if another did not.
            checks = [check_workflow(file, pool.catalog, unavailable_servers=down) for file in files]
        checked_against = f"; not available: {', '.join(down)}" if down else ""
    for check in checks:
        if check.plan is not None:
            print(f"ok: {check.path} ({_validated(check.plan, live)}{checked_against})")
    _print_problems([problem for check in checks for problem in check.problems])
    return 1 if any(check.problems for check in checks) else 0


def _validated(plan: WorkflowPlan, live: bool) -> str:
    """What ``validate`` checked of a good file: ``name, 6 steps; tools checked against live servers a, b``."""
    steps = f"{plan.name}, {len(plan.steps)} step{'s' if len(plan.steps) != 1 else ''}"
    if not live:
        return f"{steps}; tools unchecked without --live"
    servers = sorted({step.server for step in plan.steps.values()})
    return f"{steps}; tools checked against live servers {', '.join(servers)}"


def _graph(file: str, graph_format: str) -> int:
    try:
        [plan] = _static_plans([load_workflow(file)])
    except WorkflowDefinitionError as exc:
        _print_problems(exc.problems)
        return 1
    print(render_graph(plan, "dot" if graph_format == "dot" else "mermaid"), end="")
    return 0


# ------------------------------------------------------------------------ run


def _find_workflow(config: OrchestratorConfig, target: str) -> WorkflowSpec:
    """The workflow file ``target``, or the composite of the config named so.

    Raises:
        UsageError: Neither exists; names what does.
        WorkflowDefinitionError: The file, or a workflow of the config, is invalid.
    """
    if Path(target).is_file():
        return load_workflow(target)
    specs = load_workflows(config.workflows)
    for spec in specs:
        if spec.name == target:
            return spec
    names = sorted(spec.name for spec in specs)
    close = close_names(target, names)
    hint = f"; did you mean {' or '.join(repr(name) for name in close)}?" if close else ""
    known = f"the config's composites: {', '.join(names)}" if names else "the config has no composites"
    raise UsageError(f"no workflow file or composite named {target!r}{hint} ({known})")


async def _run(rt: _Runtime, target: str, arguments: dict[str, Any], as_json: bool) -> int:
    spec = _find_workflow(rt.config, target)
    [static_plan] = _static_plans([spec])
    async with rt.pool({spec.name}) as pool:
        await pool.wait_settled(_SETTLE_TIMEOUT)
        down = _unavailable(pool.statuses(), "warning")
        try:
            plan = compile_workflow(spec, static_plan.path, catalog=pool.catalog, unavailable_servers=down)
        except WorkflowDefinitionError as exc:
            _print_problems(exc.problems)
            return 1
        applied, problems = validate_input(plan, arguments)
        if problems:
            print(f"error: invalid --input for {plan.name!r}:", file=sys.stderr)
            _print_problems([f"  - {p}" for p in problems])
            return 2
        view = RunView(plan)
        with tracer.start_as_current_span(f"orchestrator run {plan.name}"):
            trace_id = current_trace_id()
            result = await execute(plan, applied, PoolInvoker(pool), on_event=view)
    tool_result = run_result_to_tool_result(result, trace_id)
    rt.report_trace(trace_id)
    if result.status == "failed":
        print(f"error: {result.error}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(result.output, ensure_ascii=False))
    else:
        print(f"run {result.run_id} succeeded", file=sys.stderr)
        _print_result(tool_result)
    return 0


# ----------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="One MCP meta-connector: many MCP servers served as one, with composite workflow tools.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (repeatable)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = add_config_option(commands.add_parser("serve", help="serve the merged catalogue as one MCP server"))
    serve.add_argument("--transport", choices=["stdio", "http"], help="default: serve.transport, else stdio")
    serve.add_argument("--host", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default 8765; 0 picks a free one)")

    tools = add_config_option(commands.add_parser("tools", help="list the merged tools and their name mapping"))
    add_json_option(tools, "machine-readable output")

    call = add_config_option(commands.add_parser("call", help="call one tool by its exposed name and print the result"))
    call.add_argument("name", help="exposed tool name (see `orchestrator tools`)")
    call.add_argument("--args", default="{}", help="arguments as a JSON object")
    call.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one argument (repeatable); VALUE is read as JSON if it parses, else as text",
    )
    validate = add_config_option(commands.add_parser("validate", help="check workflow files (exit 1 on any problem)"))
    validate.add_argument("files", nargs="+", metavar="FILE", help="workflow files")
    validate.add_argument("--live", action="store_true", help="also check against the live servers of the config")

    run = add_config_option(commands.add_parser("run", help="run a workflow once and print its output"))
    run.add_argument("workflow", metavar="WORKFLOW", help="a workflow file, or the name of a configured composite")
    run.add_argument("--input", default="{}", help="the workflow's input as a JSON object")
    add_json_option(run, "print only the output object, as JSON")

    graph = commands.add_parser("graph", help="draw a workflow's DAG (Mermaid or Graphviz DOT)")
    graph.add_argument("workflow", metavar="WORKFLOW", help="a workflow file")
    graph.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")

    _install.add_parser(commands)
    _doctor.add_parser(commands)
    _status.add_parser(commands)
    _traces.add_parser(commands)
    return parser


def _json_object(text: str, option: str) -> dict[str, Any]:
    """The JSON object an option holds.

    Raises:
        UsageError: It is not JSON, or not an object.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"not valid JSON: {exc}", option) from None
    if not isinstance(value, dict):
        raise UsageError(f'must be a JSON object such as \'{{"key": "value"}}\', not {_json_kind(value)}', option)
    return cast(dict[str, Any], value)


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    return "null" if value is None else "a number"


def _key_values(pairs: list[str]) -> dict[str, Any]:
    """``--arg KEY=VALUE`` options as an object; VALUE is JSON if it parses, else text.

    Raises:
        UsageError: An option is not ``KEY=VALUE``.
    """
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"expected KEY=VALUE, got {pair!r}", "--arg")
        try:
            values[key] = json.loads(text)
        except json.JSONDecodeError:
            values[key] = text
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose, args.command)
    # These two handle a missing or broken config themselves (install --from creates one).
    if args.command == "install":
        return _install.run(args)
    if args.command == "doctor":
        return _doctor.run(args)
    if args.command == "status":
        return _status.run(args)
    if args.command == "traces":
        return _traces.run(args)
    try:
        if args.command == "graph":
            return _graph(args.workflow, args.format)
        if args.command == "validate" and not args.live:
            return anyio.run(_validate, None, args.files, False)
        config = _load(args.config)
        tracing = configure_tracing(config.tracing)
        try:
            return _dispatch(args, _Runtime(config, tracing))
        finally:
            # After the pool has stopped: children have exited and flushed their spans.
            tracing.shutdown()
    except WorkflowDefinitionError as exc:
        _print_problems(exc.problems)
        return 2
    except OrchestratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, rt: _Runtime) -> int:
    if args.command == "validate":
        return anyio.run(_validate, rt, args.files, True)
    if args.command == "run":
        return anyio.run(_run, rt, args.workflow, _json_object(args.input, "--input"), args.json)
    if args.command == "serve":
        transport = args.transport or rt.config.serve.transport
        host = args.host or rt.config.serve.host
        port = args.port if args.port is not None else rt.config.serve.port
        return anyio.run(_serve, rt, transport, host, port)
    if args.command == "tools":
        return anyio.run(_tools, rt, args.json)
    if args.command == "call":
        arguments = _json_object(args.args, "--args") | _key_values(args.arg)
        return anyio.run(_call, rt, args.name, arguments)
    return 2


if __name__ == "__main__":
    sys.exit(main())
