"""What a workflow file declares: frozen pydantic models of the format (see DESIGN.md §5).

Pure module: no I/O. Every model forbids unknown keys, so a typo is an error naming the
key. Keys that are Python keywords (``with``, ``if``, ``as``) and the MCP annotation names
(``readOnlyHint``...) are field aliases; files must use the aliases. Expressions are kept
as text here and compiled by ``_compile``; durations are parsed to seconds on load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, cast

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.json_schema import SkipJsonSchema

from orchestrator._locations import LineMap  # noqa: TC001 - pydantic resolves SourceInfo's fields at run time
from orchestrator.config import parse_duration

__all__ = [
    "DEFAULT_RETRY_ON",
    "NAME_PATTERN",
    "STEP_ID_PATTERN",
    "AnnotationsSpec",
    "ApproveSpec",
    "DefaultsSpec",
    "LimitsSpec",
    "OutputSpec",
    "RetrySpec",
    "SourceInfo",
    "StepSpec",
    "WorkflowSpec",
]

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
STEP_ID_PATTERN = r"^[a-z][a-z0-9_]*$"
_VARIABLE_PATTERN = r"^[a-z_][a-z0-9_]*$"
_TOOL_PATTERN = r"^[^.\s]\S*\.\S*[^.\s]$"
_DURATION_PATTERN = r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"
ERROR_CLASS_PATTERN = r"^(transport_error|timeout|rate_limited|tool_error|output_invalid|mcp_error(:-?\d+)?)$"
DEFAULT_RETRY_ON = ("transport_error", "timeout", "rate_limited")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_alias=True, validate_by_name=False)


def _duration(value: object) -> object:
    return parse_duration(value) if isinstance(value, str) else value


def _check_tool(value: str) -> str:
    if not re.fullmatch(_TOOL_PATTERN, value):
        raise ValueError("must be '<server>.<tool>', e.g. 'metrics.query'")
    return value


def _check_step_id(value: str) -> str:
    if not re.fullmatch(STEP_ID_PATTERN, value):
        raise ValueError("step ids are lowercase letters, digits and '_', starting with a letter")
    return value


def _none_as_empty(value: object) -> object:
    return {} if value is None else value


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _check_message(value: str) -> str:
    if not value.strip():
        raise ValueError("the message must say what is being approved (it is empty)")
    return value


def _message_only(value: object) -> object:
    """``approve: "text"`` is short for ``approve: {message: "text"}``."""
    if isinstance(value, str):
        _check_message(value)
        return {"message": value}
    if value is None or isinstance(value, dict | BaseModel):
        return cast("object", value)
    raise ValueError("must be a message, or a mapping with message and (optionally) show")


Duration = Annotated[
    float,
    Field(gt=0),
    BeforeValidator(
        _duration,
        json_schema_input_type=Annotated[float, Field(gt=0)] | Annotated[str, Field(pattern=_DURATION_PATTERN)],
    ),
]
"""Seconds; written as ``'200ms'``, ``'20s'``, ``'2m'``, ``'1h'`` or a bare number of seconds."""

StepId = Annotated[str, AfterValidator(_check_step_id), WithJsonSchema({"type": "string", "pattern": STEP_ID_PATTERN})]
ErrorClass = Annotated[str, Field(pattern=ERROR_CLASS_PATTERN)]
Message = Annotated[str, AfterValidator(_check_message), WithJsonSchema({"type": "string", "pattern": r"\S"})]
"""Text for a person: not empty, not only blanks."""
OnError = Literal["fail", "continue"]


class RetrySpec(_Frozen):
    """Temporal-style retries: delay = min(max_interval, initial_interval * backoff_coefficient^(n-1))."""

    max_attempts: int = Field(default=3, ge=1, le=100, description="Attempts in all, the first included; 1 = none.")
    initial_interval: Duration = Field(default=1.0, description="Wait before the second attempt; default 1s.")
    backoff_coefficient: float = Field(default=2.0, ge=1.0, le=100.0, description="Each wait grows by this factor.")
    max_interval: Duration | None = Field(
        default=None, description="Longest single wait; default 100 x initial_interval."
    )
    jitter: Literal["none", "full"] = Field(
        default="none", description="'full' waits a uniformly random time in [0, delay] instead of the delay."
    )
    retry_on: tuple[ErrorClass, ...] = Field(
        default=DEFAULT_RETRY_ON,
        description=(
            "Error classes retried: transport_error, timeout, rate_limited, tool_error (an isError result), "
            "output_invalid, mcp_error (any JSON-RPC error) or mcp_error:<code>."
        ),
    )

    @model_validator(mode="after")
    def _max_not_below_initial(self) -> RetrySpec:
        if self.max_interval is not None and self.max_interval < self.initial_interval:
            raise ValueError("max_interval is shorter than initial_interval")
        return self

    @property
    def effective_max_interval(self) -> float:
        """``max_interval``, or 100 x ``initial_interval`` when unset (Temporal's default)."""
        return self.max_interval if self.max_interval is not None else 100 * self.initial_interval


class DefaultsSpec(_Frozen):
    """Values every step gets unless it sets its own."""

    timeout: Duration | None = Field(
        default=None, description="Per-attempt timeout; default the downstream server's configured timeout."
    )
    retry: RetrySpec | None = Field(
        default=None,
        description=(
            "Retry policy of steps that may retry (tool annotated idempotentHint/readOnlyHint, or the step says "
            "idempotent: true); other steps run once."
        ),
    )
    on_error: OnError = Field(default="fail", description="What a failed step does: fail the run, or continue.")


class LimitsSpec(_Frozen):
    """Bounds of one run."""

    timeout: Duration = Field(default=600.0, description="Longest a whole run may take; default 10m.")
    max_parallel: int = Field(default=8, ge=1, le=1000, description="Most downstream calls in flight at once.")


class ApproveSpec(_Frozen):
    """The user's approval, asked before a step calls its tool."""

    message: Message = Field(description="What the user is asked, e.g. 'Send the report to the customer?'.")
    show: str | None = Field(
        default=None,
        description=(
            "${{ expression }} whose value is shown with the question (what is about to happen); "
            "it sees input and the steps the step needs, like if."
        ),
    )


Approval = Annotated[
    ApproveSpec | None, BeforeValidator(_message_only, json_schema_input_type=ApproveSpec | Message | None)
]
"""``approve:`` as a mapping, or only its message."""


class StepSpec(_Frozen):
    """One downstream tool call (or one per item, with ``for_each``)."""

    tool: Annotated[str, AfterValidator(_check_tool), WithJsonSchema({"type": "string", "pattern": _TOOL_PATTERN})] = (
        Field(description="'<server key>.<original tool name>', e.g. 'metrics.query'.")
    )
    arguments: Annotated[Any, BeforeValidator(_none_as_empty)] = Field(
        default_factory=dict,
        alias="with",
        description="Tool arguments: an object (or one ${{ expression }} giving one); strings may hold expressions.",
    )
    needs: Annotated[tuple[StepId, ...], BeforeValidator(_one_or_many)] = Field(
        default=(),
        description="Steps that must finish first; expressions may read these and, transitively, their needs.",
    )
    condition: str | None = Field(
        default=None, alias="if", description="${{ expression }}; when falsy the step is skipped."
    )
    for_each: str | None = Field(
        default=None, description="${{ expression }} yielding a list; the tool is called once per item."
    )
    item_name: str = Field(
        default="item", alias="as", pattern=_VARIABLE_PATTERN, description="Name of the current for_each item."
    )
    max_parallel: int | None = Field(
        default=None, ge=1, le=1000, description="Most for_each items in flight; default limits.max_parallel."
    )
    max_items: int = Field(
        default=1000, ge=1, le=100_000, description="More for_each items than this fail the step; default 1000."
    )
    timeout: Duration | None = Field(default=None, description="Timeout of one attempt; default defaults.timeout.")
    deadline: Duration | None = Field(
        default=None, description="Bound on the whole step, every item and attempt included."
    )
    retry: RetrySpec | None = Field(
        default=None, description="Retry policy; allowed only if the tool is idempotent or idempotent: true."
    )
    idempotent: bool | None = Field(
        default=None, description="Overrides the tool's idempotentHint/readOnlyHint: may this call be repeated?"
    )
    on_error: OnError | None = Field(
        default=None, description="'continue' lets dependents run with 'default'; default defaults.on_error."
    )
    default: Any = Field(
        default=None, description="The result dependents see when this step is skipped or fails under continue."
    )
    approve: Approval = Field(
        default=None,
        description=(
            "Ask the user (through the calling client's elicitation) before calling the tool: "
            "{message, show} or just the message. Declined or unanswered, the run stops as declined."
        ),
    )


class OutputSpec(_Frozen):
    """What the composite tool returns."""

    json_schema: dict[str, Any] | None = Field(
        default=None, alias="schema", description="JSON Schema (type object) of the value: the tool's outputSchema."
    )
    value: Any = Field(default=None, description="Template of the returned value; sees input and every step.")


class AnnotationsSpec(_Frozen):
    """MCP tool annotations; they may only be more conservative than those derived from the steps."""

    title: str | None = Field(default=None, description="Human-readable title of the composite tool.")
    read_only_hint: bool | None = Field(default=None, alias="readOnlyHint", description="false to disclaim read-only.")
    destructive_hint: bool | None = Field(
        default=None, alias="destructiveHint", description="true to declare the tool destructive."
    )
    idempotent_hint: bool | None = Field(
        default=None, alias="idempotentHint", description="false to disclaim idempotence."
    )
    open_world_hint: bool | None = Field(
        default=None, alias="openWorldHint", description="true to declare the tool open-world."
    )


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """Where a spec came from, set by the loader so later errors can name file and line.

    Attributes:
        path: The workflow file.
        lines: 1-based line of each mapping key and list item.
    """

    path: str
    lines: LineMap = field(default_factory=lambda: {})


class WorkflowSpec(_Frozen):
    """One workflow file: a composite tool made of a DAG of downstream tool calls."""

    version: Literal[1] = Field(description="Format version; 1.")
    name: str = Field(pattern=NAME_PATTERN, description="Composite tool name, ^[a-z][a-z0-9_]{0,63}$.")
    description: str = Field(min_length=1, description="Tool description shown to models and users.")
    input: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema (type object) of the arguments: the tool's inputSchema. Defaults are applied.",
    )
    defaults: DefaultsSpec = Field(default_factory=DefaultsSpec, description="Defaults for every step.")
    limits: LimitsSpec = Field(default_factory=LimitsSpec, description="Bounds of a run.")
    steps: dict[StepId, StepSpec] = Field(min_length=1, description="Steps by id; they form a DAG through needs.")
    output: OutputSpec = Field(default_factory=OutputSpec, description="The returned value and its schema.")
    annotations: AnnotationsSpec | None = Field(
        default=None, description="MCP annotations; only more conservative than the derived ones."
    )
    approve_destructive: bool = Field(
        default=False,
        description=(
            "Ask the user before every step whose tool may be destructive (destructiveHint not false and "
            "readOnlyHint not true, as MCP's defaults say), unless the step has its own approve."
        ),
    )
    source: SkipJsonSchema[SourceInfo | None] = Field(
        default=None, exclude=True, description="Set by the loader: the file and its line numbers."
    )
