"""The command line's main module: parse, set up logging and tracing, run one command, print.

Every command that needs servers goes through the public ``Aggregator``; this module
only adds what a terminal needs (argument parsing, exit statuses, the run view, the root
span of a one-shot command, where its trace is).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio

from orchestrator import workflow
from orchestrator._aggregator import Aggregator
from orchestrator._cores import usable_cores
from orchestrator._version import __version__
from orchestrator.cli import (
    _approve,
    _audit,
    _auth,
    _catalogue,
    _doctor,
    _login,
    _pins,
    _replay,
    _runs,
    _status,
    _traces,
)
from orchestrator.cli import install as _install
from orchestrator.cli._dryrun import render_dry_run
from orchestrator.cli._runview import RunView, print_result
from orchestrator.cli._subcommands import add_config_option, add_json_option, config_of
from orchestrator.cli._workers import WORKER_SEAT_OPTION, supervise_workers
from orchestrator.errors import (
    InvalidArgumentsError,
    OrchestratorError,
    UnknownToolError,
    UsageError,
    WorkflowDefinitionError,
)
from orchestrator.server import (
    WorkerSeat,
    run_result_to_tool_result,
)
from orchestrator.telemetry import TracingHandle, configure_tracing
from orchestrator.tracing import current_trace_id, tracer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from orchestrator.catalog import Catalog
    from orchestrator.config import OrchestratorConfig
    from orchestrator.downstream import ServerStatus, Withheld
    from orchestrator.workflow import WorkflowPlan

__all__ = ["main"]

logger = logging.getLogger("orchestrator")

_SETTLE_TIMEOUT = 30.0
"""How long one-shot commands wait for every server's first start attempt."""
_STDERR_LINES = 6
"""Lines of a server's stderr shown when it did not start: a traceback's end says why."""


def _configure_logging(verbosity: int, command: str, worker: str | None = None) -> None:
    # A server's log is its only window; one-shot commands show their own output instead.
    base = logging.INFO if command == "serve" else logging.WARNING
    level = base - 10 * verbosity
    # Workers of `serve --workers` share the supervisor's stderr: each line says whose it is.
    who = f" [worker {worker.split('/')[0]}]" if worker else ""
    logging.basicConfig(
        level=max(level, logging.DEBUG),
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s{who} %(name)s: %(message)s",
    )
    # The SDK and HTTP libraries are chatty at INFO; their warnings still show.
    for noisy in ("mcp", "httpx", "httpx2", "uvicorn.error", "watchfiles", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, level))


@dataclass(frozen=True, slots=True)
class _Setup:
    """What every command needs: the config and the tracing set up for it."""

    config: OrchestratorConfig
    tracing: TracingHandle

    def aggregator(self, *, composites: bool = True) -> Aggregator:
        """The aggregator over the config; stdio children export traces where we do.

        Args:
            composites: Serve the config's workflows as composites. ``run FILE`` and
                ``validate --live`` check files of their own: a broken workflow elsewhere in
                the config must not stop them, so they go without.
        """
        config = self.config if composites else self.config.model_copy(update={"workflows": ()})
        return Aggregator(config, tracing=self.tracing)

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
        if status.state in ("ready", "cold"):  # a cold lazy server starts on its first call
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


# ---------------------------------------------------------------------- serve


async def _serve(rt: _Setup, transport: str, host: str, port: int, seat: WorkerSeat | None = None) -> int:
    aggregator = rt.aggregator()
    if transport == "http":
        aggregator.http_security(host)  # a refused address fails before any server starts

    def announce(url: str) -> None:
        if seat is None:  # a worker tells its supervisor, which says it once for all
            print(f"mcp-orchestrator listening on {url}", file=sys.stderr, flush=True)

    async with aggregator:
        if transport == "stdio":
            await aggregator.serve_stdio(handle_signals=True)
            logger.info("client closed stdin; shutting down")
        else:
            # SIGTERM and SIGINT stop accepting, drain, then return here.
            await aggregator.serve_http(host=host, port=port, on_listening=announce, handle_signals=True, seat=seat)
            logger.info("shutting down")
    return 0


# ---------------------------------------------------------------------- tools


