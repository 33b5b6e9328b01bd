"""Runnable examples for mcp-orchestrator: downstream servers, configs and sample data."""
