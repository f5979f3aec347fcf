# ambit: everyday commands. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help demo test test-rust test-python python-dev conformance lint fmt bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-12s %s\n", $$1, $$2}'

demo: ## the help-desk scenario end to end: agents minted, decisions with chain, reasons and cause
	$(CARGO) run --quiet -p ambit --example helpdesk

VENV := .venv
PY := $(VENV)/bin/python

test: test-rust test-python lint ## every test: Rust (unit, vectors, Cedar conformance, properties), Python, lints

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "maturin>=1.7,<2" "pytest>=7" "langchain-core>=0.2" "mypy>=1.8" "cedarpy"

python-dev: $(PY) ## build the Python extension into .venv (maturin develop)
	cd bindings-python && VIRTUAL_ENV=$(CURDIR)/$(VENV) ../$(VENV)/bin/maturin develop --quiet

test-python: python-dev ## pytest on the Python binding, shared vectors included; stubs checked
	$(PY) -m pytest -q bindings-python/tests
	cd bindings-python && ../$(PY) -m mypy.stubtest ambit._ambit

test-rust: ## the Rust workspace tests
	$(CARGO) test --workspace --all-targets
	$(CARGO) test -p ambit --doc

conformance: ## only Cedar's integration corpus through ambit
	$(CARGO) test -p ambit --release --test conformance -- --nocapture

lint: ## clippy on everything, warnings are errors
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the Rust code
	$(CARGO) fmt --all

bench: ## criterion benchmarks (peers measured in the same run)
	$(CARGO) bench -p ambit-benches
