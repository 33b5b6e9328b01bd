"""Span helpers for library code: workflow, step and retry spans, MCP attributes, redaction.

Owns the span *model* of the orchestrator (names, attribute keys, error marking), the
context variable that tells the SDK-side enrichment which downstream server a call goes
to, and the redaction of recorded payloads. It uses the OpenTelemetry **API** only: with
no SDK configured every helper is a no-op that costs a context-variable lookup.

It deliberately does not configure anything (exporters, providers, samplers: that is
``orchestrator.telemetry``, called by the CLI) and does not create spans for MCP
requests: the MCP SDK already makes ``MCP send …`` CLIENT and ``tools/call …`` SERVER
spans and carries ``traceparent`` in ``params._meta``.

Span tree of a composite tool call::

    tools/call incident_report           SERVER   (SDK; parent from the caller's _meta)
    └ invoke_workflow incident_report     INTERNAL workflow_span()
      ├ step metrics                      INTERNAL step_span(); event "retry" per retry
      │ └ MCP send tools/call query       CLIENT   (SDK, one per attempt) → downstream SERVER span
      └ step details                      INTERNAL step_span(for_each_count=n)
        └ step details[0]                 INTERNAL item_span()
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Generator, Iterable, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal, Protocol, cast
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from orchestrator._masking import MASK, SecretMasker
from orchestrator._version import NAME

if TYPE_CHECKING:
    from opentelemetry.util.types import AttributeValue

__all__ = [
    "ATTR_CATALOGUE_VERSION",
    "ATTR_ERROR_TYPE",
    "ATTR_FOREACH_COUNT",
    "ATTR_ITEM_INDEX",
    "ATTR_PASS_THROUGH",
    "ATTR_RUN_ID",
    "ATTR_RUN_STATUS",
    "ATTR_SERVER_KEY",
    "ATTR_STEP_ATTEMPTS",
    "ATTR_STEP_ID",
    "ATTR_STEP_STATUS",
    "ATTR_STEP_TOOL",
    "ATTR_TOOL_CALL_ARGUMENTS",
    "ATTR_TOOL_CALL_RESULT",
    "ATTR_WORKFLOW_INPUT_SIZE",
    "INSTRUMENTATION_SCOPE",
    "MASK",
    "DownstreamCall",
    "DownstreamTransport",
    "Redactor",
    "copy_trace_context_to_headers",
    "current_downstream_call",
    "current_trace_id",
    "downstream_call_attributes",
    "finish_step",
    "finish_workflow",
    "http_address",
    "item_span",
    "mark_error",
    "record_payload",
    "record_retry",
    "step_span",
    "trace_headers_from_jsonrpc",
    "trace_meta",
    "tracer",
    "untraced",
    "workflow_span",
]

INSTRUMENTATION_SCOPE: Final = NAME
tracer: Final = trace.get_tracer(INSTRUMENTATION_SCOPE)

_NS = "mcp_orchestrator"
ATTR_RUN_ID: Final = f"{_NS}.run.id"
ATTR_RUN_STATUS: Final = f"{_NS}.run.status"
ATTR_WORKFLOW_INPUT_SIZE: Final = f"{_NS}.workflow.input.size"
ATTR_STEP_ID: Final = f"{_NS}.step.id"
ATTR_STEP_TOOL: Final = f"{_NS}.step.tool"
ATTR_STEP_STATUS: Final = f"{_NS}.step.status"
ATTR_STEP_ATTEMPTS: Final = f"{_NS}.step.attempts"
ATTR_FOREACH_COUNT: Final = f"{_NS}.step.for_each.count"
ATTR_ITEM_INDEX: Final = f"{_NS}.step.for_each.index"
ATTR_SERVER_KEY: Final = f"{_NS}.server.key"
ATTR_CATALOGUE_VERSION: Final = f"{_NS}.catalogue.version"
ATTR_PASS_THROUGH: Final = f"{_NS}.call.pass_through"
"""On a ``tools/call`` server span: ``true`` when the result was forwarded as the downstream sent it."""
ATTR_ERROR_TYPE: Final = "error.type"
ATTR_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
ATTR_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"

_RETRY_EVENT = "retry"
_ERROR_STATUSES = frozenset({"failed", "unknown_outcome"})

# ------------------------------------------------------------------ span model


@contextmanager
def _internal_span(name: str, attributes: Mapping[str, AttributeValue]) -> Generator[Span]:
    # The SDK would mark a span ERROR for any exception, including the cancellation of a
    # step whose sibling failed; we mark only real failures (CancelledError is a
    # BaseException and passes untouched) and leave outcome marking to finish_*().
    with tracer.start_as_current_span(
        name, kind=SpanKind.INTERNAL, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield span
        except Exception as exc:  # annotate and re-raise, never swallow
            span.record_exception(exc)
            if span.is_recording() and not _has_error_status(span):
                mark_error(span, type(exc).__qualname__, str(exc) or None)
            raise


def _has_error_status(span: Span) -> bool:
    status = getattr(span, "status", None)
    return isinstance(status, Status) and status.status_code is StatusCode.ERROR


@contextmanager
def workflow_span(
    name: str, run_id: str, input_size: int | None = None, catalogue_version: str | None = None
) -> Generator[Span]:
    """Open the ``invoke_workflow {name}`` span of one composite run and make it current.

    Args:
        name: The composite tool (workflow) name.
        run_id: The run id, also returned to the caller in the result's ``_meta``.
        input_size: Size of the input in bytes (its JSON encoding), when known.
        catalogue_version: The version of the catalogue the run's tools come from, when known.
    """
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": name,
        ATTR_RUN_ID: run_id,
    }
    if input_size is not None:
        attributes[ATTR_WORKFLOW_INPUT_SIZE] = input_size
    if catalogue_version is not None:
        attributes[ATTR_CATALOGUE_VERSION] = catalogue_version
    with _internal_span(f"invoke_workflow {name}", attributes) as span:
        yield span


@contextmanager
def step_span(step_id: str, tool: str, *, for_each_count: int | None = None) -> Generator[Span]:
    """Open the ``step {step_id}`` span and make it current.

    The SDK's ``MCP send tools/call …`` CLIENT spans of the step's attempts become its
    children. For a ``for_each`` step, open one ``item_span`` per item inside this span.

    Args:
        step_id: The step's id in the workflow file.
        tool: The step's tool as written, ``<server key>.<original tool name>``.
        for_each_count: Number of items a ``for_each`` step fans out to.
    """
    attributes: dict[str, AttributeValue] = {ATTR_STEP_ID: step_id, ATTR_STEP_TOOL: tool}
    if for_each_count is not None:
        attributes[ATTR_FOREACH_COUNT] = for_each_count
    with _internal_span(f"step {step_id}", attributes) as span:
        yield span


@contextmanager
def item_span(step_id: str, index: int) -> Generator[Span]:
    """Open the ``step {step_id}[{index}]`` span of one ``for_each`` item and make it current."""
    attributes: dict[str, AttributeValue] = {ATTR_STEP_ID: step_id, ATTR_ITEM_INDEX: index}
    with _internal_span(f"step {step_id}[{index}]", attributes) as span:
        yield span


def mark_error(span: Span, error_type: str, message: str | None = None) -> None:
    """Set ``error.type`` and status ERROR on ``span`` (semconv: status is ERROR whenever error.type is set).

    Args:
        span: The span to mark; a non-recording span is left alone.
        error_type: A low-cardinality class: ``tool_error``, ``timeout``, ``transport_error``,
            a JSON-RPC code as a string, or an exception's qualified name.
        message: Human-readable description; must not carry secrets.
    """
    if not span.is_recording():
        return
    span.set_attribute(ATTR_ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, message))


def record_retry(span: Span, attempt: int, delay: float, error_class: str) -> None:
    """Add a ``retry`` event: attempt number ``attempt`` failed with ``error_class``; next try after ``delay`` s."""
    if not span.is_recording():
        return
    span.add_event(
        _RETRY_EVENT,
        {f"{_NS}.retry.attempt": attempt, f"{_NS}.retry.delay_s": round(delay, 6), ATTR_ERROR_TYPE: error_class},
    )


def finish_step(
    span: Span,
    status: Literal["succeeded", "failed", "skipped", "cancelled", "unknown_outcome"],
    attempts: int,
    *,
    error_type: str | None = None,
    message: str | None = None,
) -> None:
    """Record a step's (or item's) outcome; ``failed`` and ``unknown_outcome`` also mark it ERROR.

    A ``tool_error`` (a result with ``isError: true``) is set here, on the step span: the
    SDK's CLIENT span has ended by the time the result is inspected and stays UNSET.
    """
    if not span.is_recording():
        return
    span.set_attributes({ATTR_STEP_STATUS: status, ATTR_STEP_ATTEMPTS: attempts})
    if status in _ERROR_STATUSES:
        mark_error(span, error_type or status, message)


def finish_workflow(
    span: Span,
    status: Literal["succeeded", "failed", "cancelled"],
    *,
    failed_step: str | None = None,
    error_type: str | None = None,
    message: str | None = None,
) -> None:
    """Record a run's outcome; ``failed`` marks the ``invoke_workflow`` span ERROR."""
    if not span.is_recording():
        return
    span.set_attribute(ATTR_RUN_STATUS, status)
    if failed_step is not None:
        span.set_attribute(f"{_NS}.run.failed_step", failed_step)
    if status == "failed":
        mark_error(span, error_type or "step_failed", message)


