"""A misbehaving downstream MCP server for end-to-end tests of the aggregator.

Run from the repository root::

    python -m tests.fakes.fault_server [options]

Transports: stdio (default; nothing but JSON-RPC is ever written to stdout),
`--transport http --port N` (streamable HTTP at `http://127.0.0.1:N/mcp`; `--port 0` picks a
free port; `LISTENING <port>` goes to stderr once the server accepts connections), or
`--transport sse --port N` (the legacy HTTP+SSE transport: `GET http://127.0.0.1:N/sse`, posts
to `/messages/`; same `LISTENING` line).

Both protocol eras are served on one process, decided per connection by the client's first
request (the SDK's dual-era runner): the 2026-07-28 era (`Client(mode="auto")`, the default,
and pinned versions) and the 2025-11-25 handshake era (`Client(mode="legacy")`). With
`--legacy-only` the server is a 2025-11-25 server: it answers `server/discover` (and any
request carrying the 2026-07-28 envelope) with -32601 Method not found, so a client in auto
mode falls back to the handshake.

Options:
    --name NAME             server name (default "fault")
    --tools a,b,c           extra dummy tools with those names (any string; a dummy returns its
                            arguments as JSON text); `--tool NAME` (repeatable) for names with commas
    --fail-start            exit 3 at once, with a message on stderr
    --fail-start-file PATH  exit 3 at start while PATH exists (delete it to let restarts succeed)
    --stderr-mb N           write N MiB to stderr (64 KiB chunks) before serving
    --list-ttl-ms N         SEP-2549 cache hint on tools/list (ttlMs=N, private): lets a test check
                            that a list_changed really refreshes a caching client
    --garbage N             write N lines that are not JSON-RPC to stdout at start, before serving
                            (stdio only; they precede the first reply)
    --crash-after-seconds S exit with status 1 S seconds after serving began (after the SDK import;
                            a supervisor restarting it sees a server that flaps every ~S+start-up s)
    --stdout-tools          also serve `garbage(n)` and `line_flood(mb)` (see "Raw stdout" below);
                            opt-in, so the default catalogue stays the 15 tools tests count on
    --start-event           append `spawned <pid> <unix-time>` to $FAULT_EVENTS_FILE first thing at
                            start (before --fail-start): counts process starts. Opt-in, so the event
                            lines of servers started without it stay as they were
    --headers-tool          also serve `headers()`: the HTTP request headers the call arrived with,
                            as structuredContent {lower-case name: value} (HTTP transports; an
                            `isError` result on stdio). Opt-in for the same reason as above
    --ops-tools             also serve `freeze(seconds)` (blocks the whole process: nothing, not even
                            a ping, is answered until it thaws) and `touch_resource()` (sends
                            notifications/resources/updated for fault://static to the calling
                            session), and accept resources/subscribe and unsubscribe (events
                            `subscribed <uri>`, `unsubscribed <uri>`, `touched <uri>`, `frozen S`,
                            `thawed`)
    --mark-tool             also serve `mark(label, seconds=0)`: logs `mark <label>` as the call starts, waits,
                            returns {"label": label}; not idempotent (annotations): counts calls of a step
    --http-fail-every N     over HTTP, answer every Nth tools/call POST with 503 before the MCP app
                            sees it (event `http503 <n>`): a flaky proxy in front of the server
    --start-delay S         sleep S seconds before serving (a slow `npx` start)
    --bad-output-tool       also serve `bad_output(n="seven", structured=true)`: declares the
                            outputSchema {n: integer} (required) and returns structuredContent
                            {n: <its n>}, so the default result violates the tool's own outputSchema
                            (an SDK client refuses it); `n: 7` gives a valid one, `structured: false`
                            one with text content only. Opt-in for the same reason
    --describe NAME=TEXT    one extra dummy tool NAME whose description is TEXT (repeatable; added after
                            --tools, replacing a dummy of the same name): crafted definitions
    --mutation-tools        also serve `redescribe(name, description)`, `reschema(name, property)` (adds a
                            string property to the tool's inputSchema) and `rename_tool(name, new_name)`:
                            each changes a tool's definition and announces tools/list_changed (a rug
                            pull); and `reheader(name, property)`, which adds a property carried in an
                            Mcp-Param header *without* announcing it, so a 2026-07-28 HTTP client with
                            the old schema gets HEADER_MISMATCH. "absent" for an unknown name. Opt-in
    --legacy-only           serve only the 2025-11-25 handshake era (see above)
    --call-events           append `called <tool>` to $FAULT_EVENTS_FILE as each tools/call arrives
                            (counts the calls a client made). Opt-in, like --start-event
    --transport stdio|http|sse, --port N

Environment: `FAULT_EVENTS_FILE` names a file that gets one line per event (see
`tests.fakes`): `started hang <id>`, `cancelled hang <id>` (a `notifications/cancelled`
arrived), `aborted hang <id>` (the handler was torn down otherwise, e.g. the connection
closed), `crash`; the same started/cancelled/aborted triple for `sample` with `hang_after`
(as `hang`), and as `sample <id>`/`elicit <id>` while a handshake-era sample/elicit call waits
for the client's answer; with `--start-event` also `spawned <pid> <unix-time>`; with
`--crash-after-seconds` also `crash-after-seconds` just before that exit; with `--call-events`
also `called <tool>` for every tools/call.

Tools: echo(text), add(a, b), slow(seconds, steps=5), hang(), crash(), pid(), add_tool(name),
remove_tool(name), log(level, message), sample(prompt, hang_after=false), elicit(question), fail(message),
big(kb), env(name), spawn_grandchild(); with `--stdout-tools` also garbage(n), line_flood(mb);
with `--headers-tool` also headers(); with `--bad-output-tool` also bad_output(n, structured);
resource `fault://static`; prompt `greet(name)`.
A `--tools` name equal to a built-in is ignored (with a note on stderr). `add_tool` on an
existing name returns "exists" without a notification; `remove_tool` on a missing one "absent".

Raw stdout (`--stdout-tools`; stdio only, over HTTP these tools return an `isError` result): `garbage(n)` writes n
lines that are not JSON-RPC straight onto the stdout pipe, between frames, then answers normally.
`line_flood(mb)` writes `mb` MiB to stdout with no newline, from a daemon thread (the handler
stays cancellable); the call's own reply would only continue that unterminated line, so a
reader that caps its line length sees the call fail. Once the pipe is full the SDK's own stdout
writer (a non-daemon worker thread) blocks too, e.g. on the cancelled call's error reply, so
after stdin EOF the process lingers -- like a wedged real server -- until its reader drains or
closes the pipe, or signals it. Both write to a duplicate of the original fd 1 taken before the SDK diverts it
(`stdio_server` points fd 1 at stderr while serving). `garbage` lines are shorter than PIPE_BUF,
so each lands whole; a frame being written at that moment (>8 KiB) could still be split by one.

Process group: the SDK stdio client starts the server as a session/group leader, and
`spawn_grandchild` puts `sleep 300` (stdio on /dev/null) into that group. The SDK only kills
the group when the server ignores stdin EOF for ~2 s; this server exits at once on EOF, so
after a normal `Client` exit the grandchild survives -- killing the group is the aggregator's job.

What works in which era, as observed with the SDK 2.3.0 `Client` over stdio (pinned by
tests/fakes_selftest/test_fault_server.py; HTTP notes at the end):

progress (`slow`)
    Both eras: `notifications/progress` against the caller's token (the SDK client uses the
    request id as token when `progress_callback` is given); also teed to `message_handler`.
cancellation (`hang`)
    Both eras: a client timeout (`read_timeout_seconds`) raises `MCPError(REQUEST_TIMEOUT=-32001)`
    and the client sends a courtesy `notifications/cancelled`; a caller-side cancel does too.
    The dispatcher cancels the handler -> `cancelled hang <id>`. Closing stdin mid-call ->
    `aborted hang <id>`.
list_changed (`add_tool`, `remove_tool`)
    2025-11-25: `ctx.session.send_tool_list_changed()` on the calling connection ->
    `message_handler` receives a `ToolListChangedNotification`.
    2026-07-28: published on the server's `SubscriptionBus`; reaches a client only through an
    open `client.listen(tools_list_changed=True)` stream (a `ToolsListChanged` event on the
    subscription, and the frame is teed to `message_handler`). Without a listen stream the
    client hears nothing -- and with `--list-ttl-ms` it keeps serving its cached list.
sampling (`sample`), elicitation (`elicit`)
    2025-11-25: a server->client `sampling/createMessage` / `elicitation/create` request,
    answered by the client's `sampling_callback` / `elicitation_callback`.
    2026-07-28: no server->client requests exist; the tool returns
    `InputRequiredResult(input_requests={"sample"|"elicit": ...})`, `Client.call_tool` runs the
    same callback and retries the call with `inputResponses`, and the retry returns the
    answer (`client.session.call_tool(..., allow_input_required=True)` hands you the round).
    `sample` with `hang_after: true` hangs like `hang` once the reply is in (same events; at
    2026-07-28 in the retry request, so its id is the retry's), for cancellation mid-call.
    A client that did not declare the capability gets an `isError` result in both eras. A
    callback returning `ErrorData`: `isError` result at 2025-11-25, `MCPError` raised by the
    client's driver at 2026-07-28.
log (`log`)
    2025-11-25: sent, filtered by the level a `logging/setLevel` set (default: everything).
    2026-07-28: sent only when the request opted in (`Client(log_level=...)`), at >= that level.
crash (`crash`)
    Both eras: the pending call raises `MCPError(CONNECTION_CLOSED=-32000, "Connection closed")`
    within a few ms (stdout EOF); later calls raise the same at once.

Streamable HTTP: same as above, except that a timed-out call at 2026-07-28 ends the handler
without `notifications/cancelled` (`aborted hang <id>`), and a crash at 2026-07-28 cancels the
pending call and the `async with Client` raises an ExceptionGroup with
`httpx2.RemoteProtocolError` (2025-11-25: `MCPError(-32000, "SSE stream ended without a
response")`). Handshake-era list_changed rides the GET stream, i.e. only the calling session
hears it.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from tests.fakes import EVENTS_FILE_ENV, exit_served, garbage_line

_CHUNK = 64 * 1024


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.fault_server", description="A misbehaving downstream MCP server."
    )
    parser.add_argument("--name", default="fault")
    parser.add_argument("--tools", default="", help="comma-separated extra dummy tool names")
    parser.add_argument("--tool", action="append", default=[], help="one extra dummy tool name (repeatable)")
    parser.add_argument("--fail-start", action="store_true")
    parser.add_argument("--fail-start-file", type=Path)
    parser.add_argument("--stderr-mb", type=float, default=0.0)
    parser.add_argument("--list-ttl-ms", type=int)
    parser.add_argument("--garbage", type=int, default=0, help="non-JSON-RPC lines to write to stdout at start")
    parser.add_argument("--crash-after-seconds", type=float, help="exit(1) this long after serving began")
    parser.add_argument("--stdout-tools", action="store_true", help="also serve garbage(n) and line_flood(mb)")
    parser.add_argument("--start-event", action="store_true", help="log `spawned <pid> <time>` to the events file")
    parser.add_argument("--headers-tool", action="store_true", help="also serve headers() (HTTP transports)")
    parser.add_argument(
        "--bad-output-tool", action="store_true", help="also serve bad_output(n), violating its own outputSchema"
    )
    parser.add_argument("--describe", action="append", default=[], help="NAME=TEXT: a dummy tool described as TEXT")
    parser.add_argument("--mutation-tools", action="store_true", help="also serve redescribe, reschema, rename_tool")
    parser.add_argument("--legacy-only", action="store_true", help="serve the 2025-11-25 handshake era only")
    parser.add_argument(
        "--ops-tools", action="store_true", help="also serve freeze(seconds), touch_resource() and subscriptions"
    )
    parser.add_argument(
        "--mark-tool", action="store_true", help="also serve mark(label, seconds): logs `mark <label>`, not idempotent"
    )
    parser.add_argument("--http-fail-every", type=int, default=0, help="HTTP 503 for every Nth tools/call POST")
    parser.add_argument("--call-events", action="store_true", help="log `called <tool>` to the events file")
    parser.add_argument("--start-delay", type=float, default=0.0, help="sleep this long before serving")
    parser.add_argument("--transport", choices=["stdio", "http", "sse"], default="stdio")
    parser.add_argument("--port", type=int, default=0)
    return parser.parse_args(argv)


def _flood_stderr(mib: float) -> None:
    remaining = int(mib * 1024 * 1024)
    line = b"fault_server stderr flood " + b"." * 101 + b"\n"  # 128 bytes
    chunk = line * (_CHUNK // len(line))
    while remaining > 0:
        view = memoryview(chunk)[: min(remaining, len(chunk))]
        while view:  # a blocking write; blocks for as long as nobody drains the pipe
            written = os.write(2, view)
            view = view[written:]
            remaining -= written


def _start_event() -> None:
    events = os.environ.get(EVENTS_FILE_ENV)
    if events:
        with open(events, "a", encoding="utf-8") as f:
            f.write(f"spawned {os.getpid()} {time.time():.3f}\n")


def _write_garbage(lines: int) -> None:
    for i in range(lines):
        os.write(1, garbage_line(i))


def _exit_later(seconds: float, events: str | None) -> None:
    def fire() -> None:
        if events:
            with open(events, "a", encoding="utf-8") as f:
                f.write("crash-after-seconds\n")
        print(f"fault_server: exiting after {seconds}s (--crash-after-seconds)", file=sys.stderr, flush=True)
        os._exit(1)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    if args.start_event:
        _start_event()
    if args.fail_start:
        print(f"fault_server {args.name}: failing at start (--fail-start)", file=sys.stderr, flush=True)
        sys.exit(3)
    fail_file: Path | None = args.fail_start_file
    if fail_file is not None and fail_file.exists():
        print(f"fault_server {args.name}: failing at start ({fail_file} exists)", file=sys.stderr, flush=True)
        sys.exit(3)
    if args.stderr_mb > 0:
        _flood_stderr(args.stderr_mb)
    if args.garbage > 0 and args.transport == "stdio":
        _write_garbage(args.garbage)
    if args.start_delay > 0:
        time.sleep(args.start_delay)  # a slow start (e.g. npx fetching a package)

    # The SDK import is the slow part of start-up; only servers that get this far pay for it.
    import anyio
    from mcp.shared.exceptions import MCPDeprecationWarning

    from tests.fakes._fault_app import FaultApp, FaultConfig, serve_http, serve_stdio

    # sampling/logging are deprecated at 2026-07-28 but this fake uses them on purpose.
    warnings.simplefilter("ignore", MCPDeprecationWarning)
    extra = [name for name in str(args.tools).split(",") if name.strip()]
    extra += list(args.tool)
    events = os.environ.get(EVENTS_FILE_ENV)
    app = FaultApp(
        FaultConfig(
            name=args.name,
            extra_tools=tuple(dict.fromkeys(extra)),
            descriptions=tuple((name, text) for name, _, text in (item.partition("=") for item in args.describe)),
            list_ttl_ms=args.list_ttl_ms,
            events_file=Path(events) if events else None,
            stdout_tools=args.stdout_tools,
            headers_tool=args.headers_tool,
            bad_output_tool=args.bad_output_tool,
            mutation_tools=args.mutation_tools,
            legacy_only=args.legacy_only,
            ops_tools=args.ops_tools,
            mark_tool=args.mark_tool,
            http_fail_every=args.http_fail_every,
            call_events=args.call_events,
        )
    )
    if args.crash_after_seconds is not None:
        _exit_later(args.crash_after_seconds, events)
    try:
        if args.transport in ("http", "sse"):
            anyio.run(partial(serve_http, app, int(args.port), transport=args.transport))
        else:
            anyio.run(serve_stdio, app)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
    exit_served()