async def _tools(rt: _Setup, as_json: bool, diff_with: str | None) -> int:
    saved = _catalogue.read_saved_catalogue(diff_with) if diff_with is not None else None  # before any server starts
    async with rt.aggregator() as aggregator:
        statuses = await aggregator.wait_for_servers(_SETTLE_TIMEOUT)
        catalog = aggregator.catalog
        composites = aggregator.composites
        exposed = aggregator.server.exposed()
        withheld = aggregator.pool.withheld
        size = aggregator.server.catalogue_size()
        mode = aggregator.config.catalog.mode
    if saved is not None and diff_with is not None:
        _unavailable(statuses, "warning")
        if as_json:
            print(json.dumps(_catalogue.diff_as_json(saved, exposed), indent=2, ensure_ascii=False))
        else:
            print("\n".join(_catalogue.render_diff(saved, exposed, diff_with)))
        return 0 if saved.digest == exposed.digest else 1
    if as_json:
        print(json.dumps(_catalogue.catalogue_document(exposed, catalog), indent=2, ensure_ascii=False))
        return 1 if _unavailable(statuses, "error") else 0
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
    width = max((len(r["name"]) for r in rows), default=4)
    for row in rows:
        print(f"{row['name']:<{width}}  {row['server']}.{row['tool']}")
    if composites.names:
        print("\nComposite tools (workflows):")
        for name in sorted(composites.names):
            state = "" if name in composites.active else "  (unavailable: see the log above)"
            print(f"{name:<{width}}  workflow{state}")
    if rows or composites.names:  # nothing served: nothing printed, the errors say why
        print(f"\nCatalogue version {exposed.version}")
        shown = "search_tools and call_tool instead" if size.mode == "search" else "every tool"
        print(
            f"The tool list is {size.tools} tools, {size.tokens:,} tokens ({size.method}); "
            f"catalog.mode {mode}: the model is shown {shown}"
        )
    _print_notes(catalog, withheld)
    # An empty or partial list that exits 0 would read as "these are all the tools".
    return 1 if _unavailable(statuses, "error") else 0


def _print_notes(catalog: Catalog, withheld: Mapping[str, tuple[Withheld, ...]]) -> None:
    """On stderr: names changed to fit the rules, and definitions held back by the trust gate."""
    notes = [m for m in catalog.mappings if m.notes]
    if notes:
        print("\nNames changed to fit the model-API rules:", file=sys.stderr)
        for m in notes:
            print(f"  {m.exposed}  <-  {m.server}.{m.original}  ({', '.join(m.notes)})", file=sys.stderr)
    if withheld:  # not listed: say so, or the list reads as everything the servers offer
        print("\nWithheld (see orchestrator pins):", file=sys.stderr)
        for server, items in withheld.items():
            for item in items:
                print(f"  {server}: {item.reason}", file=sys.stderr)


# ----------------------------------------------------------------------- call


async def _call(rt: _Setup, name: str, arguments: dict[str, Any]) -> int:
    async with rt.aggregator() as aggregator:
        await aggregator.wait_for_servers(_SETTLE_TIMEOUT)
        # The command is the caller: its span is the root of the call's trace.
        with tracer.start_as_current_span(f"orchestrator call {name}"):
            trace_id = current_trace_id()
            try:
                result = await aggregator.call(name, arguments)
            except UnknownToolError as exc:
                # The tool may well exist, on a server that did not start: say so first.
                _unavailable(aggregator.statuses(), "warning")
                print(f"error: {exc} (see `orchestrator tools`)", file=sys.stderr)
                return 2
    rt.report_trace(trace_id)
    print_result(result)
    return 1 if result.is_error else 0


# ------------------------------------------------------------- validate, graph


def _print_problems(problems: list[str]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)


async def _validate(rt: _Setup | None, files: list[str], live: bool) -> int:
    checks = [workflow.check_workflow(file) for file in files]
    checked_against = ""
    if live:
        assert rt is not None
        async with rt.aggregator(composites=False) as aggregator:
            down = _unavailable(await aggregator.wait_for_servers(_SETTLE_TIMEOUT), "warning")
            # Every file again, with the tools: a step that parsed is checked even if another did not.
            checks = [workflow.check_workflow(file, aggregator.catalog, unavailable_servers=down) for file in files]
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
        [plan] = workflow.compile_workflows([workflow.load_workflow(file)])
    except WorkflowDefinitionError as exc:
        _print_problems(exc.problems)
        return 1
    print(workflow.render_graph(plan, "dot" if graph_format == "dot" else "mermaid"), end="")
    return 0


