"""Tests of orchestrator.workflow: spec, expressions, compiler, executor."""