def current_trace_id() -> str | None:
    """The current trace id as 32 lowercase hex digits, or None when no recording span is current."""
    span = trace.get_current_span()
    if not span.is_recording():
        return None
    return trace.format_trace_id(span.get_span_context().trace_id)


@contextmanager
def untraced() -> Generator[None]:
    """Run housekeeping (health probes) under an unsampled parent, so its spans are not recorded.

    With the default parent-based sampler, every span started inside inherits the "not
    sampled" decision, and so does a downstream server that receives the ``traceparent``.
    """
    context = SpanContext(
        trace_id=random.getrandbits(128) or 1,
        span_id=random.getrandbits(64) or 1,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.DEFAULT),
    )
    with trace.use_span(NonRecordingSpan(context), end_on_exit=False):
        yield


def trace_meta() -> dict[str, str]:
    """The current context as ``_meta`` keys (``traceparent``, ``tracestate``, ``baggage``).

    The SDK injects these into every request it sends but not into notifications; merge
    this into the ``_meta`` of notifications the orchestrator sends itself.
    """
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


# ------------------------------------------------------- downstream attributes

DownstreamTransport = Literal["stdio", "http", "sse"]


@dataclass(frozen=True, slots=True)
class DownstreamCall:
    """Who a downstream call goes to: the MCP semconv attributes the SDK's CLIENT span lacks."""

    server_key: str
    transport: DownstreamTransport
    address: str | None = None
    port: int | None = None
    protocol_version: str | None = None
    session_id: str | None = None

    def span_attributes(self) -> dict[str, AttributeValue]:
        """The attributes for a CLIENT span of a call to this server."""
        attributes: dict[str, AttributeValue] = {
            ATTR_SERVER_KEY: self.server_key,
            # semconv: "pipe" for stdio, "tcp" for HTTP-based transports.
            "network.transport": "pipe" if self.transport == "stdio" else "tcp",
        }
        if self.transport != "stdio":
            attributes["network.protocol.name"] = "http"
        if self.address is not None:
            attributes["server.address"] = self.address
        if self.port is not None:
            attributes["server.port"] = self.port
        if self.protocol_version is not None:
            attributes["mcp.protocol.version"] = self.protocol_version
        if self.session_id is not None:
            attributes["mcp.session.id"] = self.session_id
        return attributes


