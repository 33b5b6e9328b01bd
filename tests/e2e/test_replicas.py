"""Three replicas of ``serve --transport http`` behind a real HAProxy, with all state in a real PostgreSQL.

Each replica is its own ``orchestrator serve`` process with its own fault server (stdio); they
share one config and one database. HAProxy balances round robin, checks ``/readyz``, and keeps a
2025-11-25 session on the replica that answered its ``initialize`` (a stick-table on the
``Mcp-Session-Id`` header). A test SIGKILLs one replica in the middle of the traffic and checks,
at the downstream (its events file), what ran: nothing lost silently, nothing run twice.
"""

from __future__ import annotations

import json
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
import mcp_types as types
import psutil
import pytest
import yaml
from mcp import Client, MCPError
from sqlalchemy.engine import make_url

from orchestrator.store import RunRecord, open_store, read_run
from tests.e2e.consent_flow import free_port, set_owner_password, sign_in_across
from tests.e2e.durable_harness import marks, workflow_document
from tests.e2e.harness import aggregator_command, events_seen, fault_entry, logged_process, write_config
from tests.e2e.replica_cluster import HAPROXY, LISTENING, Cluster, Replica, fresh_database, replica_cluster
from tests.e2e.tasks_client import CreatedTask, TasksExtension, wait_for_status
from tests.fakes import EVENTS_FILE_ENV, read_events

if TYPE_CHECKING:
    import re
    from collections.abc import AsyncGenerator
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

    from mcp.client.session import ClientRequestContext

    from tests.e2e.harness import ProcessLog

pytestmark = pytest.mark.anyio

REPLICAS = 3
LEASE = "2s"
"""How long a replica holds a run without renewing it (short: a test waits for a takeover)."""

TAGGED_MARKS = "tagged_marks"


def _tagged_marks() -> dict[str, Any]:
    """``tagged_marks``: a -> b (idempotent, waits ``input.pause`` s) -> c, each a ``mark`` labelled ``<tag>.<step>``.

    ``mark`` is not idempotent (its annotations say so), so a and c must never run twice; b is
    declared idempotent, so a replica that takes the run over calls it again.
    """
    steps: dict[str, Any] = {
        "a": {"tool": "f.mark", "with": {"label": "${{ input.tag }}.a"}},
        "b": {
            "tool": "f.mark",
            "needs": ["a"],
            "with": {"label": "${{ input.tag }}.b", "seconds": "${{ input.pause }}"},
            "idempotent": True,
        },
        "c": {"tool": "f.mark", "needs": ["b"], "with": {"label": "${{ input.tag }}.c"}},
    }
    schema = {
        "type": "object",
        "properties": {"tag": {"type": "string"}, "pause": {"type": "number"}},
        "required": ["tag", "pause"],
    }
    return workflow_document(TAGGED_MARKS, steps, input_schema=schema, output={"last": "${{ steps.c.result.label }}"})


if not os.path.exists(HAPROXY) and not os.environ.get("CI"):  # pragma: no cover - .ci/run installs it
    # Only outside CI: there, a missing HAProxy fails the tests below instead of skipping them.
    pytest.skip("HAProxy is not installed (apt-get install haproxy; .ci/run does it)", allow_module_level=True)


# ---------------------------------------------------------------------------------------------- parts


def _events(tmp_path: Path) -> Path:
    """The events file the fault servers of ``_cluster`` write to."""
    return tmp_path / "events.log"


