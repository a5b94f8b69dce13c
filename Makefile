# weightvault: `make demo` and `make test` are the two quickstart commands.
# Both bootstrap everything from the machine's python3: a private uv, then the
# locked environment in .venv (uv.lock pins every version).

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-fast test-repeat check lint typecheck layers unit unit-postgres bench clean up down browser

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
	$(BIN)/ruff format --check src tasks flows tests bench pipeline
	$(BIN)/ruff check src tasks flows tests bench pipeline

typecheck: setup
	$(BIN)/mypy

layers: setup
	$(BIN)/lint-imports

check: lint typecheck layers

browser:
	@bash .ci/install-tools || echo "Chromium, skopeo or docker-registry not installed: their tests will be skipped"

# The suite runs on WORKERS pytest-xdist processes (default 2, one per core), each
# with its own services on free ports; a test file stays on one worker. WORKERS=0
# runs it in this process, serially.
WORKERS ?= 2
PARALLEL = $(if $(filter 0,$(WORKERS)),,-n $(WORKERS) --dist loadfile)

unit: setup browser
	$(BIN)/pytest $(PARALLEL)

# The core packages' tests again with every test vault's catalog in a PostgreSQL
# database of its own (the suite above runs them on SQLite).
CORE_ON_POSTGRES = tests/unit/artifacts tests/unit/lifecycle
unit-postgres: setup browser
	WEIGHTVAULT_TEST_CATALOG=postgresql $(BIN)/pytest $(PARALLEL) $(CORE_ON_POSTGRES)

test: check unit unit-postgres

# The fast tier (under 2 minutes): the unit tests that start no service (no S3 server,
# no Prefect) and need no reference DVC pipeline; tests/conftest.py marks them `fast`.
test-fast: setup
	$(BIN)/pytest -m fast

# The suite N times in a row (default 3), stopping at the first failing round:
# nearly every test runs against real services (SeaweedFS, Prefect, Chromium), so
# this is how a flake shows. TESTS narrows it, e.g. TESTS=tests/e2e/test_promote_ui.py.
N ?= 3
TESTS ?=
test-repeat: setup browser
	@for i in $$(seq 1 $(N)); do \
		echo "=== test-repeat: round $$i of $(N)"; \
		$(BIN)/pytest -x $(PARALLEL) $(TESTS) || { echo "=== test-repeat: round $$i of $(N) FAILED"; exit 1; }; \
	done; \
	echo "=== test-repeat: all $(N) rounds passed"

bench: setup
	$(BIN)/python bench/run.py

clean:
	rm -rf .tools $(VENV) .pytest_cache .mypy_cache .ruff_cache
