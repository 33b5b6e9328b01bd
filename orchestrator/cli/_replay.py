"""``orchestrator run --record FILE`` and ``orchestrator replay FILE [WORKFLOW]``.

A recording keeps every downstream call of one run and its answer, and the definitions of
the tools the workflow calls; a replay compiles the workflow against those definitions and
answers its calls from the recording, so it starts no server (see docs/workflows.md).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
import mcp_types as types

from orchestrator import workflow
from orchestrator.catalog import ServerManifest, build_catalog
from orchestrator.cli._approve import YesApprover
from orchestrator.cli._runview import RunView, print_result
from orchestrator.cli._subcommands import add_config_option, add_json_option, config_of
from orchestrator.errors import ConfigError, OrchestratorError, RecordingError, UsageError, WorkflowDefinitionError
from orchestrator.server import run_result_to_tool_result

if TYPE_CHECKING:
    import argparse

    from orchestrator.catalog import Catalog
    from orchestrator.cli._subcommands import SubcommandAdder
    from orchestrator.workflow import (
        Recording,
        RecordingInvoker,
        ReplayInvoker,
        RunResult,
        ToolInvoker,
        WorkflowPlan,
        WorkflowSpec,
    )

__all__ = ["RunRecorder", "add_parser", "add_record_option", "run"]


def add_record_option(parser: argparse.ArgumentParser) -> None:
    """Give ``run`` its ``--record FILE`` option (``args.record``)."""
    parser.add_argument(
        "--record",
        metavar="FILE",
        help="write every downstream call of the run and its answer to FILE (JSON Lines), for `orchestrator replay`",
    )


class RunRecorder:
    """Records one run of ``orchestrator run`` and writes the recording when it is over."""

    def __init__(self, path: str, arguments: dict[str, Any]) -> None:
        """Check that ``path`` can be written, before any server starts.

        Raises:
            UsageError: ``path``'s folder does not exist, or ``path`` is a folder.
        """
        self._path = Path(path)
        if not self._path.parent.is_dir() or self._path.is_dir():
            raise UsageError(f"cannot write a recording to {path}: no such folder, or a folder", "--record")
        self._arguments = arguments
        self._recorded_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        self._invoker: RecordingInvoker | None = None

    def wrap(self, live: ToolInvoker) -> ToolInvoker:
        """The invoker the run uses: ``live``, every call recorded (``Aggregator.run``'s ``invoker``)."""
        self._invoker = workflow.RecordingInvoker(live)
        return self._invoker

    def write(self, plan: WorkflowPlan, catalog: Catalog, result: RunResult) -> None:
        """Write the recording: the header, every call, the run's output.

        Raises:
            UsageError: The file cannot be written.
        """
        header = workflow.RecordingHeader(
            workflow=plan.name,
            input=self._arguments,
            recorded_at=self._recorded_at,
            plan_hash=workflow.plan_hash(plan),
            catalogue_version=result.catalogue_version,
            tools=workflow.tool_definitions(plan, catalog.original_tool),
        )
        calls = self._invoker.calls if self._invoker is not None else []
        try:
            self._path.write_text(workflow.dump_recording(header, calls, result.output), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write the recording: {exc.strerror or exc}", "--record") from None
        print(f"recorded {len(calls)} call(s) to {self._path}", file=sys.stderr)


def add_parser(commands: SubcommandAdder) -> None:
    """Add ``replay``."""
    replay = add_config_option(
        commands.add_parser(
            "replay",
            help="run a workflow against a recording made by `run --record`, starting no server",
        ),
        help="config whose composites WORKFLOW names (default: $ORCHESTRATOR_CONFIG, then ./orchestrator.yaml)",
    )
    replay.add_argument("recording", metavar="FILE", help="a recording written by `orchestrator run --record FILE`")
    replay.add_argument(
        "workflow",
        metavar="WORKFLOW",
        nargs="?",
        help="a workflow file, or the name of a configured composite (default: the workflow recorded)",
    )
    replay.add_argument("--input", help="the workflow's input as a JSON object (default: the input recorded)")
    add_json_option(replay, "print only the output object, as JSON")


def run(args: argparse.Namespace) -> int:
    """``orchestrator replay``; returns the exit status."""
    try:
        recording, recorded_output = _read(args.recording)
        spec = _workflow(args.workflow or recording.header.workflow, args.config)
        arguments = recording.header.input if args.input is None else _json_object(args.input)
        plan = workflow.compile_workflow(
            spec, spec.source.path if spec.source else None, catalog=_recorded_catalog(recording)
        )
    except WorkflowDefinitionError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except OrchestratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if recording.header.plan_hash not in (None, workflow.plan_hash(plan)):
        print(f"note: {plan.name!r} has changed since it was recorded", file=sys.stderr)
    applied, problems = workflow.validate_input(plan, arguments)
    if problems:
        print(f"error: invalid input for {plan.name!r}:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    replay = workflow.ReplayInvoker(recording.calls)
    try:
        result = anyio.run(_execute, plan, applied, replay, recording.header.catalogue_version)
    except BaseExceptionGroup as group:
        missing, _ = group.split(RecordingError)
        if missing is None:
            raise
        print(f"error: replay of {args.recording} failed: {_first(missing)}", file=sys.stderr)
        return 1
    return _report(result, replay, recorded_output, args.json)


async def _execute(plan: WorkflowPlan, arguments: dict[str, Any], replay: ReplayInvoker, version: str | None) -> Any:
    # Nothing is called, so nothing needs approving: the recording is of an approved run.
    approver = YesApprover("the replay")
    return await workflow.execute(
        plan, arguments, replay, on_event=RunView(plan), catalogue_version=version, approver=approver
    )


def _report(result: RunResult, replay: ReplayInvoker, recorded_output: Any, as_json: bool) -> int:
    if result.status == "failed":
        print(f"error: {result.error}", file=sys.stderr)
        return 1
    if replay.unused:
        unused = ", ".join(sorted({f"{call.server}.{call.tool}" for call in replay.unused}))
        print(f"note: {len(replay.unused)} recorded call(s) were not made: {unused}", file=sys.stderr)
    if recorded_output is not None and recorded_output != result.output:
        print("note: the output differs from the recorded run's", file=sys.stderr)
    if as_json:
        print(json.dumps(result.output, ensure_ascii=False))
    else:
        print(f"run {result.run_id} replayed", file=sys.stderr)
        print_result(run_result_to_tool_result(result))
    return 0


def _read(path: str) -> tuple[Recording, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RecordingError(f"cannot read the recording {path}: {exc.strerror or exc}") from None
    return workflow.parse_recording(text, path)


def _workflow(target: str, config_option: str | None) -> WorkflowSpec:
    """A workflow file, else the composite of that name in the config's workflows.

    Raises:
        UsageError: Neither a file nor a composite of the config has that name.
        ConfigError: The config is needed, and missing or invalid.
        WorkflowDefinitionError: The workflow file is invalid.
    """
    if Path(target).is_file():
        return workflow.load_workflow(target)
    try:
        config = config_of(config_option)
    except ConfigError as exc:
        # The name is only a composite's: say how to do without a config.
        raise UsageError(
            f"{target!r} is not a file, so it is looked up among the config's composites, and {exc}"
            "\n  (give WORKFLOW as a workflow file, or the config with -c)"
        ) from None
    by_name = {spec.name: spec for spec in workflow.load_workflows(config.workflows)}
    if target not in by_name:
        known = ", ".join(sorted(by_name)) or "none"
        raise UsageError(f"no workflow file or composite named {target!r} (the config's composites: {known})")
    return by_name[target]


def _recorded_catalog(recording: Recording) -> Catalog:
    """A catalogue of the recorded tool definitions: the plan compiles as it did against the servers."""
    manifests = [
        ServerManifest(server, server, tuple(types.Tool.model_validate(tool) for tool in tools))
        for server, tools in recording.header.tools.items()
    ]
    return build_catalog(manifests)


def _json_object(text: str) -> dict[str, Any]:
    """``--input``'s JSON object.

    Raises:
        UsageError: It is not JSON, or not an object.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"not valid JSON: {exc}", "--input") from None
    if not isinstance(value, dict):
        raise UsageError("must be a JSON object", "--input")
    return cast("dict[str, Any]", value)


def _first(group: BaseExceptionGroup[RecordingError]) -> RecordingError:
    first = group.exceptions[0]
    return first if isinstance(first, RecordingError) else _first(first)