@asynccontextmanager
async def _cluster(tmp_path: Path, postgres_url: str) -> AsyncGenerator[Cluster, None]:
    """Three replicas on one config and one fresh database, started at once, behind HAProxy."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / f"{TAGGED_MARKS}.yaml").write_text(yaml.safe_dump(_tagged_marks(), sort_keys=False), encoding="utf-8")
    async with fresh_database(postgres_url) as state:
        config = write_config(
            tmp_path,
            {"f": fault_entry("--mark-tool", env={EVENTS_FILE_ENV: str(_events(tmp_path))})},
            workflows=[str(folder)],
            state={"url": state},
            runs={"lease": LEASE},
        )
        async with replica_cluster(tmp_path, config, REPLICAS, state) as cluster:
            yield cluster


async def _read_run(state: str, run_id: str) -> RunRecord:
    async with open_store(make_url(state).set(drivername="postgresql+asyncpg")) as store:
        found = await read_run(store.engine, run_id)
    assert found is not None, run_id
    return found


def _leaves(group: ExceptionGroup[httpx2.TransportError]) -> list[httpx2.TransportError]:
    """The transport errors inside ``group``, at any depth."""
    found: list[httpx2.TransportError] = []
    for each in group.exceptions:
        found.extend(_leaves(each) if isinstance(each, ExceptionGroup) else [each])
    return found


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


# ---------------------------------------------------------------------------------------------- calls

CALLS = 200
CLIENTS = 8
IN_FLIGHT_PER_CLIENT = 4
KILL_AFTER = 60
"""Calls answered before one replica is killed (with about 30 in flight, some of them on it)."""


@dataclass
class Outcome:
    """What became of one call."""

    ok: bool
    after_kill: bool
    """It was sent once HAProxy had taken the killed replica out of rotation."""
    detail: str


@dataclass
class Traffic:
    """``mark`` calls through the balancer from several SDK clients, and what became of each."""

    url: str
    outcomes: dict[str, Outcome] = field(default_factory=dict[str, Outcome])
    answered: anyio.Event = field(default_factory=anyio.Event)
    """Set once KILL_AFTER calls came back."""
    routed_around: anyio.Event = field(default_factory=anyio.Event)
    """Set once HAProxy took the killed replica out of rotation."""

    def _record(self, label: str, outcome: Outcome) -> None:
        self.outcomes[label] = outcome
        if len(self.outcomes) >= KILL_AFTER:
            self.answered.set()

    async def _call(self, client: Client, label: str, after_kill: bool, limit: anyio.Semaphore) -> None:
        try:
            result = await client.call_tool("f__mark", {"label": label, "seconds": 0.2})
        except (MCPError, httpx2.TransportError) as exc:
            self._record(label, Outcome(False, after_kill, f"{type(exc).__name__}: {exc}"))
        else:
            assert not result.is_error, result
            assert json.loads(_text(result)) == {"label": label}, result
            self._record(label, Outcome(True, after_kill, ""))
        finally:
            limit.release()

    async def caller(self, share: list[str]) -> None:
        """Send ``share``'s calls from one SDK client, IN_FLIGHT_PER_CLIENT at a time.

        The SDK's client ends as a whole when a connection breaks under one of its requests
        (its other calls in flight end with it): as a real client would, open another and go on.
        """
        pending = list(share)
        while pending:
            sent: dict[str, bool] = {}  # label -> sent once the dead replica was out of rotation
            try:
                async with Client(self.url) as client, anyio.create_task_group() as calls:
                    assert client.protocol_version == "2026-07-28"
                    limit = anyio.Semaphore(IN_FLIGHT_PER_CLIENT)
                    while pending:
                        await limit.acquire()
                        label = pending.pop(0)
                        sent[label] = self.routed_around.is_set()
                        calls.start_soon(self._call, client, label, sent[label], limit)
            except* httpx2.TransportError as broken:
                why = " / ".join(sorted({f"{type(leaf).__name__}: {leaf}" for leaf in _leaves(broken)}))
                for label, after_kill in sent.items():
                    if label not in self.outcomes:
                        self._record(label, Outcome(False, after_kill, f"the client's connection broke: {why}"))


async def test_calls_through_the_balancer_survive_a_replica_killed_mid_traffic(
    tmp_path: Path, postgres_url: str
) -> None:
    async with _cluster(tmp_path, postgres_url) as cluster:
        labels = [f"call-{number}" for number in range(CALLS)]
        traffic = Traffic(cluster.url)
        victim = cluster.replicas[1]
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for index in range(CLIENTS):
                    tg.start_soon(traffic.caller, labels[index::CLIENTS])
                await traffic.answered.wait()
                await cluster.kill(victim)
                traffic.routed_around.set()

        outcomes = traffic.outcomes
        ran = [line.removeprefix("mark ") for line in read_events(_events(tmp_path)) if line.startswith("mark call-")]
        failed = {label: outcome for label, outcome in outcomes.items() if not outcome.ok}
        print(
            f"{len(outcomes)} calls: {CALLS - len(failed)} answered, {len(failed)} failed cleanly "
            f"({sum(label in ran for label in failed)} of those had reached the downstream); "
            f"the downstreams ran {len(ran)} calls"
        )
        for label, outcome in sorted(failed.items()):
            print(f"  {label}: {outcome.detail}")
        assert len(outcomes) == CALLS, "every call came back, answered or failed"
        assert len(ran) == len(set(ran)), "no call ran twice (mark is not idempotent: nothing retried it)"
        assert set(ran) <= set(labels)
        assert not [label for label, outcome in outcomes.items() if outcome.ok and label not in ran], (
            "every answered call ran at the downstream"
        )
        assert not [label for label, outcome in failed.items() if outcome.after_kill], (
            "once HAProxy took the dead replica out, every call is answered"
        )
        assert len(failed) <= CLIENTS * IN_FLIGHT_PER_CLIENT, "only calls in flight at the kill may fail"
        # The survivors keep serving: one more call through the balancer.
        async with Client(cluster.url) as client:
            done = await client.call_tool("f__echo", {"text": "still here"})
        assert _text(done) == "still here"


# ---------------------------------------------------------------------------------------------- durable tasks

TASKS = 3
PAUSE = 5.0
"""Seconds step b takes: the replica running it is stopped while it runs."""


async def _step_started(state: str, run_id: str, step: str) -> RunRecord:
    """Wait (bounded, polling the journal) until ``step`` of ``run_id`` is journalled as started; the run."""
    with anyio.fail_after(20):
        while True:
            run = await _read_run(state, run_id)
            found = run.step(step)
            if found is not None and found.attempts >= 1:
                return run
            await anyio.sleep(0.05)


def _owner_pid(run: RunRecord) -> int:
    """The process running ``run`` (its owner is ``host/pid/random``)."""
    assert run.owner is not None, run
    return int(run.owner.split("/")[1])


@pytest.mark.parametrize("how", ["killed", "frozen"])
async def test_a_durable_task_whose_replica_dies_is_taken_over_and_completes_once(
    tmp_path: Path, postgres_url: str, how: str
) -> None:
    """Killed: the others see its pid gone (same host) and take its runs at once. Frozen
    (SIGSTOP, as a machine that hangs or is cut off): its pid lives on, so they wait for the
    lease to lapse, as replicas on other machines do."""
    async with (
        _cluster(tmp_path, postgres_url) as cluster,
        Client(cluster.url, mode="2026-07-28", extensions=[TasksExtension()]) as client,
    ):
        tags = [f"task{number}" for number in range(TASKS)]
        ids: dict[str, str] = {}
        for tag in tags:
            handle = await client.session.call_tool(TAGGED_MARKS, {"tag": tag, "pause": PAUSE}, allow_claimed=True)
            assert isinstance(handle, CreatedTask), handle
            ids[tag] = handle.task_id
        for tag in tags:
            await events_seen(_events(tmp_path), f"mark {tag}.b")
        runs = {tag: await _step_started(cluster.state, ids[tag], "b") for tag in tags}
        victim = cluster.replica_with_pid(_owner_pid(runs[tags[0]]))
        moved = {tag for tag, run in runs.items() if _owner_pid(run) == victim.pid}
        print(f"runs by replica pid: { {tag: _owner_pid(run) for tag, run in runs.items()} }; {how}: {victim.pid}")

        if how == "killed":
            await cluster.kill(victim)
        else:
            await cluster.freeze(victim)
        done = {tag: await wait_for_status(client.session, ids[tag], timeout=40) for tag in tags}
        if how == "frozen":
            await cluster.kill(victim, wait=False)
        journalled = {tag: await _read_run(cluster.state, ids[tag]) for tag in moved}

    for tag in tags:
        assert done[tag]["status"] == "completed", done[tag]
        assert done[tag]["result"]["structuredContent"] == {"last": f"{tag}.c"}, done[tag]
    counts = marks(_events(tmp_path))
    for tag in tags:
        # a and c (not idempotent) ran once; b, in flight on the dead replica, again where it moved.
        expected = {f"{tag}.a": 1, f"{tag}.b": 2 if tag in moved else 1, f"{tag}.c": 1}
        assert {label: count for label, count in counts.items() if label.startswith(f"{tag}.")} == expected
    for run in journalled.values():
        assert run.status == "succeeded"
        step_b = run.step("b")
        assert step_b is not None
        assert step_b.attempts == 2


# ---------------------------------------------------------------------------------------------- legacy sessions


def _pid(result: types.CallToolResult) -> int:
    """The fault server's pid, as its ``pid`` tool answers."""
    return int(json.loads(_text(result))["pid"])


