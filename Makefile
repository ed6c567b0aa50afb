# The project's commands. `make test` and `make demo` each do all of their own set-up on a
# fresh machine (Debian bookworm, root): virtualenv, apt/npm packages, local registries.
SHELL := /bin/bash
PYTHON_FILES := pipe tests bench
RUFF := .venv/bin/ruff
# Test files run in parallel (pytest-xdist): WORKERS processes, each a session with its own names.
# A file's tests stay on one worker (loadfile), so its module fixtures are made once and its last
# test may check the whole module's counts. (loadgroup would allow finer groups, but with pytest
# 9.2 it silently stops grouping: pytest-xdist issue #1386.) Files go out in collection order
# (tests/conftest.py puts the long fault-suite files first), not xdist's default of the files with
# the most tests first, which left the one-test fault files, a minute or two each, for the end.
# The 15 slowest tests are printed. On 2 cores 4 workers were no faster than 3 (530 s against
# 545 s, load average 6-8 against 3-4: Maven's JVMs and the in-process pipe runs share the cores).
WORKERS ?= 3
PARALLEL := -n $(WORKERS) --dist loadfile --no-loadscope-reorder --durations=15

.PHONY: test deps lint format unit integration e2e up down demo bench

test: deps lint up
	tests/run-pytest $(PARALLEL) tests

deps:
	scripts/venv
	sandbox/install

lint: deps
	$(RUFF) check $(PYTHON_FILES)
	$(RUFF) format --check $(PYTHON_FILES)

format: deps
	$(RUFF) check --fix $(PYTHON_FILES)
	$(RUFF) format $(PYTHON_FILES)

unit:
	scripts/venv
	tests/run-pytest tests/unit

integration: deps up
	tests/run-pytest $(PARALLEL) tests/integration

e2e: deps up
	tests/run-pytest $(PARALLEL) tests/e2e

up:
	sandbox/up

down:
	sandbox/down

demo: deps up
	scripts/demo

bench: deps up
	.venv/bin/python -m bench
