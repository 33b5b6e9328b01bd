"""Tests of orchestrator.catalog: naming, merging and routing."""
