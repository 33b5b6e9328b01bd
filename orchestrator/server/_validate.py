"""Validation of tool-call arguments against the tool's ``inputSchema`` before forwarding.

Invalid arguments become a tool error that lists what is wrong; the downstream never sees
them. Schemas are compiled once per catalogue, on a tool's first call (jsonschema loads with
the first), with an empty ``$ref`` registry so a schema can never make us fetch anything over
the network.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from orchestrator._schema_messages import checked_validator, describe_errors

if TYPE_CHECKING:
    import mcp_types as types
    from jsonschema.protocols import Validator

__all__ = ["ArgumentValidator"]

logger = logging.getLogger(__name__)

_MAX_PROBLEMS = 10


class ArgumentValidator:
    """Compiles and caches one validator per exposed tool."""

    def __init__(self) -> None:
        self._cache: dict[str, Validator | None] = {}

    def forget(self) -> None:
        """Drop compiled validators (the catalogue changed)."""
        self._cache.clear()

    def _validator(self, tool: types.Tool) -> Validator | None:
        if tool.name in self._cache:
            return self._cache[tool.name]
        validator, problem = checked_validator(tool.input_schema)
        if problem is not None:
            # A broken schema is the downstream's problem: let it judge the arguments itself.
            logger.warning("tool %r has an invalid inputSchema (%s); arguments are not checked", tool.name, problem)
        self._cache[tool.name] = validator
        return validator

    def problems(self, tool: types.Tool, arguments: dict[str, Any]) -> list[str]:
        """What is wrong with ``arguments`` for ``tool`` (empty when they are valid)."""
        validator = self._validator(tool)
        if validator is None:
            return []
        return describe_errors(validator, arguments, _MAX_PROBLEMS)
