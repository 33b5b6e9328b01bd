"""The exception tree of mcp-orchestrator.

Every error the orchestrator raises on purpose derives from ``OrchestratorError``::

    OrchestratorError
    ├── ConfigError                      a config file is invalid (.path, .problems)
    │   └── ConfigNotFoundError          no config file where one was looked for (.tried, .named)
    ├── UsageError                       a command-line argument is invalid (.option)
    ├── StoreError                       the state database cannot be opened or migrated (.url)
    │   └── RunLeaseLost                 a run is over, or another process holds it now (.run_id, .holder)
    ├── SecretKeyError                   the key that encrypts stored secrets cannot be used (.location)
    ├── CatalogError
    │   └── UnknownToolError             an exposed name routes nowhere (.kind, .name, .suggestions)
    ├── InvalidArgumentsError            a tool call's arguments do not fit its inputSchema (.tool, .problems)
    ├── InputRoundExpired                a retried call's requestState names no waiting call
    ├── RateLimitedError                 a call was refused by a rate limit (.tool, .retry_after)
    ├── RateLimitsUnavailable            shared rate limits cannot be checked: Redis is unreachable (.url)
    ├── InternalError                    an unexpected exception reached a boundary: a bug
    ├── DownstreamError                  .server names the downstream server
    │   ├── DownstreamUnavailable        not connected, died mid-call, transport fault (retryable)
    │   │   ├── DownstreamNotConnected   not connected when the call was made (nothing was sent)
    │   │   │   └── DownstreamLoginRequired  needs `orchestrator login KEY` first (not retryable)
    │   │   └── DownstreamCircuitOpen    its circuit breaker is open: failing fast (nothing was sent)
    │   ├── DownstreamTimeout            the call ran past its timeout (retryable)
    │   ├── StepNotGranted               a run's step calls a tool its principal is no longer granted
    │   ├── DefinitionWithheld           a tool is held back: changed since pinned, new, or quarantined (.tool)
    │   ├── DownstreamToolError          the server answered with a JSON-RPC error (.code; not retryable)
    │   └── DownstreamOutputInvalid      a tool's result breaks its own outputSchema (.tool, .field)
    └── WorkflowError
        ├── WorkflowDefinitionError      a workflow file is invalid (names file, step, field)
        ├── ExpressionError              an expression is invalid or failed (orchestrator.workflow)
        ├── WorkflowUnavailable          a composite is withdrawn: its tools do not fit (.reasons)
        ├── WorkflowExecutionError       a run failed (.run_id, .step_id, .server)
        ├── RunNotResumable              a journalled run cannot be resumed as asked (.run_id, .status)
        ├── RunAlreadyOver               a journalled run cannot be cancelled: it is over (.run_id, .status)
        ├── RecordingError               a recording is unreadable, or has no answer to a replayed call
        └── AttemptFailure               one attempt of a step failed (orchestrator.workflow; a
                                         run turns the last one into WorkflowExecutionError)

``ExpressionError`` and ``AttemptFailure`` belong to the workflow package, which raises and
catches them; the others live here. Callers decide by type and attributes, never by parsing
a message. Lower-level exceptions are mapped once, at the downstream boundary; these errors
become MCP wire errors in exactly one place (``orchestrator.server._errors``). Messages never
carry secrets: callers put server names, tool names and keys in them, never values.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "CatalogError",
    "ConfigError",
    "ConfigNotFoundError",
    "DefinitionWithheld",
    "DownstreamCircuitOpen",
    "DownstreamError",
    "DownstreamLoginRequired",
    "DownstreamNotConnected",
    "DownstreamOutputInvalid",
    "DownstreamTimeout",
    "DownstreamToolError",
    "DownstreamUnavailable",
    "InputRoundExpired",
    "InternalError",
    "InvalidArgumentsError",
    "OrchestratorError",
    "RateLimitedError",
    "RateLimitsUnavailable",
    "RecordingError",
    "RunAlreadyOver",
    "RunLeaseLost",
    "RunNotResumable",
    "SecretKeyError",
    "StepNotGranted",
    "StoreError",
    "UnknownToolError",
    "UsageError",
    "WorkflowDefinitionError",
    "WorkflowError",
    "WorkflowExecutionError",
    "WorkflowUnavailable",
]


class OrchestratorError(Exception):
    """Base class of every error mcp-orchestrator raises on purpose."""


class ConfigError(OrchestratorError):
    """A configuration file is missing or invalid.

    The message names the file and every offending key; it never quotes a secret value.
    """

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: invalid configuration\n{lines}" if problems else f"{path}: invalid configuration")


class ConfigNotFoundError(ConfigError):
    """No configuration file exists where one was looked for.

    Attributes:
        tried: The paths looked at, in order: the named file, or every default name.
        named: Whether the file was named (``--config``, ``$ORCHESTRATOR_CONFIG``) rather than
            searched for under the default names.
    """

    def __init__(self, path: str, problem: str, *, tried: Sequence[str], named: bool) -> None:
        self.tried = tuple(tried)
        self.named = named
        super().__init__(path, [problem])


class UsageError(OrchestratorError):
    """A command-line argument is invalid: bad JSON in an option, an unknown workflow name...

    The config may be fine; the message names the option (when there is one) and what would fit.

    Attributes:
        option: The option or argument at fault (``--args``, ``WORKFLOW``), or ``None``.
    """

    def __init__(self, message: str, option: str | None = None) -> None:
        self.option = option
        super().__init__(f"{option}: {message}" if option else message)


class StoreError(OrchestratorError):
    """The state database cannot be opened, reached or migrated.

    Attributes:
        url: The database URL, its password hidden.
    """

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        self.detail = message
        """What went wrong, without the URL: what a remote client is told."""
        super().__init__(f"{url}: {message}")


class RunLeaseLost(StoreError):
    """A run in the journal is over, or another process holds it now (its lease ran out and was claimed).

    The process that gets this must stop running the run: whatever it would write next could
    undo the new owner's work. Nothing was written.

    Attributes:
        run_id: The run.
        holder: Who holds it now (``None`` when no one does).
        status: Its status now.
    """

    def __init__(self, url: str, run_id: str, holder: str | None, status: str) -> None:
        self.run_id = run_id
        self.holder = holder
        self.status = status
        held = f"held by {holder!r}" if holder is not None else "held by no one"
        super().__init__(url, f"run {run_id!r} is no longer this process's to run: it is {status}, {held}")


class SecretKeyError(OrchestratorError):
    """The key that encrypts secrets at rest (downstream OAuth tokens) cannot be used.

    Attributes:
        location: Where the key is: a key file's path, or the OS keyring entry.
    """

    def __init__(self, location: str, message: str) -> None:
        self.location = location
        super().__init__(f"{location}: {message}")


class CatalogError(OrchestratorError):
    """The merged catalogue cannot satisfy a request."""


class UnknownToolError(CatalogError):
    """An exposed name does not route to any downstream tool, prompt or resource.

    Attributes:
        kind: ``tool``, ``prompt``, ``resource``, ``resource template`` or ``server``.
        name: The name (or URI) asked for.
        suggestions: Close names that do exist, best first (may be empty).
    """

    def __init__(self, kind: str, name: str, suggestions: Sequence[str] = ()) -> None:
        self.kind = kind
        self.name = name
        self.suggestions = tuple(suggestions)
        hint = ""
        if self.suggestions:
            hint = "; did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        super().__init__(f"unknown {kind} {name!r}{hint}")


class InvalidArgumentsError(OrchestratorError):
    """A tool call's arguments do not fit the tool's ``inputSchema``; nothing was called.

    Attributes:
        tool: The exposed name of the tool (or composite) called.
        problems: What is wrong, each as ``field.path: message``.
    """

    def __init__(self, tool: str, problems: Sequence[str]) -> None:
        self.tool = tool
        self.problems = tuple(problems)
        lines = "".join(f"\n- {problem}" for problem in self.problems)
        super().__init__(f"invalid arguments for tool {tool!r}:{lines}")


class InputRoundExpired(OrchestratorError):
    """A retried call's ``requestState`` names no waiting call: it expired, was used, or never existed."""

    def __init__(self) -> None:
        super().__init__("this call's input round expired or is unknown; call the tool again")


