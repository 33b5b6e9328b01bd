"""Run a ``WorkflowPlan`` against a ``ToolInvoker``: eager, bounded, cancellable.

Owns scheduling and step semantics (DESIGN.md §5). A step starts the moment every one of
its needs is finished, not level by level; downstream calls in flight are bounded by
``limits.max_parallel`` (and per for_each step by its ``max_parallel``). A falsy ``if``
skips a step; a skipped need, or one that failed under ``on_error: continue``, gives its
dependents its ``default``. An unhandled failure cancels every step in flight (their
calls see the cancellation) and fails the run; ``limits.timeout`` bounds the whole run.
Cancellation from the caller is never swallowed: it propagates after in-flight calls end.

Traces each run as an ``invoke_workflow`` span with one span per step (and per for_each
item), retries as span events, through ``orchestrator.tracing`` (OTel API only); the SDK's
client span of each downstream attempt becomes a child of its step.

Deliberately does not: import the downstream or server packages, or log; the caller
watches runs through ``StepEvent``s and the ``RunResult``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.lowlevel
from opentelemetry import trace

from orchestrator.errors import WorkflowExecutionError
from orchestrator.tracing import (
    ATTR_FOREACH_COUNT,
    finish_step,
    finish_workflow,
    item_span,
    record_retry,
    step_span,
    workflow_span,
)
from orchestrator.workflow._call import CallContext, call_step_tool
from orchestrator.workflow._expr import ExpressionError, truthy
from orchestrator.workflow._hooks import ApprovalRequest, Approver, JournalledStep, RunJournal, StepInterrupted
from orchestrator.workflow._retry import AttemptFailure
from orchestrator.workflow._run import (
    INPUT_STEP,
    OUTPUT_STEP,
    RUN_STEP,
    EventKind,
    RunResult,
    RunStatus,
    StepEvent,
    StepEventFn,
    StepRun,
    StepStatus,
    ToolInvoker,
    new_run_id,
    validate_input,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from anyio.abc import TaskGroup

    from orchestrator.workflow._plan import StepPlan, WorkflowPlan

__all__ = ["execute"]

_NOT_FINISHED = StepRun("cancelled")
"""A step's record until it finishes; a step the run never reached keeps it, as ``StepRun`` says."""


async def execute(
    plan: WorkflowPlan,
    arguments: Mapping[str, Any] | None,
    invoker: ToolInvoker,
    *,
    on_event: StepEventFn | None = None,
    run_id: str | None = None,
    catalogue_version: str | None = None,
    journal: RunJournal | None = None,
    approver: Approver | None = None,
    timeout: float | None = None,
) -> RunResult:
    """Run ``plan`` with ``arguments``.

    Args:
        plan: The compiled workflow.
        arguments: The composite tool's arguments; defaults are applied, then they are validated
            (invalid ones fail the run before any step starts).
        invoker: Where downstream calls go.
        on_event: Awaited as steps start, retry and finish (progress is ``finished_steps``/``total_steps``).
        run_id: The run id; default a fresh one from ``new_run_id``.
        catalogue_version: The version of the catalogue the plan was compiled against (the
            server's); recorded on the run's span and in its result, never interpreted here.
        journal: Where each step's outcome is kept before its dependents start, and recalled
            from when the run resumes after its process died; ``None`` keeps nothing.
        approver: Asks the user before a step with ``approve``; a plan with such steps and no
            approver fails before any step starts.
        timeout: Seconds the run may still take (a resumed run's deadline counts from when it
            began); default the plan's ``limits.timeout``.

    Returns:
        The result; a failed run names its step and error in ``error`` (a ``WorkflowExecutionError``).

    Raises:
        BaseExceptionGroup: ``invoker``, ``journal``, ``approver`` or ``on_event`` raised
            something other than a ``DownstreamError`` or ``StepInterrupted`` (a bug, or a
            journal that lost its run); cancellation of the caller propagates as usual.
    """
    run_id = run_id or new_run_id()
    unfinished = dict.fromkeys(plan.steps, _NOT_FINISHED)
    applied, problems = validate_input(plan, arguments)
    if problems:
        error = WorkflowExecutionError(run_id, INPUT_STEP, f"invalid arguments: {'; '.join(problems)}")
        return RunResult(run_id, "failed", None, unfinished, error, catalogue_version)
    asking = [step.id for step in plan.steps.values() if step.approval is not None]
    if asking and approver is None:
        message = (
            f"step {asking[0]!r} needs the user's approval, and the client cannot be asked "
            "(it does not support elicitation); nothing was called"
        )
        return RunResult(run_id, "failed", None, unfinished, WorkflowExecutionError(run_id, RUN_STEP, message))
    hooks = _Hooks(journal, approver, plan.timeout if timeout is None else max(timeout, 0.0))
    return await _Executor(plan, applied, invoker, on_event, run_id, catalogue_version, hooks).run()


@dataclass(frozen=True, slots=True)
class _Hooks:
    """What a run is given besides its invoker: a journal, an approver, and the time it has."""

    journal: RunJournal | None
    approver: Approver | None
    timeout: float


class _Executor:
    """Executes one plan once: schedules its steps, holds their states, and builds the ``RunResult``."""

    def __init__(
        self,
        plan: WorkflowPlan,
        arguments: dict[str, Any],
        invoker: ToolInvoker,
        on_event: StepEventFn | None,
        run_id: str,
        catalogue_version: str | None = None,
        hooks: _Hooks | None = None,
    ) -> None:
        self.plan = plan
        self.arguments = arguments
        self.invoker = invoker
        self.on_event = on_event
        self.run_id = run_id
        self.catalogue_version = catalogue_version
        self.states = {step_id: _StepState() for step_id in plan.steps}
        # What expressions see of each finished step (steps.<id>.{result,status,error,attempts}),
        # made once as it finishes rather than once per step that reads it.
        self.views: dict[str, dict[str, Any]] = {}
        self.waiting = {step_id: len(step.needs) for step_id, step in plan.steps.items()}
        self.finished_steps = 0
        self.failure: WorkflowExecutionError | None = None
        self.limiter = anyio.CapacityLimiter(plan.max_parallel)
        self.task_group: TaskGroup | None = None
        self.journal = hooks.journal if hooks is not None else None
        self.approver = hooks.approver if hooks is not None else None
        self.timeout = hooks.timeout if hooks is not None else plan.timeout
        # A run that stops without failing: a step needs a decision, or an approval was refused.
        self.stopped_as: RunStatus | None = None

    async def run(self) -> RunResult:
        input_size = len(json.dumps(self.arguments, default=str))
        with workflow_span(self.plan.name, self.run_id, input_size, self.catalogue_version) as span:
            try:
                result = await self._run()
            except anyio.get_cancelled_exc_class():
                finish_workflow(span, "cancelled")
                raise
            error = result.error
            if error is None:
                finish_workflow(span, "succeeded")
            else:
                failed = self.states.get(error.step_id)
                error_type = failed.error_class if failed is not None and failed.error_class else "workflow_error"
                finish_workflow(span, "failed", failed_step=error.step_id, error_type=error_type, message=str(error))
            return result

    async def _run(self) -> RunResult:
        with anyio.move_on_after(self.timeout) as run_scope:
            async with anyio.create_task_group() as task_group:
                self.task_group = task_group
                for step in self.plan.steps.values():
                    if not step.needs:
                        task_group.start_soon(self._steps_from, step, name=f"step {step.id}")
        if run_scope.cancelled_caught and self.failure is None:
            in_flight = [
                s for s, state in self.states.items() if state.started is not None and state.status == "cancelled"
            ]
            message = f"the run exceeded limits.timeout ({self.plan.timeout:g}s)"
            if self.timeout < self.plan.timeout:
                message += ", counted from when it began"
            self.failure = WorkflowExecutionError(self.run_id, in_flight[0] if in_flight else RUN_STEP, message)
        if self.failure is not None:
            return self._result(None)
        try:
            read = self.plan.output_value.references()
            read_steps = self.plan.steps if read.all_steps or read.whole_context else read.steps
            output = self.plan.output_value.render(self._context(read_steps))
        except ExpressionError as exc:
            self.failure = WorkflowExecutionError(self.run_id, OUTPUT_STEP, str(exc))
            return self._result(None)
        if self.plan.output_validator is not None:
            errors = [e.message for e in islice(self.plan.output_validator.iter_errors(output), 5)]
            if errors:
                message = f"output does not match output.schema: {'; '.join(errors)}"
                self.failure = WorkflowExecutionError(self.run_id, OUTPUT_STEP, message)
                return self._result(None)
        return self._result(output)

    def _result(self, output: Any) -> RunResult:
        status: RunStatus = "succeeded" if self.failure is None else self.stopped_as or "failed"
        steps = {step_id: state.record() for step_id, state in self.states.items()}
        return RunResult(self.run_id, status, output, steps, self.failure, self.catalogue_version)

    async def _steps_from(self, step: StepPlan) -> None:
        """Run ``step``, then in this same task the step it made ready last, and so on.

        The other steps a step makes ready get tasks of their own, started before it returns.
        """
        next_step: StepPlan | None = step
        while next_step is not None:
            next_step = await self._step(next_step)
            if next_step is not None:
                # The trip through the event loop a task of its own would make, without the
                # cost of making that task: steps that never wait still let others run.
                await anyio.lowlevel.checkpoint()

    async def _step(self, step: StepPlan) -> StepPlan | None:
        """Run ``step`` and start the dependents it makes ready; the last of them is returned, to run next."""
        state = self.states[step.id]
        state.started = anyio.current_time()
        with step_span(step.id, f"{step.server}.{step.tool}") as span:
            try:
                await self._emit(step, "started")
                status, result, failure = await self._outcome(step, state)
            except anyio.get_cancelled_exc_class():
                state.finished = anyio.current_time()
                finish_step(span, "cancelled", state.attempts)
                raise
            except (StepInterrupted, _Declined) as stop:
                state.finished, state.error = anyio.current_time(), str(stop)
                finish_step(span, "cancelled", state.attempts, message=str(stop))
                self._stop(step, "interrupted" if isinstance(stop, StepInterrupted) else "declined", str(stop))
                await self._emit(step, "finished")
                return None
            error_type = failure.error_class if failure is not None else None
            finish_step(span, status, state.attempts, error_type=error_type, message=str(failure) if failure else None)
        state.status = status
        state.finished = anyio.current_time()
        state.result = result if status == "succeeded" else step.default
        state.error = str(failure) if failure is not None else None
        state.error_class = error_type
        self.views[step.id] = {
            "result": state.result,
            "status": status,
            "error": state.error,
            "attempts": state.attempts,
        }
        self.finished_steps += 1
        if failure is not None and step.on_error == "fail":
            if self.failure is None:
                attempts = f" (after {state.attempts} attempts)" if state.attempts > 1 else ""
                message = f"{failure.error_class}: {failure}{attempts}"
                self.failure = WorkflowExecutionError(self.run_id, step.id, message, server=failure.server)
            await self._emit(step, "finished")
            assert self.task_group is not None
            self.task_group.cancel_scope.cancel()
            return None
        ready: StepPlan | None = None
        if self.failure is None:
            assert self.task_group is not None
            for dependent in step.dependents:
                self.waiting[dependent] -= 1
                if self.waiting[dependent] == 0:
                    if ready is not None:
                        self.task_group.start_soon(self._steps_from, ready, name=f"step {ready.id}")
                    ready = self.plan.steps[dependent]
        await self._emit(step, "finished")
        return ready

    def _stop(self, step: StepPlan, status: RunStatus, message: str) -> None:
        """End the run without a failure of its own: ``status`` says why (``interrupted``, ``declined``)."""
        if self.failure is None:
            self.failure = WorkflowExecutionError(self.run_id, step.id, message)
            self.stopped_as = status
        assert self.task_group is not None
        self.task_group.cancel_scope.cancel()

    async def _outcome(self, step: StepPlan, state: _StepState) -> tuple[StepStatus, Any, AttemptFailure | None]:
        """The step's outcome: recalled from the journal if an earlier life finished it, else performed now."""
        if self.journal is None:
            return await self._perform(step, state)
        recalled = await self.journal.recall(step, None)
        if recalled is not None:
            state.attempts = recalled.attempts
            failure = None
            if recalled.status in ("failed", "unknown_outcome"):
                failure = AttemptFailure(
                    recalled.error_class or "failed",
                    recalled.error or "failed before the run resumed",
                    unknown_outcome=recalled.status == "unknown_outcome",
                    server=step.server,
                )
            return recalled.status, recalled.result, failure
        status, result, failure = await self._perform(step, state)
        outcome = JournalledStep(
            status,
            result if status == "succeeded" else None,
            str(failure) if failure is not None else None,
            failure.error_class if failure is not None else None,
            state.attempts,
        )
        await self.journal.finished(step, None, outcome)
        return status, result, failure

    async def _perform(self, step: StepPlan, state: _StepState) -> tuple[StepStatus, Any, AttemptFailure | None]:
        context = self._context(step.reads)
        try:
            if step.condition is not None and not truthy(_evaluate(step.condition.evaluate, context)):
                return "skipped", None, None
            if step.approval is not None:
                await self._approve(step, context)
            deadline_at = anyio.current_time() + step.deadline if step.deadline is not None else None

            def count_attempt() -> None:
                state.attempts += 1

            async def on_retry(attempt: int, failure: AttemptFailure, delay: float) -> None:
                # The current span is the step's, or the for_each item's being retried.
                record_retry(trace.get_current_span(), attempt, delay, failure.error_class)
                await self._emit(step, "retrying", error=str(failure), delay=delay)

            calls = CallContext(self.run_id, self.invoker, self.limiter, count_attempt, on_retry)
            if step.for_each is None:
                arguments = _arguments(step, context)
                if self.journal is not None:
                    await self.journal.started(step, None)
                return "succeeded", await call_step_tool(step, arguments, 0, calls, deadline_at), None
            if self.journal is not None:
                await self.journal.started(step, None)
            return "succeeded", await self._fan_out(step, context, calls, deadline_at), None
        except AttemptFailure as failure:
            return ("unknown_outcome" if failure.unknown_outcome else "failed"), None, failure

    async def _approve(self, step: StepPlan, context: dict[str, Any]) -> None:
        """Ask the user before ``step`` calls its tool.

        Raises:
            _Declined: The user declined, or did not answer in time.
            AttemptFailure: ``approve.show`` could not be evaluated.
        """
        assert step.approval is not None
        assert self.approver is not None  # `execute` checked that one exists
        approval = step.approval
        shown = _evaluate(approval.show.evaluate, context) if approval.show is not None else None
        request = ApprovalRequest(
            self.run_id, step.id, f"{step.server}.{step.tool}", approval.message, shown, approval.destructive
        )
        await self._emit(step, "approval")
        answer = await self.approver(request)
        if answer == "declined":
            raise _Declined(f"the user declined step {step.id!r}; nothing was called")
        if answer == "timeout":
            raise _Declined(f"no answer to the approval of step {step.id!r} in time; nothing was called")

    async def _fan_out(
        self, step: StepPlan, context: dict[str, Any], calls: CallContext, deadline_at: float | None
    ) -> list[Any]:
        assert step.for_each is not None
        items = _evaluate(step.for_each.evaluate, context)
        if not isinstance(items, list):
            hint = " (use `|| `[]`` for an optional list)" if items is None else ""
            raise AttemptFailure("expression_error", f"for_each must yield a list, not {_json_type(items)}{hint}")
        values = cast("list[Any]", items)
        if len(values) > step.max_items:
            message = f"for_each yielded {len(values)} items, more than max_items ({step.max_items})"
            raise AttemptFailure("too_many_items", message)
        trace.get_current_span().set_attribute(ATTR_FOREACH_COUNT, len(values))
        results: list[Any] = [None] * len(values)
        failures: list[tuple[int, AttemptFailure]] = []
        interrupted: list[StepInterrupted] = []
        pending = iter(enumerate(values))

        async def worker(task_group: TaskGroup) -> None:
            for index, item in pending:  # shared: each worker takes the next item when it is free
                with item_span(step.id, index) as span:
                    try:
                        results[index] = await self._item(step, index, item, context, calls, deadline_at)
                    except StepInterrupted as stop:
                        interrupted.append(stop)
                        task_group.cancel_scope.cancel()
                        return
                    except AttemptFailure as failure:
                        failures.append((index, failure))
                        status = "unknown_outcome" if failure.unknown_outcome else "failed"
                        finish_step(span, status, 0, error_type=failure.error_class, message=str(failure))
                        task_group.cancel_scope.cancel()
                        return

        width = min(len(values), step.max_parallel or self.plan.max_parallel)
        async with anyio.create_task_group() as task_group:
            for _ in range(width):
                task_group.start_soon(worker, task_group)
        if interrupted:
            raise interrupted[0]
        if failures:
            index, failure = failures[0]
            raise AttemptFailure(
                failure.error_class,
                f"item {index}: {failure}",
                unknown_outcome=failure.unknown_outcome,
                server=failure.server,
            )
        return results

    async def _item(
        self,
        step: StepPlan,
        index: int,
        item: Any,
        context: dict[str, Any],
        calls: CallContext,
        deadline_at: float | None,
    ) -> Any:
        """One for-each item's value: recalled from the journal, or called now and journalled."""
        if self.journal is not None:
            recalled = await self.journal.recall(step, index)
            if recalled is not None and recalled.status == "succeeded":
                return recalled.result
        arguments = _arguments(step, {**context, step.item_name: item, "index": index})
        if self.journal is None:
            return await call_step_tool(step, arguments, index, calls, deadline_at)
        await self.journal.started(step, index)
        value = await call_step_tool(step, arguments, index, calls, deadline_at)
        await self.journal.finished(step, index, JournalledStep("succeeded", value))
        return value

    def _context(self, step_ids: Iterable[str]) -> dict[str, Any]:
        """What expressions see: ``input``, and the finished steps ``step_ids`` (those they read)."""
        views = self.views
        return {"input": self.arguments, "steps": {step_id: views[step_id] for step_id in step_ids}}

    async def _emit(
        self,
        step: StepPlan,
        kind: EventKind,
        *,
        error: str | None = None,
        delay: float | None = None,
    ) -> None:
        if self.on_event is None:
            return
        state = self.states[step.id]
        status = state.status if kind == "finished" else None
        error = error if kind == "retrying" else state.error if kind == "finished" else None
        event = StepEvent(
            self.run_id, step.id, kind, status, state.attempts, self.finished_steps, len(self.plan.steps), error, delay
        )
        await self.on_event(event)