def _replica_of(cluster: Cluster, downstream_pid: int) -> Replica:
    """The replica whose fault server is process ``downstream_pid``."""
    ancestors = {parent.pid for parent in psutil.Process(downstream_pid).parents()}
    (found,) = [replica for replica in cluster.replicas if replica.pid in ancestors]
    return found


async def test_a_legacy_session_stays_on_its_replica_and_ends_cleanly_when_the_replica_dies(
    tmp_path: Path, postgres_url: str
) -> None:
    async with _cluster(tmp_path, postgres_url) as cluster:
        with anyio.fail_after(50):  # the client's own closing too: no hang anywhere
            async with Client(cluster.url, mode="legacy") as client:
                assert client.protocol_version == "2025-11-25"
                seen: set[int] = set()
                for _ in range(30):
                    seen.add(_pid(await client.call_tool("f__pid", {})))
                # Every call reached the same downstream: the session never left the replica
                # holding it (another replica would have answered 404: it does not know it).
                (downstream,) = seen
                holder = _replica_of(cluster, downstream)
                await cluster.kill(holder)
                with pytest.raises(MCPError) as ended:
                    await client.call_tool("f__pid", {})
        # HAProxy sent the session's request to a live replica, which does not know the session: 404.
        assert ended.value.error.code == types.INVALID_REQUEST, ended.value
        assert "not found" in ended.value.error.message.lower(), ended.value
        # A new session (what a client does on 404) lands on a replica that is alive.
        async with Client(cluster.url, mode="legacy") as again:
            other = _pid(await again.call_tool("f__pid", {}))
        assert _replica_of(cluster, other) is not holder


