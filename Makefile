# The two commands a newcomer needs are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
export PATH := $(HOME)/.local/bin:$(PATH)
UV := uv
PORT ?= 8501
CASES ?= 3000

.PHONY: setup demo test test-fast lint typecheck bench screenshots clean

setup:  ## install uv (if needed) and the locked environment
	./scripts/bootstrap.sh --group dev

demo: setup  ## synthetic sample -> Prefect flows -> DuckDB -> dashboard on http://localhost:$(PORT)
	$(UV) run timelines demo --cases $(CASES) --port $(PORT)

test: setup  ## everything CI runs: lint, types, the whole test suite with the real browser
	./scripts/install-browser.sh
	./scripts/install-postgres.sh
	$(UV) run ruff check .
	$(UV) run mypy
	$(UV) run pytest -q

test-fast: ## the suite without the browser, the Prefect server and slow tests (under two minutes)
	$(UV) run pytest -q -m "not browser and not slow and not prefect"

bench: setup  ## benchmarks (minutes; writes a table for the README)
	$(UV) run python -m bench

screenshots: setup
	$(UV) run python scripts/screenshots.py

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache
