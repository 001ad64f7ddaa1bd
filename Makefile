# The front door: every command a person or CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
PYTHON ?= python3
BIN := target/release/eks-audit-detector
VENV := .venv
TEST_STAMP := $(VENV)/.test-deps

.PHONY: help run test lint fmt clippy bench clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-8s %s\n", $$1, $$2}'

run: ## Build and replay the sample events in events/ locally (no AWS account needed)
	$(CARGO) build --release --locked --bin eks-audit-detector
	$(BIN) replay events/

test: $(TEST_STAMP) ## Install what the tests need and run every test
	TEST_PYTHON=$(CURDIR)/$(VENV)/bin/python $(CARGO) test --locked --all-targets

# moto (local DynamoDB, SNS and SQS APIs), pinned, in a project-local virtualenv.
$(TEST_STAMP): tests/support/requirements.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/support/requirements.txt
	touch $@

lint: fmt clippy ## cargo fmt --check and clippy -D warnings

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --locked --all-targets -- -D warnings

bench: $(TEST_STAMP) ## Benchmarks (criterion): pipeline throughput, and invocations against local AWS APIs
	$(CARGO) bench --locked --bench pipeline
	TEST_PYTHON=$(CURDIR)/$(VENV)/bin/python $(CARGO) bench --locked --bench invocation

clean: ## Remove build outputs and the tool virtualenv
	$(CARGO) clean
	rm -rf $(VENV) .aws-sam
