# mcp-orchestrator: the README's commands. `make demo` runs the main job on the bundled
# example; `make test` runs every check CI runs. Both set up what they need first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := tests/node/node_modules/.installed

.PHONY: setup demo test lint typecheck unit bench clean

setup: $(STAMP) $(NODE_STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# Browser tests drive Debian's chromium (/usr/bin/chromium); Playwright downloads no browser.
	# `bench` (FastMCP, for `make bench`) too: pyright checks bench/, which imports it.
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/pip install --quiet -e ".[dev,search,bench]"
	touch $(STAMP)

$(NODE_STAMP): tests/node/package.json
	cd tests/node && npm install --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/orchestrator tools --config examples/orchestrator.yaml
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/orchestrator run incident_report --config examples/orchestrator.yaml \
		--input '{"service": "checkout", "hours": 6}'

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check orchestrator tests examples bench

typecheck: $(STAMP)
	$(BIN)/pyright

unit: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest

test: lint typecheck unit

# The whole comparison (docs/benchmarks.md, "Against the field"): several minutes.
bench: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench

clean:
	rm -rf $(VENV) tests/node/node_modules .pytest_cache .ruff_cache
