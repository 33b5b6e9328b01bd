"""``tracker``: a small project tracker whose tickets live in memory, seeded the same way on every start.

Owns the ``search_tickets``, ``get_ticket`` and ``add_comment`` tools, the
``tracker://tickets/{id}`` resource template, the static ``tracker://about`` resource and
the ``triage_ticket`` prompt. Tickets start from ``examples/data/tickets.json`` (linked to
the services and incidents of ``incidents.sqlite``); comments added at run time are lost
when the process ends. Comment timestamps come from a logical clock (the reference time
2026-11-20T12:00:00Z plus one minute per comment added), never the wall clock, so a session
replays identically.

Run from the repository root::

    python -m examples.servers.tracker                      # stdio
    python -m examples.servers.tracker --transport http --port 8703
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import UserMessage
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from examples.servers._cli import run_server

__all__ = ["REFERENCE_TIME", "SEED_FILE", "TicketStore", "build_server", "main", "seed_tickets"]

REFERENCE_TIME = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SEED_FILE = Path(__file__).resolve().parent.parent / "data" / "tickets.json"

Status = Literal["open", "in_progress", "closed"]
Priority = Literal["urgent", "high", "medium", "low"]
_PRIORITY_RANK: dict[str, int] = {"urgent": 0, "high": 1, "medium": 2, "low": 3}

_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
# Adds a comment each time it is called: not read-only, not idempotent, but never destroys anything.
_APPEND_ONLY = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)


class Comment(BaseModel):
    """A comment on a ticket."""

    id: str = Field(description="Comment id, '<ticket id>-c<n>'.")
    author: str
    body: str
    created_at: str = Field(description="UTC timestamp, ISO 8601 with 'Z'.")


class TicketSummary(BaseModel):
    """The headline fields of a ticket."""

    id: str = Field(description="Ticket id, e.g. 'TCK-116'.")
    title: str
    status: Status
    priority: Priority
    service: str = Field(description="Service the ticket is about (same names as the incidents database).")


class Ticket(TicketSummary):
    """A ticket with its description and comments, oldest comment first."""

    description: str
    assignee: str | None
    reporter: str
    labels: list[str]
    incident: str | None = Field(description="Linked incident id in the incidents database, e.g. 'INC-1014'.")
    created_at: str
    updated_at: str = Field(description="Time of the latest change (creation or last comment).")
    comments: list[Comment]


class TicketSearchResult(BaseModel):
    """Tickets matching a search, most urgent first."""

    items: list[TicketSummary]
    total: int = Field(description="Number of matching tickets, including those beyond the limit.")


class _SeedComment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    author: str
    body: str
    created_at: str


class _SeedTicket(BaseModel):
    """One entry of ``tickets.json``: a ticket without derived fields (comment ids, ``updated_at``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^TCK-[0-9]+$")
    title: str
    status: Status
    priority: Priority
    service: str
    assignee: str | None
    reporter: str
    created_at: str
    labels: tuple[str, ...]
    incident: str | None
    description: str
    comments: tuple[_SeedComment, ...]


_SEED_ADAPTER = TypeAdapter(tuple[_SeedTicket, ...])


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def seed_tickets(path: Path = SEED_FILE) -> list[Ticket]:
    """The initial tickets, freshly built from ``path`` (callers may mutate them).

    Raises:
        OSError: If ``path`` cannot be read.
        pydantic.ValidationError: If the file does not hold a list of seed tickets.
    """
    tickets: list[Ticket] = []
    for seed in _SEED_ADAPTER.validate_json(path.read_bytes()):
        comments = [
            Comment(id=f"{seed.id}-c{n}", author=c.author, body=c.body, created_at=c.created_at)
            for n, c in enumerate(seed.comments, start=1)
        ]
        tickets.append(
            Ticket(
                id=seed.id,
                title=seed.title,
                status=seed.status,
                priority=seed.priority,
                service=seed.service,
                description=seed.description,
                assignee=seed.assignee,
                reporter=seed.reporter,
                labels=list(seed.labels),
                incident=seed.incident,
                created_at=seed.created_at,
                updated_at=max([seed.created_at, *(c.created_at for c in comments)]),
                comments=comments,
            )
        )
    return tickets


class UnknownTicketError(LookupError):
    """No ticket has the requested id."""

    def __init__(self, ticket_id: str) -> None:
        super().__init__(f"unknown ticket {ticket_id!r}; ids look like 'TCK-101' (use search_tickets to find one)")
        self.ticket_id = ticket_id


class TicketStore:
    """The tickets of one server process. Not thread-safe: use it from the event loop only."""

    def __init__(self, tickets: list[Ticket]) -> None:
        self._tickets = {t.id: t for t in tickets}
        self._comments_added = 0

    def get(self, ticket_id: str) -> Ticket:
        """The ticket ``ticket_id`` (case-insensitive).

        Raises:
            UnknownTicketError: If there is no such ticket.
        """
        ticket = self._tickets.get(ticket_id.strip().upper())
        if ticket is None:
            raise UnknownTicketError(ticket_id)
        return ticket

    def search(self, query: str, status: Status | None, service: str | None, limit: int) -> TicketSearchResult:
        """Tickets whose id, title, description, labels or incident contain every word of ``query``."""
        terms = query.lower().split()
        matches = [
            t
            for t in self._tickets.values()
            if (status is None or t.status == status)
            and (service is None or t.service == service.strip().lower())
            and all(term in _haystack(t) for term in terms)
        ]
        matches.sort(key=lambda t: (_PRIORITY_RANK[t.priority], t.id))
        return TicketSearchResult(
            items=[TicketSummary.model_validate(t, from_attributes=True) for t in matches[:limit]],
            total=len(matches),
        )

    def add_comment(self, ticket_id: str, body: str, author: str) -> Comment:
        """Append a comment, stamped by the logical clock.

        Raises:
            UnknownTicketError: If there is no such ticket.
        """
        ticket = self.get(ticket_id)
        self._comments_added += 1
        created_at = _iso(REFERENCE_TIME + timedelta(minutes=self._comments_added))
        comment = Comment(
            id=f"{ticket.id}-c{len(ticket.comments) + 1}", author=author, body=body, created_at=created_at
        )
        ticket.comments.append(comment)
        ticket.updated_at = created_at
        return comment


def _haystack(ticket: Ticket) -> str:
    return " ".join([ticket.id, ticket.title, ticket.description, *ticket.labels, ticket.incident or ""]).lower()


_ABOUT = """\
# Tracker

Project tracker for the production services (auth, checkout, inventory, notifications,
payments, search). Tickets are `TCK-<number>`; many link to an incident (`INC-<number>`)
in the incidents database.

- Statuses: `open`, `in_progress`, `closed`.
- Priorities, most urgent first: `urgent`, `high`, `medium`, `low`.
- Tools: `search_tickets` (find), `get_ticket` (details and comments), `add_comment` (append a note).
- Resources: `tracker://tickets/{id}` returns one ticket as JSON.
- Prompt: `triage_ticket(id)` drafts a triage of one ticket.
"""

TicketId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
    Field(description="Ticket id, e.g. 'TCK-116'.", examples=["TCK-116"]),
]


