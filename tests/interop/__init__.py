"""Interop tests: real third-party clients, servers and the official conformance suite (see docs/interop.md)."""