class RateLimitedError(OrchestratorError):
    """A call was refused by a rate limit of its caller; nothing was called.

    Attributes:
        tool: The exposed name of the tool (or composite) called.
        retry_after: Seconds until the same call would be admitted.
    """

    def __init__(self, tool: str, retry_after: float) -> None:
        self.tool = tool
        self.retry_after = retry_after
        # Rounded up: a caller that waits exactly what it is told must get through.
        shown = max(math.ceil(retry_after * 10) / 10, 0.1)
        super().__init__(f"rate limit reached for tool {tool!r}: retry in {shown:g} s")


class RateLimitsUnavailable(OrchestratorError):
    """The rate limits' buckets are kept in Redis (``state.redis_url``), and Redis cannot be used.

    A limited call is refused with it rather than let through unlimited; serving does not
    start with it either.

    Attributes:
        url: Where Redis is, its password hidden: for the log, not for a remote client.
        detail: What went wrong, without the URL: what a remote client is told.
    """

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        self.detail = message
        super().__init__(f"{url}: {message}")


class InternalError(OrchestratorError):
    """An unexpected exception reached a top-level boundary: a bug, logged there with its traceback.

    The message names only the exception's type, since its text may hold anything.

    Attributes:
        exception_type: The class name of the unexpected exception.
    """

    def __init__(self, exception_type: str) -> None:
        self.exception_type = exception_type
        super().__init__(f"internal error: {exception_type}")