async def test_the_consent_page_signs_in_across_replicas(tmp_path: Path, postgres_url: str) -> None:
    # Each replica derives the consent cookies' key from the secrets key they share (here one
    # state folder on one machine; on several, the same secrets.key file given to each).
    ports = [free_port(), free_port()]
    issuer = f"http://127.0.0.1:{ports[0]}"
    async with fresh_database(postgres_url) as state:
        config = write_config(
            tmp_path, {"f": fault_entry()}, serve={"auth": {"oauth": {"issuer": issuer}}}, state={"url": state}
        )
        await anyio.to_thread.run_sync(set_owner_password, config)
        async with (
            logged_process([*aggregator_command(config), "--port", str(ports[0])], LISTENING, timeout=90),
            logged_process([*aggregator_command(config), "--port", str(ports[1])], LISTENING, timeout=90),
        ):

            @asynccontextmanager
            async def reach(index: int, cookies: httpx2.Cookies | None) -> AsyncGenerator[httpx2.AsyncClient, None]:
                # Cookies do not tell ports apart: the browser sends the same ones to both.
                base = f"http://127.0.0.1:{ports[index]}"
                async with httpx2.AsyncClient(base_url=base, cookies=cookies, timeout=30) as http:
                    yield http

            await sign_in_across(issuer, reach)


async def _elicit_by_hand(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    raise AssertionError("the test answers the round by hand")


@pytest.mark.parametrize("holder_workers", [1, 2])
async def test_the_answer_to_an_input_round_reaches_the_replica_that_holds_it(
    tmp_path: Path, postgres_url: str, holder_workers: int
) -> None:
    # With workers, the holder replica's round lives in one of its workers: the answer comes in
    # at the replica's port, reaches any of them, and the workers pass it on among themselves.
    ports = [free_port(), free_port()]
    async with fresh_database(postgres_url) as state:
        config = write_config(
            tmp_path, {"f": fault_entry()}, serve={"advertise_url": "${ADVERTISE_URL}"}, state={"url": state}
        )

        def replica(port: int, *args: str) -> AbstractAsyncContextManager[tuple[re.Match[str], ProcessLog]]:
            command = [*aggregator_command(config), "--port", str(port), *args]
            return logged_process(command, LISTENING, env={"ADVERTISE_URL": f"http://127.0.0.1:{port}"}, timeout=90)

        holder_url, other_url = (f"http://127.0.0.1:{port}/mcp" for port in ports)
        async with (
            replica(ports[0], "--workers", str(holder_workers)),
            replica(ports[1]),
            Client(other_url, elicitation_callback=_elicit_by_hand) as other,
        ):
            for number in range(4):
                # A new client each time: a new connection, which any of the holder's workers may take.
                async with Client(holder_url, elicitation_callback=_elicit_by_hand) as holder:
                    round_ = await holder.session.call_tool(
                        "f__elicit", {"question": f"colour {number}?"}, allow_input_required=True
                    )
                assert isinstance(round_, types.InputRequiredResult), round_
                assert round_.request_state is not None
                assert round_.request_state.startswith("r.")
                assert "127.0.0.1" not in round_.request_state, "the holder's address is sealed"
                [(key, _request)] = (round_.input_requests or {}).items()
                answer: types.InputResponses = {
                    key: types.ElicitResult(action="accept", content={"answer": f"blue {number}"})
                }
                if number == 0:
                    # A forged mark opens nowhere: that round is unknown, as any state no replica holds.
                    sealed, _, rest = round_.request_state.removeprefix("r.").partition(".")
                    forged = f"r.{sealed[:-2]}{'A' if sealed[-2] != 'A' else 'B'}{sealed[-1]}.{rest}"
                    refused = await other.session.call_tool(
                        "f__elicit", {"question": "colour 0?"}, input_responses=answer, request_state=forged
                    )
                    assert isinstance(refused, types.CallToolResult)
                    assert refused.is_error
                    assert "expired or is unknown" in str(refused.content)
                # The real one, sent to the other replica, is passed to the holder.
                done = await other.session.call_tool(
                    "f__elicit",
                    {"question": f"colour {number}?"},
                    input_responses=answer,
                    request_state=round_.request_state,
                )
                assert isinstance(done, types.CallToolResult)
                assert done.structured_content == {"action": "accept", "content": {"answer": f"blue {number}"}}
