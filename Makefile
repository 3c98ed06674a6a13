# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Three test workers per core: the tests wait on fakes, timers and retry back-offs more
# than they compute (on 2 cores, the suite without Slurm and coverage: 4 workers 2 min
# 27 s, 6 workers 1 min 52 s, 8 workers 1 min 56 s).
PYTEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( 3 * n )))

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

## The whole test suite (lint included), on every core (pytest-xdist, 3 workers per core;
## PYTEST_WORKERS=N to choose), with a coverage summary of qrmi_tasks and generators (runner subprocesses
## included). As root it also starts a single-node Slurm cluster for tests/test_slurm.py
## (then a cluster that cannot start fails those tests). A test process that dies is not
## replaced: the run fails, naming its test (a replacement can hang --dist loadgroup for good,
## pytest-dev/pytest-xdist#1323, #1378).
test: lint
	@if [ "$$(id -u)" = 0 ] && [ "$${QRMI_SKIP_SLURM:-0}" != 1 ]; then \
	  export QRMI_EXPECT_SLURM=1; \
	  bash tests/slurm/start-slurm.sh || echo "Slurm did not start: its tests will fail"; \
	else \
	  echo "not root (or QRMI_SKIP_SLURM=1): the Slurm tests will be skipped"; \
	fi; \
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --max-worker-restart=0 \
	  --cov --cov-report=term

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
