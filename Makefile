# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv with pip
# when it is missing and installs hopose with its dev extras first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hopose-installed

.PHONY: demo test lint format bench gpu-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# A demo run starts afresh in runs/demo (a run refuses a used folder, docs/training.md).
demo: $(STAMP)
	rm -rf runs/demo
	$(BIN)/hopose demo --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_physics.py

# On a machine with a CUDA GPU: CUDA tests, a torchrun DDP run, training speed (benchmarks/gpu_check.py).
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py

clean:
	rm -rf $(VENV) runs
