# The front door: every command a person or CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
BIN := target/release/eks-audit-detector

.PHONY: help run test lint fmt clippy bench clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-8s %s\n", $$1, $$2}'

run: ## Build and replay the sample events in events/ locally (no AWS account needed)
	$(CARGO) build --release --locked --bin eks-audit-detector
	$(BIN) replay events/

test: ## Install what the tests need and run every test
	$(CARGO) test --locked --all-targets

lint: fmt clippy ## cargo fmt --check and clippy -D warnings

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --locked --all-targets -- -D warnings

bench: ## Throughput benchmarks (criterion) on generated ~1 MB batches
	$(CARGO) bench --locked --bench pipeline

clean: ## Remove build outputs
	$(CARGO) clean
