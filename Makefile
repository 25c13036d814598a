# The two set-up commands of the README: `make lab` and `make test`.
# Each creates or refreshes .venv/ in the repo root, installs everything, then runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install lab test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,dev]"

lab: install
	@port="$(if $(filter command line,$(origin PORT)),$(PORT),$(or $(TFSERVE_LAB_PORT),8888))"; flags=""; \
	if { [ -n "$$CI" ] && [ "$$CI" != false ]; } || { [ "$$(uname -s)" != Darwin ] && [ -z "$$DISPLAY$$WAYLAND_DISPLAY" ]; }; then \
		flags="--no-browser"; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then flags="$$flags --allow-root"; fi; \
	JUPYTER_TOKEN="$${JUPYTER_TOKEN:-$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(24))')}"; export JUPYTER_TOKEN; \
	echo "JupyterLab on notebooks/01_quickstart.ipynb: http://127.0.0.1:$$port/lab/tree/notebooks/01_quickstart.ipynb?token=$$JUPYTER_TOKEN"; \
	exec $(BIN)/jupyter lab notebooks/01_quickstart.ipynb --ServerApp.root_dir=. --ServerApp.ip=127.0.0.1 \
		--ServerApp.port=$$port --ServerApp.port_retries=0 $$flags

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd labextension && npm run lint:check --silent

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	cd labextension && npm run lint:check --silent && npm test --silent
	$(BIN)/python -m pytest

bench: install
	bash bench/setup.sh
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.hey_rest --json bench/results/hey_rest.json
	$(BIN)/python -m bench.busy_cell --json bench/results/busy_cell.json

clean:
	rm -rf $(VENV) build dist *.egg-info