class DownstreamError(OrchestratorError):
    """A downstream server could not serve a request.

    Attributes:
        server: The configured key of the downstream server.
        detail: What went wrong, without the server's name.
    """

    retryable: bool = False

    def __init__(self, server: str, message: str) -> None:
        self.server = server
        self.detail = message
        super().__init__(f"server {server!r}: {message}")


class DownstreamUnavailable(DownstreamError):
    """The server is not connected, died mid-call, or its transport failed."""

    retryable = True


class DownstreamNotConnected(DownstreamUnavailable):
    """The server was not connected when the request was made, so nothing was sent."""


class DownstreamLoginRequired(DownstreamNotConnected):
    """The server needs an OAuth login its stored tokens cannot give (none, or refresh refused).

    Only ``orchestrator login KEY`` fixes that, so a retry is pointless. The message says
    which case it is and what to run; it never holds a token.
    """

    retryable = False


class DownstreamCircuitOpen(DownstreamUnavailable):
    """The server's circuit breaker is open: the request failed fast, nothing was sent.

    Attributes:
        retry_in: Seconds until the breaker lets a trial call through.
    """

    def __init__(self, server: str, message: str, retry_in: float) -> None:
        self.retry_in = retry_in
        super().__init__(server, message)


class DownstreamTimeout(DownstreamError):
    """A call ran past its timeout; the downstream was sent a cancellation."""

    retryable = True

    def __init__(self, server: str, message: str, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(server, message)


class StepNotGranted(DownstreamError):
    """A workflow step's tool is not granted to the principal running the workflow.

    The composite was granted when the run started; the grant changed while it ran. Never
    retried: asking again does not change a grant.
    """


class DefinitionWithheld(DownstreamError):
    """A tool's definition is held back, so it is neither listed nor called.

    It differs from its pin, is new since the server was pinned, or failed a definition
    check; the message says which and how to release it (``orchestrator pins approve``).
    Never retried: the same call is refused until someone decides.

    Attributes:
        tool: The tool's name on the server.
    """

    def __init__(self, server: str, message: str, *, tool: str) -> None:
        self.tool = tool
        super().__init__(server, message)


class DownstreamToolError(DownstreamError):
    """The server answered the request with a JSON-RPC error.

    On the wire, a downstream tool's own ``isError`` result is reported under this type too
    (``orchestrator.server._errors``): either way the server answered, and refused.

    Attributes:
        code: The JSON-RPC error code the server sent.
    """

    def __init__(self, server: str, message: str, code: int) -> None:
        self.code = code
        super().__init__(server, message)


class DownstreamOutputInvalid(DownstreamError):
    """A tool's result does not fit the ``outputSchema`` the server declared for it.

    The server answered, but with structured content that breaks (or lacks) what the tool
    promises, so the result is not passed on. Never retried: the same call gets the same answer.

    Attributes:
        tool: The tool's name on the server.
        field: Where in the structured content the first mismatch is (``items[0].id``; empty
            for the content as a whole), or ``None`` when no field is at fault (no structured
            content, or an outputSchema that is itself invalid).
    """

    def __init__(self, server: str, message: str, *, tool: str, field: str | None) -> None:
        self.tool = tool
        self.field = field
        super().__init__(server, message)


class WorkflowError(OrchestratorError):
    """A workflow could not be loaded or run."""


class RecordingError(WorkflowError):
    """A recording of a run cannot be read, or holds no answer to a call a replay made."""


class WorkflowDefinitionError(WorkflowError):
    """A workflow file is invalid.

    Attributes:
        path: The file (the first one, when the problems of several are gathered).
        problems: Every problem, each as ``path:line: step.field: message``.
    """

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(problems) if problems else f"{path}: invalid workflow")


