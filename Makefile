# weightvault: `make demo` and `make test` are the two quickstart commands.
# Both bootstrap everything from the machine's python3: a private uv, then the
# locked environment in .venv (uv.lock pins every version).

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test check lint typecheck layers unit bench clean up down browser

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

$(BIN)/weightvault: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

setup: $(BIN)/weightvault

demo: setup
	$(BIN)/weightvault demo

up: setup
	$(BIN)/weightvault up

down: setup
	$(BIN)/weightvault down

lint: setup
	$(BIN)/ruff format --check src tasks flows tests bench
	$(BIN)/ruff check src tasks flows tests bench

typecheck: setup
	$(BIN)/mypy

layers: setup
	$(BIN)/lint-imports

check: lint typecheck layers

browser:
	@bash .ci/install-browser || echo "Chromium not installed: the browser test will be skipped"

unit: setup browser
	$(BIN)/pytest

test: check unit

bench: setup
	$(BIN)/python bench/run.py

clean:
	rm -rf .tools $(VENV) .pytest_cache .mypy_cache .ruff_cache
