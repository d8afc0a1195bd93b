PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SCALE ?= paper

.PHONY: venv install dev reproduce test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The editable install is redone only when pyproject.toml changes (a stamp file), so that a second
# `make reproduce` starts computing at once instead of re-running pip.
# It also compiles the training kernels once (numba's cache), so that the first run does not pay it.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -c "from sparsenet.experiments.runner import warm_up; warm_up()"
	touch $@

install: $(VENV)/.installed

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
