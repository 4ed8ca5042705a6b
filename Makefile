# One entry point for set-up, a default run and the test suite.
# Each target creates .venv with python3 -m venv and (re)installs the requirements only when
# requirements.txt changed since the last install (the stamp file records that).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements.stamp
PYTEST_ARGS ?=

.PHONY: run test bench clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install -r requirements.txt
	# The musicnn wheel only for its pretrained weights (read without TensorFlow): --no-deps, since its
	# own pins (TensorFlow <= 2.15, numpy < 1.17) must not touch the environment.
	$(BIN)/python -m pip install --no-deps musicnn==0.1.0
	touch $(STAMP)

## A default run: demo corpus, mel features, CRNN; prints the test accuracy.
run: $(STAMP)
	$(BIN)/python run.py $(ARGS)

## The whole test suite (what CI runs). The shared-study test gets a throw-away PostgreSQL server on
## loopback (.ci/postgres.sh installs PostgreSQL when missing); it is stopped even when tests fail.
test: $(STAMP)
	@pg=$$(mktemp -d /tmp/genre-pg.XXXXXX); \
	trap '.ci/postgres.sh stop "$$pg"' EXIT; trap 'exit 130' INT TERM; \
	url=$$(.ci/postgres.sh start "$$pg") || echo "make test: no PostgreSQL server, its test will be skipped" >&2; \
	GENRE_TEST_POSTGRES_URL="$$url" $(BIN)/python -m pytest $(PYTEST_ARGS)

## The benchmarks behind BENCHMARKS.md (minutes each; see that file for what they print).
bench: $(STAMP)
	$(BIN)/python bench/models.py
	$(BIN)/python bench/data.py
	$(BIN)/python bench/sweep.py
	$(BIN)/python bench/embeddings.py

clean-venv:
	rm -rf $(VENV)
