"""The version of mcp-orchestrator: the one place it is written.

``pyproject.toml`` reads it (``[tool.setuptools.dynamic]``); the server's ``serverInfo``, the
downstream clients' ``clientInfo`` and ``orchestrator --version`` import it. Bottom module:
imports nothing.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
