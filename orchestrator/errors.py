"""The exception tree of mcp-orchestrator.

Every error the orchestrator raises on purpose derives from ``OrchestratorError``::

    OrchestratorError
    ├── ConfigError                      a config file is invalid (names the file and key)
    ├── UsageError                       a command-line argument is invalid (names the option)
    ├── InvalidArgumentsError            a tool's arguments do not match its schema (lists problems)
    ├── CatalogError
    │   ├── NameCollisionError           two exposed names could not be made distinct
    │   └── UnknownToolError             an exposed name routes nowhere
    ├── DownstreamError                  .server names the downstream server
    │   ├── DownstreamUnavailable        not connected, died mid-call, transport fault (retryable)
    │   │   ├── DownstreamNotConnected   not connected when the call was made (nothing was sent)
    │   │   └── DownstreamCircuitOpen    its circuit breaker is open: failing fast (nothing was sent)
    │   ├── DownstreamTimeout            the call ran past its timeout (retryable)
    │   └── DownstreamToolError          the server answered with a JSON-RPC error (not retryable)
    └── WorkflowError
        ├── WorkflowDefinitionError      a workflow file is invalid (names file, step, field)
        └── WorkflowExecutionError       a run failed (names run and step)

Lower-level exceptions are mapped once, at the downstream boundary; these errors become
MCP wire errors in exactly one place (``orchestrator.server._errors``). Messages never carry
secrets: callers put server names, tool names and keys in them, never values.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CatalogError",
    "ConfigError",
    "DownstreamCircuitOpen",
    "DownstreamError",
    "DownstreamNotConnected",
    "DownstreamTimeout",
    "DownstreamToolError",
    "DownstreamUnavailable",
    "InvalidArgumentsError",
    "NameCollisionError",
    "OrchestratorError",
    "UnknownToolError",
    "UsageError",
    "WorkflowDefinitionError",
    "WorkflowError",
    "WorkflowExecutionError",
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


class UsageError(OrchestratorError):
    """A command-line argument is invalid: bad JSON in an option, an unknown workflow name...

    The config may be fine; the message names the option (when there is one) and what would fit.

    Attributes:
        option: The option or argument at fault (``--args``, ``WORKFLOW``), or ``None``.
    """

    def __init__(self, message: str, option: str | None = None) -> None:
        self.option = option
        super().__init__(f"{option}: {message}" if option else message)


class InvalidArgumentsError(OrchestratorError):
    """A tool's or workflow's arguments do not match its input schema.

    Attributes:
        tool: The tool or workflow called.
        problems: One line per problem, each naming the argument (``count: must be an integer``).
    """

    def __init__(self, tool: str, problems: Sequence[str]) -> None:
        self.tool = tool
        self.problems = tuple(problems)
        super().__init__(f"invalid arguments for tool {tool!r}:\n" + "\n".join(f"- {p}" for p in self.problems))


class CatalogError(OrchestratorError):
    """The merged catalogue cannot satisfy a request."""


class NameCollisionError(CatalogError):
    """Two entries map to the same exposed name and no rule resolves it."""


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


class DownstreamError(OrchestratorError):
    """A downstream server could not serve a request.

    Attributes:
        server: The configured key of the downstream server.
    """

    retryable: bool = False

    def __init__(self, server: str, message: str) -> None:
        self.server = server
        super().__init__(f"server {server!r}: {message}")


class DownstreamUnavailable(DownstreamError):
    """The server is not connected, died mid-call, or its transport failed."""

    retryable = True


class DownstreamNotConnected(DownstreamUnavailable):
    """The server was not connected when the request was made, so nothing was sent."""


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


class DownstreamToolError(DownstreamError):
    """The server answered the request with a JSON-RPC error.

    Attributes:
        code: The JSON-RPC error code the server sent.
    """

    def __init__(self, server: str, message: str, code: int) -> None:
        self.code = code
        super().__init__(server, message)


class WorkflowError(OrchestratorError):
    """A workflow could not be loaded or run."""


class WorkflowDefinitionError(WorkflowError):
    """A workflow file is invalid; each problem is ``path:line: step.field: message``."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(problems) if problems else f"{path}: invalid workflow")


class WorkflowExecutionError(WorkflowError):
    """A workflow run failed at a step."""

    def __init__(self, run_id: str, step_id: str, message: str) -> None:
        self.run_id = run_id
        self.step_id = step_id
        super().__init__(f"run {run_id}: step {step_id!r} failed: {message}")