class WorkflowUnavailable(WorkflowError):
    """A composite tool is withdrawn: the servers or tools it calls are missing or no longer fit.

    Attributes:
        workflow: The composite's name.
        reasons: Why it is withdrawn, one problem each.
    """

    def __init__(self, workflow: str, reasons: Sequence[str]) -> None:
        self.workflow = workflow
        self.reasons = tuple(reasons)
        lines = "".join(f"\n- {reason}" for reason in self.reasons)
        super().__init__(f"composite tool {workflow!r} is unavailable until its servers fit again:{lines}")


class WorkflowExecutionError(WorkflowError):
    """A workflow run failed at a step.

    Attributes:
        run_id: The run.
        step_id: The failed step, or ``(input)``, ``(output)``, ``(run)`` for a failure of the
            run as a whole (``orchestrator.workflow.INPUT_STEP`` and its siblings).
        server: The downstream server whose call failed the step, or ``None`` when the failure
            is not a server's (an expression, a limit, the run's own timeout).
    """

    def __init__(self, run_id: str, step_id: str, message: str, *, server: str | None = None) -> None:
        self.run_id = run_id
        self.step_id = step_id
        self.server = server
        super().__init__(f"run {run_id}: step {step_id!r} failed: {message}")


class RunNotResumable(WorkflowError):
    """A run in the journal cannot be resumed: it is running or succeeded, or needs a decision first.

    Attributes:
        run_id: The run.
        status: Its status.
        reason: Why not, worded for the person who asked.
    """

    def __init__(self, run_id: str, status: str, reason: str) -> None:
        self.run_id = run_id
        self.status = status
        self.reason = reason
        super().__init__(f"run {run_id} cannot be resumed: {reason}")


class RunAlreadyOver(WorkflowError):
    """A run in the journal cannot be cancelled: it is over already.

    Attributes:
        run_id: The run.
        status: Its final status.
    """

    def __init__(self, run_id: str, status: str) -> None:
        self.run_id = run_id
        self.status = status
        super().__init__(f"run {run_id} is {status} already: only a running run can be cancelled")
