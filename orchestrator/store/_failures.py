"""How a database failure reaches the rest of the program: a ``StoreError`` that says what could not be done.

The driver's message may quote SQL or values, so only the kind of failure is told; the URL is
shown without its password.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["database_failure", "shown_url"]


def shown_url(engine: AsyncEngine) -> str:
    """The engine's database URL as it may be shown: password hidden."""
    return engine.url.render_as_string(hide_password=True)


def database_failure(engine: AsyncEngine, action: str, exc: DBAPIError) -> StoreError:
    """The ``StoreError`` for ``exc``, raised while trying to ``action`` (``"read pins"``)."""
    reason = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
    return StoreError(shown_url(engine), f"cannot {action}: {reason}")
