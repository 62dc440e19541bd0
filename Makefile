# `make test` and the main jobs set themselves up: a .venv built with the machine's python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test bench bench-matching clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install whenever the pinned dependencies change.
$(VENV)/.installed: $(BIN)/activate setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed
	$(BIN)/python -m benchmarks.dsp

bench-matching: $(VENV)/.installed
	$(BIN)/python -m benchmarks.matching

clean:
	rm -rf $(VENV) build *.egg-info
