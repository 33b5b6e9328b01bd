"""Who started a run, as the journal keeps it: light, so the server names it without loading SQL."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RunPrincipal"]


@dataclass(frozen=True, slots=True)
class RunPrincipal:
    """Who started a run: the OAuth client and the person or service behind it.

    Two principals are the same when client and subject are: a run is theirs alone.

    Attributes:
        client_id: The client (or token) id; ``None`` over stdio.
        subject: The subject, when known.
        grant: What they were granted when the run began (selectors); ``None`` for everything.
    """

    client_id: str | None
    subject: str | None = None
    grant: tuple[str, ...] | None = field(default=None, compare=False)
