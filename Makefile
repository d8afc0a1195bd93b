PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SCALE ?= paper

.PHONY: venv install dev reproduce test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

dev: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"

reproduce: install
	$(BIN)/sparsenet reproduce --scale $(SCALE) --out results

test: dev
	$(BIN)/python -m pytest -q

bench: dev
	$(BIN)/python -m pip install --quiet "torch==2.13.0" || echo "torch not available: the PyTorch comparison is skipped"
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) results build *.egg-info src/*.egg-info
