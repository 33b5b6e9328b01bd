"""End-to-end tests of the example servers and configs in ``examples/``."""
