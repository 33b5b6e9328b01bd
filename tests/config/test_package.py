"""The public surface of ``orchestrator.config``."""

from __future__ import annotations

import types

import orchestrator.config as config


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(config).items()
        if not name.startswith("_") and name != "annotations" and not isinstance(value, types.ModuleType)
    }

    assert sorted(config.__all__) == sorted(public)
