# The front door: every command a person or CI runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
PYTHON ?= python3
BIN := target/release/eks-audit-detector
EVENT ?= events/01-public-403-burst.json

# Project-local virtualenvs, created on demand from pinned requirements:
# .venv holds the test stack (moto), .venv-tools the build, lint and deploy
# tools (SAM CLI, cfn-lint, cargo-lambda).
VENV := .venv
TOOLS := .venv-tools
TEST_STAMP := $(VENV)/.installed
LINT_STAMP := $(TOOLS)/.lint-installed
TOOLS_STAMP := $(TOOLS)/.installed
CHECKOV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV)/.installed
export SAM_CLI_TELEMETRY := 0

.PHONY: rules-check rules-table help run test lint fmt clippy rust-version cfn-lint checkov build deploy delete invoke bench clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-8s %s\n", $$1, $$2}'

run: ## Build and replay the sample events in events/ locally (no AWS account needed)
	$(CARGO) build --release --locked --bin eks-audit-detector
	$(BIN) replay events/

test: $(TEST_STAMP) ## Install what the tests need (moto) and run every test
	TEST_PYTHON=$(CURDIR)/$(VENV)/bin/python $(CARGO) test --locked --all-targets

lint: fmt clippy rust-version rules-check cfn-lint checkov ## cargo fmt --check, clippy -D warnings, rust-version, rules check rules/, cfn-lint, sam validate --lint, checkov

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --locked --all-targets -- -D warnings

# Cargo.toml's rust-version must cover every locked dependency.
rust-version:
	$(PYTHON) scripts/check-rust-version.py

rules-check: ## eks-audit-detector rules check rules/: every bundled Sigma rule loads
	$(CARGO) run --quiet --locked --bin eks-audit-detector -- rules check rules/

cfn-lint: $(LINT_STAMP)
	$(TOOLS)/bin/cfn-lint template.yaml member.yaml
	$(TOOLS)/bin/sam validate --region us-east-1
	$(TOOLS)/bin/sam validate --lint --region us-east-1 --template-file member.yaml

# Thin layers over SAM's own commands; samconfig.toml holds their defaults.
# Skipped checks are documented in template.yaml next to the resource.
checkov: $(CHECKOV_STAMP)
	$(CHECKOV)/bin/checkov --file template.yaml --file member.yaml --framework cloudformation \
		--skip-download --compact --quiet

build: $(TOOLS_STAMP) ## sam build: the arm64 bootstrap with cargo-lambda (release build, several minutes)
	rustup target add aarch64-unknown-linux-gnu
	PATH=$(CURDIR)/$(TOOLS)/bin:$$PATH $(TOOLS)/bin/sam build

deploy: build ## sam deploy: --guided until your answers are saved in samconfig.toml
	@if grep -q '^parameter_overrides' samconfig.toml; then \
		PATH=$(CURDIR)/$(TOOLS)/bin:$$PATH $(TOOLS)/bin/sam deploy; \
	else \
		PATH=$(CURDIR)/$(TOOLS)/bin:$$PATH $(TOOLS)/bin/sam deploy --guided; \
	fi

delete: $(TOOLS_STAMP) ## sam delete: remove the stack (the table and its state go with it)
	$(TOOLS)/bin/sam delete

invoke: $(TOOLS_STAMP) $(TEST_STAMP) ## Run the function locally on EVENT=file through cargo-lambda's Runtime API
	$(CARGO) build --release --locked --bin eks-audit-detector
	scripts/invoke.sh $(EVENT)

rules-table: ## Rewrite README's rule table from `rules list --format markdown`
	$(CARGO) build --release --locked --bin eks-audit-detector
	$(BIN) rules list --format markdown > .rules-table.md
	$(PYTHON) scripts/readme-rules.py README.md .rules-table.md
	rm -f .rules-table.md

bench: $(TEST_STAMP) ## Benchmarks (criterion): pipeline throughput, and invocations against local AWS APIs
	$(CARGO) bench --locked --bench pipeline
	$(CARGO) bench --locked --bench ratio
	TEST_PYTHON=$(CURDIR)/$(VENV)/bin/python $(CARGO) bench --locked --bench invocation

clean: ## Remove build outputs and the virtualenvs
	$(CARGO) clean
	rm -rf $(VENV) $(TOOLS) $(CHECKOV) .aws-sam

$(TEST_STAMP): tests/support/requirements.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/support/requirements.txt
	touch $@

$(LINT_STAMP): tools/requirements-lint.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements-lint.txt
	touch $@

$(CHECKOV_STAMP): tools/requirements-checkov.txt
	test -x $(CHECKOV)/bin/python || $(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements-checkov.txt
	touch $@

$(TOOLS_STAMP): tools/requirements.txt tools/requirements-lint.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	touch $@ $(LINT_STAMP)