@dataclass(slots=True)
class _StepState:
    """A step's record while the run goes on (``StepRun`` says what each field holds).

    Mutable, so that starting, counting an attempt and finishing are plain assignments; the
    result gets a frozen ``StepRun`` of each. A step the run never reached keeps the defaults.
    """

    status: StepStatus = "cancelled"
    result: Any = None
    error: str | None = None
    error_class: str | None = None
    attempts: int = 0
    started: float | None = None
    finished: float | None = None

    def record(self) -> StepRun:
        return StepRun(
            self.status, self.result, self.error, self.error_class, self.attempts, self.started, self.finished
        )


class _Declined(Exception):
    """The user declined a step's approval, or did not answer in time."""


def _evaluate(evaluate: Callable[[Mapping[str, Any]], Any], context: dict[str, Any]) -> Any:
    try:
        return evaluate(context)
    except ExpressionError as exc:
        raise AttemptFailure("expression_error", str(exc)) from None


def _arguments(step: StepPlan, context: dict[str, Any]) -> dict[str, Any]:
    try:
        arguments = step.arguments.render(context)
    except ExpressionError as exc:
        raise AttemptFailure("expression_error", f"with: {exc}") from None
    if not isinstance(arguments, dict):
        raise AttemptFailure("expression_error", f"with must give an object of arguments, not {_json_type(arguments)}")
    return cast("dict[str, Any]", arguments)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an object" if isinstance(value, dict) else "an array"
