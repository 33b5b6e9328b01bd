"""The name and version of mcp-orchestrator: the one place each is written.

``pyproject.toml`` reads the version (``[tool.setuptools.dynamic]``); the server's
``serverInfo``, the downstream clients' ``clientInfo``, ``/status``, the instrumentation
scope of our spans and ``orchestrator --version`` import them. Bottom module: imports nothing.
"""

__all__ = ["NAME", "__version__"]

NAME = "mcp-orchestrator"

__version__ = "0.1.0"
