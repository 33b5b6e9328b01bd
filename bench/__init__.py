"""Benchmarks (not timed tests). Run from the repository root, e.g. ``python -m bench.proxy_latency``."""
