# finops-lambda: the commands of the README.
SHELL := /bin/bash
VENV := infra/.venv
PY := $(VENV)/bin/python

.PHONY: bootstrap test fmt-check clippy unit emulator-tests lint bench demo

## Creates infra/.venv with the pinned emulator and linters (idempotent, fast when done).
bootstrap:
	@bash infra/scripts/bootstrap.sh

## What CI runs: format, clippy (warnings denied), every test, template lint.
test: bootstrap fmt-check clippy unit emulator-tests lint

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

# Integration tests start their own emulator (infra/emulator/server.py) on a
# free loopback port; set FINOPS_EMULATOR_URL to use a running one instead.
unit:
	cargo test --workspace

emulator-tests:
	$(PY) -m pytest -q infra/emulator/test_server.py

lint:
	$(VENV)/bin/cfn-lint template.yaml

## Benchmarks; each prints its figures.
bench: bootstrap
	cargo bench -p shared --bench analysis
	cargo bench -p e2e --bench collect
	# Whole cycle at 1,000 and 10,000 EC2 (FINOPS_BENCH_SIZES to change; CloudWatch
	# is synthetic above 1,000, see docs/benchmarks.md).
	cargo run --release -q -p finops-demo --bin cycle-bench
	$(PY) infra/emulator/bench_getmetricdata.py

## One full cycle, headless, through the real path; prints the recommendations.
## The emulator listens on 127.0.0.1:4566 (FINOPS_EMULATOR_PORT to change it).
demo: bootstrap
	cargo run --release -q -p finops-demo
