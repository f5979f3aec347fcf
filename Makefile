# ambit: everyday commands. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help redis demo test test-rust test-python python-dev test-node node-dev test-quickstarts conformance lint fmt bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-12s %s\n", $$1, $$2}'

demo: ## the help-desk scenario end to end: agents minted, decisions with chain, reasons and cause
	@echo "building the demo (the first build compiles Cedar: a few minutes on 2 cores)"
	$(CARGO) run -p ambit --example helpdesk

VENV := .venv
PY := $(VENV)/bin/python

test: test-rust test-python test-node test-quickstarts lint ## every test: Rust (unit, vectors, Cedar conformance, properties), Python, Node, quickstarts, lints

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "maturin>=1.7,<2" "pytest>=7" "langchain-core==1.8.3" "langgraph==1.2.0" "mcp==2.3.0" "mypy>=1.8" "cedarpy"

python-dev: $(PY) ## build the Python extension into .venv (maturin develop)
	@echo "building the Python extension (the first build compiles Cedar: several minutes on 2 cores)"
	cd bindings-python && VIRTUAL_ENV=$(CURDIR)/$(VENV) ../$(VENV)/bin/maturin develop

test-python: python-dev node-dev redis ## pytest on the Python binding, shared vectors included; stubs checked
	$(PY) -m pytest -q bindings-python/tests
	cd bindings-python && ../$(PY) -m mypy.stubtest ambit._ambit

redis: ## install redis-server (Debian package) when missing; the fleet tests start their own on loopback
	@command -v redis-server >/dev/null || { echo "installing redis-server (Debian package)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null; }
	@redis-server --version

test-rust: redis ## the Rust workspace tests (the fleet's start their own redis-server)
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

bindings-node/node_modules: bindings-node/package-lock.json
	cd bindings-node && npm ci --no-audit --no-fund
	touch $@

node-dev: bindings-node/node_modules ## build the Node addon; regenerates index.js / index.d.ts and ambit.d.ts's DenyCause
	cd bindings-node && npx napi build --platform --js index.js --dts index.d.ts && node generate-types.js

test-node: node-dev python-dev redis ## node --test on the Node binding (shared vectors included; a Python process issues the credentials it verifies), tsc, and a drift check
	git diff --exit-code -- bindings-node/index.js bindings-node/index.d.ts bindings-node/ambit.d.ts || \
	  (echo "generated index.js / index.d.ts / ambit.d.ts's DenyCause drifted from the Rust source: commit the rebuilt files"; exit 1)
	cd bindings-node && npm test

test-quickstarts: python-dev node-dev ## the README quickstarts and docs/integrations.md examples, each pasted into a new project outside the repo
	$(PY) tests/quickstarts.py

conformance: ## only Cedar's integration corpus through ambit
	$(CARGO) test -p ambit --release --test conformance -- --nocapture

lint: ## clippy on everything, warnings are errors
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the Rust code
	$(CARGO) fmt --all

bench: $(PY) bindings-node/node_modules ## every benchmark: Rust vs raw cedar-policy, Python vs cedarpy, Node vs cedar-wasm
	$(CARGO) bench -p ambit-benches
	$(CARGO) run --release -q -p ambit-benches --bin export-workload -- target/bench-workload/p100 100
	cd bindings-node && npx napi build --platform --release --js index.js --dts index.d.ts
	cd bindings-python && VIRTUAL_ENV=$(CURDIR)/$(VENV) ../$(VENV)/bin/maturin develop --release --quiet
	$(PY) bindings-python/bench/bench.py target/bench-workload/p100
	node bindings-node/bench/bench.mjs target/bench-workload/p100