# ------------------------------------------------------------------------ run


async def _run(
    rt: _Setup, target: str, arguments: dict[str, Any], as_json: bool, record: str | None = None, yes: bool = False
) -> int:
    spec = rt.aggregator().find_workflow(target)  # a file, or a composite of the config by name
    workflow.compile_workflows([spec])  # its problems before any server starts
    asking = [step_id for step_id, step in spec.steps.items() if step.approve is not None]
    if asking and not (yes or sys.stdin.isatty()):
        return _cannot_ask(spec.name, asking[0])  # before any server starts
    recorder = _replay.RunRecorder(record, arguments) if record is not None else None
    async with rt.aggregator(composites=False) as aggregator:
        _unavailable(await aggregator.wait_for_servers(_SETTLE_TIMEOUT), "warning")
        try:
            plan = aggregator.plan(spec)
        except WorkflowDefinitionError as exc:
            _print_problems(exc.problems)
            return 1
        view = RunView(plan)
        approver = _approve.approver_for(plan, yes, view, rt.config.runs.approval_timeout)
        if approver is None and (asking := _approve.steps_asking(plan)):
            return _cannot_ask(plan.name, asking[0])  # approve_destructive, decided by the tools
        with tracer.start_as_current_span(f"orchestrator run {plan.name}"):
            trace_id = current_trace_id()
            try:
                wrap = recorder.wrap if recorder is not None else None
                result = await aggregator.run(plan, arguments, on_event=view, invoker=wrap, approver=approver)
            except InvalidArgumentsError as exc:
                print(f"error: invalid --input for {plan.name!r}:", file=sys.stderr)
                _print_problems([f"  - {p}" for p in exc.problems])
                return 2
        if recorder is not None:
            recorder.write(plan, aggregator.catalog, result)
    tool_result = run_result_to_tool_result(result, trace_id)
    rt.report_trace(trace_id)
    if result.status != "succeeded":
        print(f"error: {result.error}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(result.output, ensure_ascii=False))
    else:
        print(f"run {result.run_id} succeeded", file=sys.stderr)
        print_result(tool_result)
    return 0


def _cannot_ask(workflow_name: str, step_id: str) -> int:
    """Refuse a run whose approvals nobody can give (stdin is no terminal, no ``--yes``); exit status 1."""
    print(
        f"error: step {step_id!r} of {workflow_name!r} asks for approval, and stdin is not a terminal to ask on: "
        "run it on a terminal, or pass --yes to approve every step; nothing was called",
        file=sys.stderr,
    )
    return 1


async def _dry_run(rt: _Setup, target: str, arguments: dict[str, Any], as_json: bool) -> int:
    """``run --dry-run``: compile against the live catalogue (listing only) and print the plan.

    Builds no invoker, so no tool can be called: only ``Aggregator.run`` makes one.
    """
    spec = rt.aggregator().find_workflow(target)
    [offline] = workflow.compile_workflows([spec])  # its problems, and the input's, before any server starts
    applied, problems = workflow.validate_input(offline, arguments)
    if problems:
        print(f"error: invalid --input for {offline.name!r}:", file=sys.stderr)
        _print_problems([f"  - {p}" for p in problems])
        return 2
    async with rt.aggregator(composites=False) as aggregator:
        _unavailable(await aggregator.wait_for_servers(_SETTLE_TIMEOUT), "warning")
        try:
            plan = aggregator.plan(spec)
        except WorkflowDefinitionError as exc:
            _print_problems(exc.problems)
            return 1
    result = workflow.dry_run(plan, applied)
    if as_json:
        print(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        print(render_dry_run(result), end="")
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
    serve.add_argument(
        "--workers",
        type=_workers_count,
        metavar="N",
        help="HTTP serving processes on the one port, each with its own servers; 'auto': one per core "
        "(default: serve.workers, else 1)",
    )
    serve.add_argument(WORKER_SEAT_OPTION, help=argparse.SUPPRESS)

    tools = add_config_option(commands.add_parser("tools", help="list the merged tools and their name mapping"))
    add_json_option(tools, "the whole exposed catalogue and its version as JSON (save it to compare with --diff)")
    tools.add_argument(
        "--diff",
        metavar="FILE",
        help="compare the live catalogue with one saved by `tools --json > FILE`: exit 0 if equal, 1 if not",
    )

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
    add_json_option(run, "print only the output object, as JSON (with --dry-run: the plan)")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="show the plan for this input (waves, conditions, arguments) without calling any tool",
    )
    run.add_argument(
        "--yes",
        action="store_true",
        help="approve every step that asks for approval (approve:, approve_destructive) without asking",
    )
    _replay.add_record_option(run)

    graph = commands.add_parser("graph", help="draw a workflow's DAG (Mermaid or Graphviz DOT)")
    graph.add_argument("workflow", metavar="WORKFLOW", help="a workflow file")
    graph.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")

    _install.add_parser(commands)
    _doctor.add_parser(commands)
    _status.add_parser(commands)
    _traces.add_parser(commands)
    _audit.add_parser(commands)
    _auth.add_parser(commands)
    _pins.add_parser(commands)
    _runs.add_parser(commands)
    _login.add_parser(commands)
    _replay.add_parser(commands)
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
    return cast("dict[str, Any]", value)


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


_STANDALONE: dict[str, Callable[[argparse.Namespace], int]] = {
    "install": _install.run,
    "doctor": _doctor.run,
    "status": _status.run,
    "traces": _traces.run,
    "audit": _audit.run,
    "auth": _auth.run,
    "pins": _pins.run,
    "runs": _runs.run,
    "login": _login.run,
    "logout": _login.run,
    "replay": _replay.run,
}
"""Commands with a module of their own, which read the config and report its errors themselves."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    _configure_logging(args.verbose, args.command, getattr(args, "worker_seat", None))
    # These handle a missing or broken config themselves (install --from creates one).
    if (standalone := _STANDALONE.get(args.command)) is not None:
        return standalone(args)
    try:
        if args.command == "graph":
            return _graph(args.workflow, args.format)
        if args.command == "validate" and not args.live:
            return anyio.run(_validate, None, args.files, False)
        config = config_of(args.config)
        tracing = configure_tracing(config.tracing)
        try:
            return _dispatch(args, _Setup(config, tracing))
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


async def _migrate_state(config: OrchestratorConfig) -> None:
    """Open the state database once, which creates or migrates it."""
    # Here, not at the top: SQLAlchemy loads only when there are workers to prepare for.
    from orchestrator.store import open_store, state_url

    async with open_store(state_url(config.state, os.environ, str(config.source or "<config>"))):
        pass


def _workers_count(text: str) -> int | Literal["auto"]:
    if text == "auto":
        return "auto"
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or 'auto'") from None
    if not 1 <= count <= 64:
        raise argparse.ArgumentTypeError("between 1 and 64")
    return count


def _resolved_workers(wanted: int | Literal["auto"]) -> int:
    return usable_cores() if wanted == "auto" else wanted


def _dispatch(args: argparse.Namespace, rt: _Setup) -> int:
    if args.command == "validate":
        return anyio.run(_validate, rt, args.files, True)
    if args.command == "run" and args.dry_run:
        return anyio.run(_dry_run, rt, args.workflow, _json_object(args.input, "--input"), args.json)
    if args.command == "run":
        arguments = _json_object(args.input, "--input")
        return anyio.run(_run, rt, args.workflow, arguments, args.json, args.record, args.yes)
    if args.command == "serve":
        transport = args.transport or rt.config.serve.transport
        host = args.host or rt.config.serve.host
        port = args.port if args.port is not None else rt.config.serve.port
        if args.worker_seat is not None:
            return anyio.run(_serve, rt, transport, host, port, WorkerSeat.parse(args.worker_seat))
        workers = _resolved_workers(args.workers if args.workers is not None else rt.config.serve.workers)
        if transport == "http" and workers > 1:
            rt.aggregator().http_security(host)  # a refused address fails before any worker starts
            prepare = partial(_migrate_state, rt.config)
            trace_file = rt.tracing.settings.file if "jaeger_file" in rt.tracing.settings.exporters else None
            return anyio.run(supervise_workers, workers, args.argv, host, port, prepare, trace_file)
        return anyio.run(_serve, rt, transport, host, port)
    if args.command == "tools":
        return anyio.run(_tools, rt, args.json, args.diff)
    if args.command == "call":
        arguments = _json_object(args.args, "--args") | _key_values(args.arg)
        return anyio.run(_call, rt, args.name, arguments)
    return 2


if __name__ == "__main__":
    sys.exit(main())
