# The project's commands. `make test` and `make demo` each do all of their own set-up on a
# fresh machine (Debian bookworm, root): virtualenv, apt/npm packages, local registries.
SHELL := /bin/bash
PYTHON_FILES := pipe tests bench
RUFF := .venv/bin/ruff

.PHONY: test deps lint format unit integration e2e up down demo bench

test: deps lint up
	tests/run-pytest tests

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
	tests/run-pytest tests/integration

e2e: deps up
	tests/run-pytest tests/e2e

up:
	sandbox/up

down:
	sandbox/down

demo: deps up
	scripts/demo

bench: deps up
	.venv/bin/python -m bench
