"""Fixtures of the workflow tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from orchestrator.workflow import set_testing

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def instant_retries() -> Iterator[None]:
    """Retry waits are computed and reported, but not slept."""
    set_testing(True)
    yield
    set_testing(False)
