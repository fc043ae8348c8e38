# finops-lambda: the commands of the README.
SHELL := /bin/bash
VENV := infra/.venv
PY := $(VENV)/bin/python

.PHONY: bootstrap test fmt-check build-linted clippy unit emulator-tests lint bench demo
.PHONY: dev sam-build lambda-release bench-startup

## Creates infra/.venv with the pinned emulator and linters (idempotent, fast when done).
bootstrap:
	@bash infra/scripts/bootstrap.sh

## What CI runs: format, clippy (warnings denied), every test, template lint.
test: bootstrap fmt-check build-linted unit emulator-tests lint web-test

# `make test` lints as it builds: clippy-driver compiles the workspace's own
# crates, with clippy's lints and warnings denied as `make clippy` has them,
# and plain rustc the dependencies. So each dependency is compiled once for
# both, instead of checked for clippy and then built again for the tests (the
# AWS SDKs are over half of a cold build). The two variables are how
# cargo-clippy itself drives clippy-driver (of the toolchain cargo runs).
LINTED = RUSTC_WORKSPACE_WRAPPER="$$(rustup which clippy-driver)" CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

fmt-check:
	cargo fmt --all -- --check

build-linted:
	$(LINTED) cargo build --workspace --all-targets

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

# Integration tests start their own emulator (infra/emulator/server.py) on a
# free loopback port; set FINOPS_EMULATOR_URL to use a running one instead.
unit:
	$(LINTED) cargo test --workspace

emulator-tests:
	$(PY) -m pytest -q infra/emulator/

# SAM CLI and cfn-lint work offline and without credentials; they only want
# a region to name ARNs with.
SAM_ENV := AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/$(VENV)/bin:$$PATH"

# Template lint: cfn-lint on the SAM-transformed template, with the
# informational checks and the serverless rules, then SAM's own validation.
lint:
	$(VENV)/bin/cfn-lint --include-checks I -a cfn_lint_serverless.rules -- template.yaml
	$(VENV)/bin/cfn-lint --include-checks I -- infra/member-role.yaml
	$(SAM_ENV) $(VENV)/bin/sam validate --lint

## sam build with the x86_64 profile (no aarch64 toolchain here): cargo
## lambda builds each function's release bootstrap with plain cargo.
sam-build: bootstrap
	$(SAM_ENV) CARGO_LAMBDA_COMPILER=cargo $(VENV)/bin/sam build --config-env x86

# Every function's release bootstrap (target/lambda/<name>/bootstrap), built
# one binary at a time exactly as sam build asks for it (in the function's
# own directory, its CodeUri, so cargo resolves that package's features
# alone), so the two share every compiled crate and whichever runs second
# has nothing left to do.
lambda-release: bootstrap
	for f in functions/*/; do f=$$(basename $$f); \
	  (cd functions/$$f && $(SAM_ENV) CARGO_LAMBDA_COMPILER=cargo cargo lambda build --release --bin $$f) || exit 1; done

## Size and start-up time of every function against a local runtime API.
bench-startup: lambda-release
	$(PY) infra/scripts/bench_startup.py

## The dashboard in a real browser: Playwright drives Debian's Chromium
## against the local stack (finops-dev on free ports, demo estate).
## Screenshots of every view at 1280 and 390 px go to target/screenshots/.
.PHONY: web-test web-bench
# Built as `make unit` builds (all targets, so the same feature unification,
# and linted, so the same artefacts): `-p finops-dev` alone would compile the
# AWS SDKs again.
web-test: bootstrap
	$(LINTED) cargo build -q --workspace --all-targets
	cd web && npx playwright test

## The dashboard's figures: initial load (gzip), first rendered queue, frame
## time while scrolling 10,000 requests (target/web-bench.json).
web-bench: bootstrap
	$(LINTED) cargo build -q --workspace --all-targets
	cd web && npx playwright test --config playwright.bench.config.ts

## Benchmarks; each prints its figures.
bench: bootstrap bench-startup web-bench
	cargo bench -p shared --bench analysis
	cargo bench -p shared --bench forecast
	cargo bench -p e2e --bench collect
	# Whole cycle at 1,000 and 10,000 EC2 (FINOPS_BENCH_SIZES to change; CloudWatch
	# is synthetic above 1,000, see docs/benchmarks.md).
	cargo run --release -q -p finops-demo --bin cycle-bench
	# Discovery of 10,000 resources over 5 accounts x 4 regions, organization mode,
	# 4 workers (FINOPS_BENCH_DISCOVERY_RESOURCES to scale down; CloudWatch synthetic).
	cargo run --release -q -p finops-demo --bin discovery-bench
	# 1,000 approved EC2 rightsizings through the execution job path, previews,
	# then the per-account cap (FINOPS_BENCH_EXECUTIONS, FINOPS_BENCH_CAP_PER_ACCOUNT).
	cargo run --release -q -p finops-demo --bin execution-bench
	$(PY) infra/emulator/bench_getmetricdata.py
	cargo bench -p e2e --bench websocket_fanout
	# Trigger to job succeeded on the demo estate, through make dev's stack.
	cargo bench -p e2e --bench trigger_latency
	# 200 REST clients and 2,000 WebSocket connections for 2 minutes, a cycle and
	# racing approvals running (FINOPS_LOAD_REST, FINOPS_LOAD_WS, FINOPS_LOAD_SECONDS).
	cargo bench -p e2e --bench load

## One full cycle, headless, through the real path; prints the recommendations.
## The emulator listens on 127.0.0.1:4566 (FINOPS_EMULATOR_PORT to change it).
demo: bootstrap
	cargo run --release -q -p finops-demo

## The whole system on loopback: REST :3000, WebSocket :3001, emulator :4566,
## schedule and SQS event source; prints a token per role. SEED=none: no demo estate.
SEED ?=
dev: bootstrap
	SEED=$(SEED) cargo run --release -q -p finops-dev

## The REST contract test alone: schemathesis over openapi.yaml against the
## local REST gateway (also part of `make test`, through `cargo test`).
.PHONY: contract-test
contract-test: bootstrap
	cargo test -p api --test contract -- --nocapture
