"""Helpers for durable runs end to end: workflows whose calls the downstream counts, their config, the journal.

The downstream is the fault server with ``--mark-tool``: each ``mark`` call writes a
``mark <label>`` line to its events file as it starts, so a test counts the calls of each step.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import TYPE_CHECKING, Any

import anyio
import yaml
from sqlalchemy.engine import make_url

from orchestrator.store import RunRecord, list_runs, open_store, read_run
from tests.e2e.harness import aggregator_command, events_seen, fault_entry, served_process, write_config
from tests.fakes import EVENTS_FILE_ENV, read_events

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from pathlib import Path

__all__ = [
    "GUARDED",
    "THREE_MARKS",
    "durable_config",
    "kill_while_b_runs",
    "marks",
    "read_the_run",
    "step_journalled",
    "three_marks",
    "workflow_document",
]

THREE_MARKS = "three_marks"


def workflow_document(
    name: str, steps: dict[str, Any], *, input_schema: dict[str, Any] | None = None, output: Any = None
) -> dict[str, Any]:
    """A workflow file's content: composite ``name`` running ``steps``."""
    document: dict[str, Any] = {"version": 1, "name": name, "description": f"test workflow {name}"}
    if input_schema is not None:
        document["input"] = input_schema
    document["steps"] = steps
    if output is not None:
        document["output"] = {"value": output}
    return document


GUARDED: dict[str, Any] = {
    "version": 1,
    "name": "guarded",
    "description": "Draft a text, then send it once the user approves.",
    "input": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    "steps": {
        "draft": {"tool": "f.echo", "with": {"text": "${{ input.text }}"}},
        "send": {
            "tool": "f.send",
            "needs": ["draft"],
            "with": {"text": "${{ steps.draft.result.text }}"},
            "approve": {"message": "Send the draft?", "show": "${{ steps.draft.result }}"},
        },
    },
    "output": {"value": "${{ steps.send.result }}"},
}
"""``guarded``: draft a text with the fault server's echo, then send it once the user approves."""


def three_marks(*, idempotent: bool, output: Any = "${{ steps.c.result.label }}") -> dict[str, Any]:
    """``three_marks``: a -> b (waits ``input.pause`` seconds) -> c, each a ``mark`` the downstream counts."""
    steps: dict[str, Any] = {
        "a": {"tool": "f.mark", "with": {"label": "a"}},
        "b": {
            "tool": "f.mark",
            "needs": ["a"],
            "with": {"label": "b", "seconds": "${{ input.pause }}"},
            "idempotent": idempotent,
        },
        "c": {"tool": "f.mark", "needs": ["b"], "with": {"label": "c"}},
    }
    schema = {"type": "object", "properties": {"pause": {"type": "number"}}, "required": ["pause"]}
    return workflow_document(THREE_MARKS, steps, input_schema=schema, output=output)


def durable_config(
    tmp_path: Path, workflows: Sequence[dict[str, Any]], *, lease: str = "1s", **sections: Any
) -> tuple[Path, Path, str]:
    """A config serving ``workflows`` over the counting fault server ``f``, journalled in ``tmp_path``.

    Runs are leased for ``lease`` (1 s by default), so a restarted ``serve`` elsewhere would
    take over a killed one's runs quickly (on this host it does at once: the pid is gone).

    Returns:
        The config file, the downstream's events file, and the state database URL.
    """
    folder = tmp_path / "workflows"
    folder.mkdir(exist_ok=True)
    for document in workflows:
        (folder / f"{document['name']}.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    events = tmp_path / "events.log"
    state = f"sqlite:///{tmp_path / 'state.db'}"
    config = write_config(
        tmp_path,
        {"f": fault_entry("--mark-tool", env={EVENTS_FILE_ENV: str(events)})},
        workflows=[str(folder)],
        state={"url": state},
        runs={"lease": lease},
        **sections,
    )
    return config, events, state


def marks(events: Path) -> dict[str, int]:
    """How many ``mark`` calls the downstream saw, by label."""
    counts: dict[str, int] = {}
    for line in read_events(events):
        if line.startswith("mark "):
            counts[line[5:]] = counts.get(line[5:], 0) + 1
    return counts


async def read_the_run(state: str, run_id: str | None = None) -> RunRecord:
    """Run ``run_id`` from the journal at ``state`` (or its only run), with its steps."""
    async with open_store(make_url(state.replace("sqlite:", "sqlite+aiosqlite:", 1))) as store:
        if run_id is None:
            (summary,) = await list_runs(store.engine)
            run_id = summary.id
        found = await read_run(store.engine, run_id)
    assert found is not None
    return found


async def step_journalled(state: str, step: str, *, timeout: float = 20.0) -> None:
    """Wait (polling, bounded) until the journal at ``state`` has ``step`` of its only run started.

    An idempotent step is called without waiting for its start to be committed (a lost start
    only means it is called again): a test that kills ``serve`` mid-step waits for it first.

    Raises:
        TimeoutError: The start is not journalled after ``timeout`` seconds.
    """
    with anyio.fail_after(timeout):
        while True:
            with contextlib.suppress(ValueError):  # no run journalled yet
                found = (await read_the_run(state)).step(step)
                if found is not None and found.attempts >= 1:
                    return
            await anyio.sleep(0.05)


async def kill_while_b_runs(config: Path, events: Path, state: str, start: Callable[[str], Awaitable[None]]) -> None:
    """Serve ``config`` over HTTP, ``start`` the run against its URL, and SIGKILL ``serve`` while step b runs.

    The kill comes once the downstream saw b's call and the journal has its start.
    """
    async with served_process(aggregator_command(config), r"listening on (\S+)") as (match, process):
        await start(match.group(1))
        await events_seen(events, "mark b")
        await step_journalled(state, "b")
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
