"""Pages of a list result: the cursor a client sends back for the next page.

A cursor names the catalogue version the list was made from and where the next page starts.
A cursor from another version (the catalogue changed between pages) or one that was never
made here is refused, so a client never stitches pages of two catalogues together: it lists
again from the start, as the spec has it for an invalid cursor.

Does not: decide what a caller is shown, or the page size (``serve.page_size``).
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["InvalidCursor", "cursor_for", "page_start"]


class InvalidCursor(ValueError):
    """A list request's cursor is not one this catalogue made (or the catalogue changed since)."""

    def __init__(self) -> None:
        super().__init__("invalid or stale cursor (the catalogue changed, or it is not ours): list again without one")


def cursor_for(version: str, start: int) -> str:
    """The cursor of the page that starts at ``start`` of a list made from catalogue ``version``."""
    return base64.urlsafe_b64encode(f"{version}:{start}".encode()).decode().rstrip("=")


def page_start(cursor: str, version: str) -> int:
    """Where the page ``cursor`` names starts, in a list made from catalogue ``version``.

    Raises:
        InvalidCursor: The cursor is malformed, or of another catalogue version.
    """
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        made_from, _, start = decoded.rpartition(":")
        offset = int(start)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor from None
    if made_from != version or offset < 0:
        raise InvalidCursor
    return offset