def build_server(seed_file: Path = SEED_FILE) -> MCPServer:
    """Create the ``tracker`` server with tickets freshly seeded from ``seed_file``.

    Raises:
        OSError: If ``seed_file`` cannot be read.
        pydantic.ValidationError: If ``seed_file`` is malformed.
    """
    store = TicketStore(seed_tickets(seed_file))
    server = MCPServer(
        name="tracker",
        title="Project tracker",
        description="Tickets for the production services: search, read, and comment.",
        instructions=(
            "Project tracker. Find tickets with search_tickets, read one with get_ticket, and record findings "
            "with add_comment. Tickets link to incidents in the incidents database."
        ),
        version="0.1.0",
    )

    # The tools are async so they all run on the event loop: the store needs no lock.
    @server.tool(name="search_tickets", title="Search tickets", annotations=_READ_ONLY)
    async def search_tickets(
        query: Annotated[
            str,
            Field(
                max_length=200,
                description="Words that must all appear in the id, title, description, labels or linked "
                "incident (case-insensitive); empty matches every ticket.",
            ),
        ] = "",
        status: Annotated[Status | None, Field(description="Only tickets with this status.")] = None,
        service: Annotated[str | None, Field(description="Only tickets about this service, e.g. 'checkout'.")] = None,
        limit: Annotated[int, Field(ge=1, le=100, description="Most tickets to return.")] = 20,
    ) -> TicketSearchResult:
        """Search tickets by words, status and service; returns summaries, most urgent first, and the total count.

        Use get_ticket for a ticket's description and comments. Searching an incident id such as 'INC-1014'
        finds the tickets linked to it.
        """
        return store.search(query, status, service, limit)

    @server.tool(name="get_ticket", title="Get a ticket", annotations=_READ_ONLY)
    async def get_ticket(id: TicketId) -> Ticket:
        """Get one ticket with its description, assignee, labels, linked incident and all comments."""
        try:
            return store.get(id)
        except UnknownTicketError as exc:
            raise ToolError(str(exc)) from exc

    @server.tool(name="add_comment", title="Comment on a ticket", annotations=_APPEND_ONLY)
    async def add_comment(
        id: TicketId,
        body: Annotated[
            str,
            StringConstraints(strip_whitespace=True, min_length=1, max_length=4000),
            Field(description="Comment text (plain text or Markdown)."),
        ],
        author: Annotated[
            str,
            StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
            Field(description="Who is commenting."),
        ] = "orchestrator",
    ) -> Comment:
        """Append a comment to a ticket and return it. Each call adds another comment (not idempotent)."""
        try:
            return store.add_comment(id, body, author)
        except UnknownTicketError as exc:
            raise ToolError(str(exc)) from exc

    @server.resource(
        "tracker://tickets/{id}",
        name="ticket",
        title="Ticket",
        description="One ticket with its comments, as JSON.",
        mime_type="application/json",
    )
    async def ticket_resource(id: str) -> str:
        try:
            return store.get(id).model_dump_json(indent=2)
        except UnknownTicketError as exc:
            raise ResourceNotFoundError(str(exc)) from exc

    @server.resource(
        "tracker://about",
        name="about",
        title="About the tracker",
        description="What the tracker holds and how to use its tools.",
        mime_type="text/markdown",
    )
    def about() -> str:
        return _ABOUT

    @server.prompt(name="triage_ticket", title="Triage a ticket")
    async def triage_ticket(
        id: Annotated[str, Field(description="Ticket id, e.g. 'TCK-116'.")],
    ) -> list[UserMessage]:
        """Draft a triage of one ticket: likely cause, evidence to gather, priority check and next step."""
        try:
            ticket = store.get(id)
        except UnknownTicketError as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from exc
        return [
            UserMessage(
                f"Triage ticket {ticket.id} ({ticket.service}, {ticket.status}, priority {ticket.priority}).\n\n"
                f"```json\n{ticket.model_dump_json(indent=2)}\n```\n\n"
                "1. Summarise the problem in two sentences.\n"
                "2. Gather evidence: recent deploys and incidents for the service (incidents database), "
                "latency and error-rate metrics and top errors around the ticket's creation time (analytics).\n"
                "3. Say whether the priority is right, and why.\n"
                "4. Propose the next concrete step and who should own it.\n"
                f"Record the triage with add_comment on {ticket.id}."
            )
        ]

    return server


def main() -> None:
    """Run the server (stdio by default; ``--transport http --port N`` for HTTP on 127.0.0.1)."""
    run_server(build_server(), prog="python -m examples.servers.tracker", default_port=8703)


if __name__ == "__main__":
    main()
