"""End-to-end tracing: real processes exporting real OTLP/HTTP to a receiver in the test."""
