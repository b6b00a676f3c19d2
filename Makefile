# Two commands do all set-up on a fresh machine with Python 3.11:
#   make demo   -> install into .venv, then run the main job on the built-in default data
#   make test   -> install into .venv, then run the test suite
# GPU users override the torch pin, e.g.:
#   make demo TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
DEMO_OUT ?= runs/demo
PYTEST_ARGS ?= -n 2

BIN := $(VENV)/bin
STAMP := $(VENV)/.pointcalo-installed

.PHONY: demo test install lint clean bench

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pointcalo demo --out $(DEMO_OUT)

# one torch/OpenMP thread per test worker: two workers on two cores, no oversubscription
test: $(STAMP)
	OMP_NUM_THREADS=1 MPLBACKEND=Agg $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check pointcalo voxelize tests benchmarks scripts
	$(BIN)/ruff format --check pointcalo voxelize tests benchmarks scripts

bench: $(STAMP)
	$(BIN)/python benchmarks/io_bench.py
	$(BIN)/python benchmarks/voxelize_bench.py
	$(BIN)/python benchmarks/simulate_bench.py

clean:
	rm -rf $(VENV) runs .pytest_cache
