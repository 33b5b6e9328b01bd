"""Composite tools: workflow files -> compiled plans -> runs against a ``ToolInvoker``.

Owns the workflow file format (``WorkflowSpec``, and its JSON Schema), ``${{ JMESPath }}``
templates, the compiler (``compile_workflow``), the checker (``check_workflow``: every problem
of a file at once, format, wiring and, against a live ``Catalog``, tools and arguments, as
``path:line: key.path: message``) and the executor (``execute``: eager DAG scheduling,
fan-out, conditions, defaults, Temporal-style retries, timeouts, cancellation, output
validation). ``RecordingInvoker`` keeps every downstream call of a run and its answer;
``ReplayInvoker`` answers a run from such a recording (``dump_recording``/``parse_recording``
are its JSON Lines format), so a workflow runs again with no server.

Also ``dry_run``: a run's plan for one input (waves, decided conditions, the arguments the
input determines, the approvals it would ask for), worked out with the same expressions and
no invoker.

Traces each run through ``orchestrator.tracing`` (OpenTelemetry API only): an
``invoke_workflow`` span, one span per step and per for_each item, retries as span events;
the SDK's client span of each downstream attempt becomes a child of its step.

Does not: do any I/O besides reading workflow files (``python -m orchestrator.workflow``
writes their JSON Schema, a development tool), import ``orchestrator.downstream`` or
``orchestrator.server``, log, or configure tracing (no exporters, no providers). The server
adapts its downstream pool to ``ToolInvoker`` and turns ``StepEvent``s into progress
notifications.

Names load on first use (PEP 562), each from the module that defines it: the compiler alone
(networkx, JMESPath, JSON Schema) costs a few hundred milliseconds to import, which a server
with no workflows, or a command that never compiles one, must not pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator._lazy import lazy_names

if TYPE_CHECKING:
    from orchestrator.workflow._compile import compile_workflow, compile_workflows
    from orchestrator.workflow._dry_run import DryRun, DryRunApproval, DryRunStep, Pending, dry_run
    from orchestrator.workflow._execute import execute
    from orchestrator.workflow._expr import (
        Expression,
        ExpressionError,
        References,
        Template,
        compile_expression,
        compile_template,
    )
    from orchestrator.workflow._graph import GraphFormat, render_graph
    from orchestrator.workflow._hooks import (
        ApprovalAnswer,
        ApprovalRequest,
        Approver,
        JournalledStep,
        RunJournal,
        StepInterrupted,
    )
    from orchestrator.workflow._load import (
        WorkflowCheck,
        check_workflow,
        check_workflow_data,
        load_workflow,
        load_workflow_text,
        load_workflows,
        workflow_files,
    )
    from orchestrator.workflow._plan import ApprovalPlan, RetryPolicy, StepPlan, WorkflowPlan
    from orchestrator.workflow._recording import (
        RECORDING_FORMAT,
        RECORDING_VERSION,
        RecordedCall,
        Recording,
        RecordingHeader,
        RecordingInvoker,
        ReplayInvoker,
        dump_recording,
        parse_recording,
        plan_hash,
        tool_definitions,
    )
    from orchestrator.workflow._retry import set_testing
    from orchestrator.workflow._run import (
        IDEMPOTENCY_KEY_META,
        INPUT_STEP,
        OUTPUT_STEP,
        RUN_STEP,
        EventKind,
        RunResult,
        RunStatus,
        StepCall,
        StepEvent,
        StepEventFn,
        StepRun,
        StepStatus,
        ToolInvoker,
        new_run_id,
        step_call_meta,
        step_call_of,
        validate_input,
    )
    from orchestrator.workflow._schema import workflow_json_schema
    from orchestrator.workflow._snapshot import workflow_snapshot
    from orchestrator.workflow._spec import (
        AnnotationsSpec,
        ApproveSpec,
        DefaultsSpec,
        LimitsSpec,
        OutputSpec,
        RetrySpec,
        SourceInfo,
        StepSpec,
        WorkflowSpec,
    )
    from orchestrator.workflow._wiring import split_tool_reference

__all__ = [
    "IDEMPOTENCY_KEY_META",
    "INPUT_STEP",
    "OUTPUT_STEP",
    "RECORDING_FORMAT",
    "RECORDING_VERSION",
    "RUN_STEP",
    "AnnotationsSpec",
    "ApprovalAnswer",
    "ApprovalPlan",
    "ApprovalRequest",
    "ApproveSpec",
    "Approver",
    "DefaultsSpec",
    "DryRun",
    "DryRunApproval",
    "DryRunStep",
    "EventKind",
    "Expression",
    "ExpressionError",
    "GraphFormat",
    "JournalledStep",
    "LimitsSpec",
    "OutputSpec",
    "Pending",
    "RecordedCall",
    "Recording",
    "RecordingHeader",
    "RecordingInvoker",
    "References",
    "ReplayInvoker",
    "RetryPolicy",
    "RetrySpec",
    "RunJournal",
    "RunResult",
    "RunStatus",
    "SourceInfo",
    "StepCall",
    "StepEvent",
    "StepEventFn",
    "StepInterrupted",
    "StepPlan",
    "StepRun",
    "StepSpec",
    "StepStatus",
    "Template",
    "ToolInvoker",
    "WorkflowCheck",
    "WorkflowPlan",
    "WorkflowSpec",
    "check_workflow",
    "check_workflow_data",
    "compile_expression",
    "compile_template",
    "compile_workflow",
    "compile_workflows",
    "dry_run",
    "dump_recording",
    "execute",
    "load_workflow",
    "load_workflow_text",
    "load_workflows",
    "new_run_id",
    "parse_recording",
    "plan_hash",
    "render_graph",
    "set_testing",
    "split_tool_reference",
    "step_call_meta",
    "step_call_of",
    "tool_definitions",
    "validate_input",
    "workflow_files",
    "workflow_json_schema",
    "workflow_snapshot",
]

_HOMES = {
    **dict.fromkeys(("compile_workflow", "compile_workflows"), "orchestrator.workflow._compile"),
    **dict.fromkeys(("DryRun", "DryRunApproval", "DryRunStep", "Pending", "dry_run"), "orchestrator.workflow._dry_run"),
    "execute": "orchestrator.workflow._execute",
    **dict.fromkeys(
        ("Expression", "ExpressionError", "References", "Template", "compile_expression", "compile_template"),
        "orchestrator.workflow._expr",
    ),
    **dict.fromkeys(("GraphFormat", "render_graph"), "orchestrator.workflow._graph"),
    **dict.fromkeys(
        ("ApprovalAnswer", "ApprovalRequest", "Approver", "JournalledStep", "RunJournal", "StepInterrupted"),
        "orchestrator.workflow._hooks",
    ),
    **dict.fromkeys(
        (
            "WorkflowCheck",
            "check_workflow",
            "check_workflow_data",
            "load_workflow",
            "load_workflow_text",
            "load_workflows",
            "workflow_files",
        ),
        "orchestrator.workflow._load",
    ),
    **dict.fromkeys(("ApprovalPlan", "RetryPolicy", "StepPlan", "WorkflowPlan"), "orchestrator.workflow._plan"),
    **dict.fromkeys(
        (
            "RECORDING_FORMAT",
            "RECORDING_VERSION",
            "RecordedCall",
            "Recording",
            "RecordingHeader",
            "RecordingInvoker",
            "ReplayInvoker",
            "dump_recording",
            "parse_recording",
            "plan_hash",
            "tool_definitions",
        ),
        "orchestrator.workflow._recording",
    ),
    "set_testing": "orchestrator.workflow._retry",
    **dict.fromkeys(
        (
            "IDEMPOTENCY_KEY_META",
            "INPUT_STEP",
            "OUTPUT_STEP",
            "RUN_STEP",
            "EventKind",
            "RunResult",
            "RunStatus",
            "StepCall",
            "StepEvent",
            "StepEventFn",
            "StepRun",
            "StepStatus",
            "ToolInvoker",
            "new_run_id",
            "step_call_meta",
            "step_call_of",
            "validate_input",
        ),
        "orchestrator.workflow._run",
    ),
    "workflow_json_schema": "orchestrator.workflow._schema",
    "workflow_snapshot": "orchestrator.workflow._snapshot",
    **dict.fromkeys(
        (
            "AnnotationsSpec",
            "ApproveSpec",
            "DefaultsSpec",
            "LimitsSpec",
            "OutputSpec",
            "RetrySpec",
            "SourceInfo",
            "StepSpec",
            "WorkflowSpec",
        ),
        "orchestrator.workflow._spec",
    ),
    "split_tool_reference": "orchestrator.workflow._wiring",
}

__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__, globals())
