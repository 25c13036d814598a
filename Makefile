# The two set-up commands of the README: `make lab` and `make test`.
# Each creates or refreshes .venv/ in the repo root, installs everything, then runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED ?= ../shared

.PHONY: install lab test lint serve-demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,dev]"

lab: install
	$(BIN)/tfserve-lab serve --rest_api_port=8501 --port=8500 --model_name=half_plus_two \
		--model_base_path=$(abspath $(SHARED))/testdata/tf_serving/saved_model_half_plus_two_cpu

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd labextension && npm test --silent
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) build dist *.egg-info
