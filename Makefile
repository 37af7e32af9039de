# NeuroLedger — set-up, demo, tests. Needs only Python 3.11+, Node/npm and make.
# Every target is idempotent: a second run re-installs nothing that is up to date.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY_OK  := $(VENV)/.installed
NODE_OK := node_modules/.installed

.PHONY: setup demo test test-block-time test-fast contracts bench lint clean

setup: $(PY_OK) $(NODE_OK) $(BIN)/anvil $(BIN)/age

# The `age` tool, against which the tests check that our encrypted files interoperate
# (and that users can decrypt with it). From the system packages: Debian/Ubuntu apt, as
# root or through sudo; elsewhere install `age` yourself and rerun.
$(BIN)/age: $(BIN)/python
	@command -v age >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get install -y -qq age >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -qq >/dev/null 2>&1 && $$SUDO apt-get install -y -qq age >/dev/null; } || \
	  { echo "could not install the age tool; install it (apt-get install age) and rerun"; exit 1; }; }
	@ln -sf "$$(command -v age)" $@
	@$@ --version

# Debian's Chromium, which the explorer's browser tests drive (through playwright-core
# from npm: no browser is downloaded). Only the tests need it.
$(BIN)/chromium: $(BIN)/python
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -qq >/dev/null 2>&1 && $$SUDO apt-get install -y -qq chromium >/dev/null; } || \
	  { echo "could not install Chromium; install it (apt-get install chromium) and rerun"; exit 1; }; }
	@ln -sf "$$(command -v chromium)" $@
	@$@ --version

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "NeuroLedger needs Python 3.11 or newer: set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)

$(PY_OK): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,flower]'
	@touch $@

# `npm install` (not `npm ci`): the lock pins every package, but npm records no
# entries for anvil's optional binaries of other platforms, which `npm ci` rejects.
# With the lock present, `npm install` installs exactly the locked versions.
$(NODE_OK): package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

# Link the native anvil binary (not npm's node wrapper) so that the process we
# start, signal and watch is anvil itself.
$(BIN)/anvil: $(NODE_OK) $(BIN)/python
	@bin=$$(ls node_modules/@foundry-rs/anvil-*/bin/anvil 2>/dev/null | head -n1); \
	  test -n "$$bin" || { echo "anvil binary missing from node_modules; rerun: npm ci"; exit 1; }; \
	  ln -sf "$(CURDIR)/$$bin" $@
	@$@ --version | head -n1

demo: setup
	NEUROLEDGER_HOME="$(CURDIR)/.demo-home" $(BIN)/neuroledger demo

# The whole suite on both cores, one file per worker (a file's tests share module fixtures,
# and several files are scenarios whose tests run in order).
test: setup $(BIN)/chromium
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15

# The integration tests and the demo again, on embedded nodes that make a block every 2 s
# as a real network does: nothing may assume a receipt arrives at once. The demo asks for
# 2 confirmations, so federated rounds wait until they are buried. Both spend their time
# waiting for blocks: the demo runs beside the tests, and the tests run in 4 workers (one
# file each: a file's tests share module fixtures). CI (.ci/run) runs it after `make test`.
BLOCK_TIME_HOME := $(CURDIR)/.demo-home-block-time
BLOCK_TIME_LOG := $(CURDIR)/.demo-block-time.log
test-block-time: setup
	@rm -rf "$(BLOCK_TIME_HOME)"
	@NEUROLEDGER_HOME="$(BLOCK_TIME_HOME)" NEUROLEDGER_BLOCK_TIME=2 NEUROLEDGER_CONFIRMATIONS=2 \
	  $(BIN)/neuroledger demo >"$(BLOCK_TIME_LOG)" 2>&1 & demo=$$!; \
	NEUROLEDGER_TEST_BLOCK_TIME=2 $(BIN)/python -m pytest -q -n 4 --dist loadfile --durations=15 tests/integration; \
	tests=$$?; wait $$demo; demo_rc=$$?; \
	echo "demo with a 2 s block time and 2 confirmations (exit $$demo_rc):"; \
	tail -n 25 "$(BLOCK_TIME_LOG)"; \
	[ $$tests = 0 ] && [ $$demo_rc = 0 ]

# The daily loop: every test that needs no node and runs in seconds, on both cores.
# The markers say where a test runs (tests/conftest.py refuses a node test without one).
test-fast: setup
	$(BIN)/python -m pytest -q -n 2 -m "not slow and not anvil and not node"

contracts: setup
	$(BIN)/python -m neuroledger.chain._artifacts .

bench: setup
	$(BIN)/python benchmarks/bench_tx.py
	$(BIN)/python benchmarks/gas_table.py
	$(BIN)/python benchmarks/gas_before_after.py
	$(BIN)/python benchmarks/gas_credits.py
	$(BIN)/python benchmarks/gas_market.py
	$(BIN)/python benchmarks/gas_sales.py
	$(BIN)/python benchmarks/bench_explorer.py
	$(BIN)/python benchmarks/bench_explorer_pages.py
	$(BIN)/python benchmarks/bench_manifest.py
	$(BIN)/python benchmarks/bench_lineage.py
	$(BIN)/python benchmarks/bench_audit.py
	$(BIN)/python benchmarks/bench_fl.py
	$(BIN)/python benchmarks/bench_privacy.py
	$(BIN)/python benchmarks/bench_x402.py
	$(BIN)/python benchmarks/bench_startup.py

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis
