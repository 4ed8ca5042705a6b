# One entry point for set-up, a default run and the test suite.
# Each target creates .venv with python3 -m venv and (re)installs the requirements and the package
# itself (editable, with its console scripts) only when requirements*.txt or pyproject.toml changed
# since the last install (the stamp file records that).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements.stamp
PYTEST_ARGS ?=
# pytest-xdist workers for make test/test-fast (0: no workers, one process). Most slow tests wait on a
# run.py child, so two workers keep both cores of a 2-core machine busy; worksteal evens out the long
# tests at the end. (--dist loadgroup, to train a module's fixture once, does not group under pytest 9.2.)
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist worksteal

LINT_PATHS := genre tests bench run.py hydra_plugins

# Python writes the bytecode of what it imports (venv and checkout), whatever the shell says: a
# PYTHONDONTWRITEBYTECODE=1 left in the environment makes every run.py child of the suite compile genre,
# and with --no-compile torch, from source again (1.5 s more per process start on a 2-core machine).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test test-fast test-under-load lint bench clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# --no-build-isolation: setuptools is already in the venv, so installing needs no package index.
# --no-compile: pip byte-compiles every installed module up front (torch's CUDA build and sympy are tens
# of thousands), half of a fresh venv's install time (206 s against 105 s on a 2-core machine); Python
# compiles the few thousand modules genre imports on first import instead, and keeps them (below).
PIP_INSTALL := $(BIN)/python -m pip install --no-compile
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml | $(BIN)/python
	@# Replaced by genre's own Optuna sweeper; left in an older venv it would pin optuna<3 and register its configs.
	$(BIN)/python -m pip uninstall -y -q hydra-optuna-sweeper 2>/dev/null || true
	$(PIP_INSTALL) -r requirements.txt -r requirements-dev.txt
	$(PIP_INSTALL) --no-deps --no-build-isolation -e .
	# The musicnn wheel only for its pretrained weights (read without TensorFlow): --no-deps, since its
	# own pins (TensorFlow <= 2.15, numpy < 1.17) must not touch the environment.
	$(PIP_INSTALL) --no-deps musicnn==0.1.0
	# The basic-pitch wheel likewise, only for its ONNX file (read without onnx): its own pins want TensorFlow.
	$(PIP_INSTALL) --no-deps basic-pitch==0.4.0
	touch $(STAMP)

## A default run: demo corpus, mel features, CRNN; prints the test accuracy.
run: $(STAMP)
	$(BIN)/python run.py $(ARGS)

## The whole test suite (what CI runs). The shared-study test gets a throw-away PostgreSQL server on
## loopback (.ci/postgres.sh installs PostgreSQL when missing; it makes its own private state dir and
## its password travels in the 0600 file PGPASSFILE names, never in the URL); it is stopped even when tests fail.
## The dashboard test drives headless Chromium (.ci/chromium.sh installs Debian's when missing).
test: $(STAMP)
	@.ci/chromium.sh || echo "make test: no headless Chromium, the dashboard test will skip (fail, with CI set)" >&2
	@pg=; trap '[ -z "$$pg" ] || .ci/postgres.sh stop "$$pg"' EXIT; trap 'exit 130' INT TERM; \
	pg=$$(.ci/postgres.sh start) || { pg=; echo "make test: no PostgreSQL server, its test will skip (fail, with CI set)" >&2; }; \
	url=$$([ -z "$$pg" ] || cat "$$pg/url"); \
	PGPASSFILE="$${pg:+$$pg/pgpass}" GENRE_TEST_POSTGRES_URL="$$url" $(BIN)/python -m pytest $(XDIST) --durations=15 $(PYTEST_ARGS)

## The whole suite beside `stress-ng --cpu 4` (.ci/under_load.sh): a busy machine makes it slower, never red.
test-under-load: $(STAMP)
	.ci/under_load.sh

## The quick loop while developing: every test that neither trains a model nor spawns a process.
test-fast: $(STAMP)
	$(BIN)/python -m pytest $(XDIST) -m "not slow" $(PYTEST_ARGS)

## Static checks: ruff's lint rules and formatting, mypy on the package (settings in pyproject.toml), and
## pip check on the venv (less musicnn's own pins, unmet on purpose: .ci/pip_check.sh).
lint: $(STAMP)
	.ci/pip_check.sh $(BIN)/python
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy genre

## The benchmarks behind BENCHMARKS.md (minutes each; see that file for what they print).
bench: $(STAMP)
	$(BIN)/python bench/models.py
	$(BIN)/python bench/data.py
	$(BIN)/python bench/sweep.py
	$(BIN)/python bench/embeddings.py
	$(BIN)/python bench/pruning.py
	$(BIN)/python bench/async_trials.py

clean-venv:
	rm -rf $(VENV)
