# The two set-up commands: `make run` and `make test`. Everything else they need is installed
# here, from PyPI, into ./.tools (uv) and ./.venv (the workspace, pinned by uv.lock).
PYTHON ?= python3
UV := .tools/bin/uv
HOST ?= 127.0.0.1
PORT ?= 8000
# pytest-xdist processes running the tests: the tests mostly wait (on PostgreSQL, Redis, child
# servers), so three keep the CI machine's two cores busier than two do.
TEST_WORKERS ?= 3
# Some machines set PYTHONDONTWRITEBYTECODE=1: then every process (each test worker, each server
# and command a test starts) compiles every module it imports from source, about 1 s each.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install run test test-all bench clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv>=0.5"

.venv/.synced: $(UV) uv.lock pyproject.toml sdk/pyproject.toml kernel/pyproject.toml
	$(UV) sync --frozen --all-packages
	@touch $@

install: .venv/.synced ## Install the workspace (kernel, SDK, plugins, test tools).

run: install ## Serve the combined API on embedded defaults at http://$(HOST):$(PORT).
	$(UV) run --frozen coderic serve --migrate --host $(HOST) --port $(PORT)

test: install ## Run the tests (CODERIC_TEST_DATABASES=sqlite,postgresql for both databases).
	$(UV) run --frozen pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

bench: install ## Run the benchmarks; each prints ratios against a baseline of the same run.
	$(UV) run --frozen python bench/run.py

clean:
	rm -rf .venv .tools var
