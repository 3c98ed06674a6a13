# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## Run a Bell-state sampler on the embedded `local` resource and print the counts.
demo: $(STAMP)
	@mkdir -p out
	$(BIN)/qrmi-task-runner local examples/qiskit/bell_sampler.json -o out/bell_result.json
	$(BIN)/qrmi-result summary out/bell_result.json

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## The whole test suite (lint included).
test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
