# `make run` and `make test` work on a fresh machine: each creates .venv when it is missing
# and (re)installs the project when pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run serve test bench catalog clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[tray]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[tray,test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/localgate run

serve: $(VENV)/.installed
	$(BIN)/localgate serve

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-test
	$(BIN)/python bench/run.py

catalog: | $(BIN)/python
	$(BIN)/python scripts/build_catalog.py

clean:
	rm -rf $(VENV) build *.egg-info
