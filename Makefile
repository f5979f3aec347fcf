# ambit: everyday commands. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help demo test test-rust conformance lint fmt bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-12s %s\n", $$1, $$2}'

demo: ## the help-desk scenario end to end: agents minted, decisions with chain, reasons and cause
	$(CARGO) run --quiet -p ambit --example helpdesk

test: test-rust ## every test: Rust (unit, vectors, Cedar conformance, properties), lints
	$(CARGO) clippy --workspace --all-targets -- -D warnings

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