_downstream_call: ContextVar[DownstreamCall | None] = ContextVar("orchestrator_downstream_call", default=None)


@contextmanager
def downstream_call_attributes(
    server_key: str,
    transport: DownstreamTransport,
    *,
    address: str | None = None,
    port: int | None = None,
    protocol_version: str | None = None,
    session_id: str | None = None,
) -> Generator[DownstreamCall]:
    """Describe the downstream server for the SDK spans started inside this block.

    Wrap each call into a downstream ``Client`` (``call_tool``, ``get_prompt``,
    ``read_resource``). The SDK-side ``McpAttributesProcessor`` copies these onto every
    ``mcp-python-sdk`` CLIENT span that starts in this context.
    """
    call = DownstreamCall(server_key, transport, address, port, protocol_version, session_id)
    token = _downstream_call.set(call)
    try:
        yield call
    finally:
        _downstream_call.reset(token)


def current_downstream_call() -> DownstreamCall | None:
    """The ``DownstreamCall`` set by the innermost ``downstream_call_attributes`` block, if any."""
    return _downstream_call.get()


def http_address(url: str) -> tuple[str | None, int | None]:
    """``(server.address, server.port)`` of an HTTP URL; the port defaults by scheme."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.hostname, port


# ---------------------------------------------------- trace context in headers

_TRACE_KEYS = ("traceparent", "tracestate", "baggage")


def trace_headers_from_jsonrpc(body: bytes) -> dict[str, str]:
    """The ``traceparent``/``tracestate``/``baggage`` of a JSON-RPC message's ``params._meta``.

    For a batch, the first message that carries a ``traceparent`` wins. Anything that is
    not JSON, or has no such keys, gives an empty dict.
    """
    try:
        decoded: object = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    messages = cast("list[object]", decoded) if isinstance(decoded, list) else [decoded]
    for message in messages:
        meta = _meta_of(message)
        if isinstance(meta.get("traceparent"), str):
            return {key: value for key in _TRACE_KEYS if isinstance(value := meta.get(key), str)}
    return {}


def _meta_of(message: object) -> Mapping[str, object]:
    if not isinstance(message, dict):
        return {}
    params = cast("dict[str, object]", message).get("params")
    if not isinstance(params, dict):
        return {}
    meta = cast("dict[str, object]", params).get("_meta")
    return cast("dict[str, object]", meta) if isinstance(meta, dict) else {}


class _HttpRequest(Protocol):
    @property
    def content(self) -> bytes: ...

    @property
    def headers(self) -> MutableMapping[str, str]: ...


async def copy_trace_context_to_headers(request: _HttpRequest) -> None:
    """An httpx ``request`` event hook: mirror the body's ``_meta`` trace context into HTTP headers.

    The streamable-HTTP transport POSTs from its own task, where the caller's span is not
    current, so the headers are taken from the message the SDK already stamped; both
    carriers then always agree (as SEP-2028 proposes). Streamed bodies are left alone.
    """
    try:
        body = request.content
    except RuntimeError:  # httpx's RequestNotRead: a streamed body we must not consume
        return
    for key, value in trace_headers_from_jsonrpc(body).items():
        request.headers[key] = value


# ------------------------------------------------------------------ redaction

_SENSITIVE_KEY = re.compile(
    r"pass(word|wd|phrase)|secret|token|api[_-]?key|authori[sz]ation|^auth$|cookie|credential|"
    r"private[_-]?key|access[_-]?key|session[_-]?(id|key)|signature",
    re.IGNORECASE,
)
_TOKEN_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Credentials in URLs: scheme://user:password@host
    (re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+@"), f"{MASK}@"),
    # Authorization header values: keep the scheme, mask the credential.
    (re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{6,}"), rf"\1\2{MASK}"),
    # key=value / key: value pairs in free text.
    (
        re.compile(
            r"(?i)\b(password|passwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret)"
            r"(\"?\s*[=:]\s*\"?)[^\s&,;\"']+"
        ),
        rf"\1\2{MASK}",
    ),
    # JSON Web Tokens.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK),
    # Vendor tokens with well-known prefixes.
    (
        re.compile(
            r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_\w{20,}|"
            r"\bxox[abprs]-[A-Za-z0-9-]{10,}|\bAKIA[0-9A-Z]{16}\b|\bglpat-[A-Za-z0-9_-]{20,}|\bAIza[0-9A-Za-z_-]{35}"
        ),
        MASK,
    ),
    # Long hex strings (API keys, session ids).
    (re.compile(r"\b[0-9a-fA-F]{32,}\b"), MASK),
)
# Base64-ish runs: masked only when they mix upper case, lower case and digits, so long
# words and identifiers survive.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{32,}={0,2}")


def _looks_random(run: str) -> bool:
    return any(c.isupper() for c in run) and any(c.islower() for c in run) and any(c.isdigit() for c in run)


@dataclass(frozen=True, slots=True)
class Redactor:
    """Masks secrets in values recorded on spans and caps their size.

    What is replaced by ``MASK`` (the one mask, ``orchestrator._masking``): every configured
    secret value (env values, header values) wherever it occurs, longest first; values of keys
    that name secrets (``password``, ``token``, ``api_key``, ``authorization``, ``cookie``, …)
    unless they are numbers, booleans or null; and token-like strings (``Bearer …``, JWTs,
    vendor-prefixed keys, long hex or base64 runs, URL credentials). Sizes: strings,
    containers and nesting depth are capped first, then the JSON text as a whole.

    Attributes:
        secrets: Exact values to mask; shorter than 4 characters are ignored (too common
            to mask without destroying the text, too short to be a credential).
        max_chars: Cap of the JSON text ``attribute()`` returns.
        max_string_chars: Cap of each string inside the value.
        max_items: Cap of each list's items and each object's keys.
        max_depth: Nesting depth past which values are replaced by a marker.
    """

    secrets: tuple[str, ...] = ()
    max_chars: int = 8192
    max_string_chars: int = 1024
    max_items: int = 100
    max_depth: int = 16
    _masker: SecretMasker = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_masker", SecretMasker(self.secrets))

    @classmethod
    def from_secrets(cls, *groups: Iterable[str]) -> Redactor:
        """A redactor masking every value of the given groups (e.g. env values, header values)."""
        return cls(secrets=tuple(value for group in groups for value in group))

    def text(self, value: str) -> str:
        """``value`` with secrets and token-like substrings masked (not size-capped)."""
        value = self._masker.mask(value)
        for pattern, replacement in _TOKEN_PATTERNS:
            value = pattern.sub(replacement, value)
        return _BASE64_RUN.sub(lambda m: MASK if _looks_random(m.group(0)) else m.group(0), value)

    def redact(self, value: object) -> object:
        """A JSON-compatible copy of ``value`` with secrets masked and sizes capped."""
        return self._redact(value, 0)

    def attribute(self, value: object) -> str:
        """``value`` redacted and encoded as JSON text of at most ``max_chars`` characters (plus a marker)."""
        encoded = json.dumps(self.redact(value), ensure_ascii=False, separators=(",", ":"))
        return _cap(encoded, self.max_chars)

    def _redact(self, value: object, depth: int) -> object:
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, str):
            return _cap(self.text(value), self.max_string_chars)
        if isinstance(value, bytes | bytearray):
            return f"[{len(value)} bytes]"
        if depth >= self.max_depth:
            return "[…]"
        if isinstance(value, Mapping):
            return self._redact_mapping(cast("Mapping[object, object]", value), depth)
        if isinstance(value, list | tuple | set | frozenset):
            items = list(cast("Iterable[object]", value))
            out = [self._redact(item, depth + 1) for item in items[: self.max_items]]
            if len(items) > self.max_items:
                out.append(f"…[+{len(items) - self.max_items} items]")
            return out
        return _cap(self.text(str(value)), self.max_string_chars)

    def _redact_mapping(self, value: Mapping[object, object], depth: int) -> dict[str, object]:
        out: dict[str, object] = {}
        for count, (key, item) in enumerate(value.items()):
            if count >= self.max_items:
                out["…"] = f"[+{len(value) - self.max_items} keys]"
                break
            name = self.text(str(key))
            sensitive = _SENSITIVE_KEY.search(name) is not None
            if sensitive and not (item is None or isinstance(item, bool | int | float)):
                out[name] = MASK
            else:
                out[name] = self._redact(item, depth + 1)
        return out


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[+{len(text) - limit} chars]"


def record_payload(span: Span, key: str, value: object, redactor: Redactor) -> None:
    """Set ``key`` (e.g. ``ATTR_TOOL_CALL_ARGUMENTS``) to ``value`` redacted, as JSON text.

    Call only when ``tracing.record_payloads`` is on; it is off by default.
    """
    if span.is_recording():
        span.set_attribute(key, redactor.attribute(value))
