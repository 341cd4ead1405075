# keyrotor — the two commands: `make demo` and `make test`. Each sets up what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
REQUIREMENTS := tools/requirements.txt
VENV_STAMP := $(VENV)/.installed-$(shell sha256sum $(REQUIREMENTS) | cut -c1-16)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

CHECKS_VENV := .venv-checks
CHECKS_REQUIREMENTS := tools/requirements-checks.txt
CHECKS_STAMP := $(CHECKS_VENV)/.installed-$(shell sha256sum $(CHECKS_REQUIREMENTS) | cut -c1-16)
DEBUG_BIN := $(or $(CARGO_TARGET_DIR),target)/debug
LAMBDA_FUNCTIONS := list-users assess-key-age start-rotations respond-to-exposure create-key deliver-key deactivate-key notify delete-key list-accounts scan-accounts

.PHONY: help venv venv-checks node-tools bins test-binaries demo demo-org deploy-local test bench bench-binaries fuzz lint check-infra package build clean

help:
	@echo "make demo   run the whole pipeline against the local emulator and print a report"
	@echo "make demo-org  the same for an AWS Organization of a few accounts, one unreachable"
	@echo "make test   set up, then run formatting, lints, unit, integration and end-to-end tests"
	@echo "make bench  measure scans at 1,000 and 5,000 users (also under modelled AWS latency, beside the seed article's loop), an organization scan, the functions, and the monthly cost"

## Python venv with moto (the local AWS), time-machine and cargo-lambda, pinned.
venv: $(VENV_STAMP)

$(VENV_STAMP): $(REQUIREMENTS)
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "python3 -m venv failed; installing python3-venv"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(REQUIREMENTS)
	@rm -f $(VENV)/.installed-*
	@touch $@

## cfn-lint and checkov, in a venv of their own.
venv-checks: $(CHECKS_STAMP)

$(CHECKS_STAMP): $(CHECKS_REQUIREMENTS)
	@test -x $(CHECKS_VENV)/bin/python || $(PYTHON) -m venv $(CHECKS_VENV)
	$(CHECKS_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(CHECKS_REQUIREMENTS)
	@rm -f $(CHECKS_VENV)/.installed-*
	@touch $@

## The SAM template and the member accounts' template: cfn-lint, checkov (each skip justified
## in the template), and the cross-checks against the code (least privilege, placeholders,
## variables, member roles and their trust).
check-infra: venv-checks
	$(CHECKS_VENV)/bin/cfn-lint infra/template.yaml infra/member-account.yaml
	$(CHECKS_VENV)/bin/checkov -f infra/template.yaml -f infra/member-account.yaml --framework cloudformation --compact --quiet --skip-download
	$(CHECKS_VENV)/bin/python tools/check_infra.py

## Release zips of the functions for infra/template.yaml (target/lambda/<name>/bootstrap.zip):
## arm64 where the aarch64-unknown-linux-gnu Rust target is installed, else x86_64 (deploy
## with Architecture=x86_64 then).
package: venv
	@if rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$$'; then \
	  arch=arm64; echo "building for arm64"; else \
	  arch=x86_64; echo "aarch64-unknown-linux-gnu is not installed: building for x86_64 (deploy with Architecture=x86_64)"; fi; \
	cargo lambda build --release --$${arch/_/-} --output-format zip $(addprefix -p ,$(LAMBDA_FUNCTIONS)) && \
	echo $$arch > target/lambda/ARCHITECTURE
	@ls -l $(foreach f,$(LAMBDA_FUNCTIONS),target/lambda/$(f)/bootstrap.zip)

## The benchmark (not a test): scans of 1,000 and 5,000 users with each assessment strategy,
## one real day, and each function's binary (ready time, peak RSS); prints tables and writes
## them to target/bench/latest.md (docs/SCALE.md shows the latest). The local stack serves host
## builds of the `release-local` profile; the zip sizes are those `make package` builds.
## The venv (pip, one core) installs while the host build runs; the two cargo builds, each
## using both cores, run one after the other (at once they took longer).
bench:
	$(MAKE) --no-print-directory -j2 venv bench-binaries
	$(MAKE) --no-print-directory package
	target/release-local/keyrotor-bench

bench-binaries:
	cargo build --quiet --profile release-local --workspace $(addprefix --bin ,$(LAMBDA_FUNCTIONS) keyrotor-bench)

## infra/template.yaml deployed on the emulator as sam deploy would (package, the SAM
## transform, moto's CloudFormation; tools/deploy_local.py), with the default parameters
## and in organization mode; prints what each stack made. tests/tests/it/deploy.rs checks it.
deploy-local:
	$(MAKE) --no-print-directory -j2 venv bins
	$(VENV)/bin/python tools/deploy_local.py --stack-name keyrotor --print-resources \
	  --parameter FromAddress=keyrotor@example.com --parameter KeyAdminRole=keyrotor-deployer
	$(VENV)/bin/python tools/deploy_local.py --stack-name keyrotor-org --print-resources \
	  --parameter FromAddress=keyrotor@example.com --parameter KeyAdminRole=keyrotor-deployer \
	  --parameter Accounts=organization --parameter OrganizationId=o-abcdefghij

## Node tools of the checks (asl-validator), pinned by tools/package-lock.json.
node-tools: tools/node_modules/.installed

tools/node_modules/.installed: tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund --loglevel=error
	@touch $@

## The workspace's binaries: the functions the local stack serves, the command, the demos.
bins:
	cargo build --quiet --workspace --bins

## The venv (pip, mostly waiting on downloads) installs while cargo builds on both cores.
## The demo runs as `bins` built it: `cargo run -p keyrotor-localstack` would resolve the
## features of that one package, not the workspace's, and compile the AWS SDK again.
demo:
	$(MAKE) --no-print-directory -j2 venv bins
	$(DEBUG_BIN)/keyrotor-demo

## The same for an AWS Organization: nested OUs, exclusions, one unreachable account, and
## the per-account report.
demo-org:
	$(MAKE) --no-print-directory -j2 venv bins
	$(DEBUG_BIN)/keyrotor-demo-org

## Longer fuzzing of every function's input and the configuration (make test runs 10,000
## cases of each).
fuzz:
	KEYROTOR_FUZZ_CASES=$${KEYROTOR_FUZZ_CASES:-200000} cargo test --release -p keyrotor-tests --test it fuzz::

## Formatting, clippy, and every relative link and anchor of the Markdown (tools/check_links.py).
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(PYTHON) tools/check_links.py

## The lints, then the test binaries: cargo on both cores, one build at a time.
test-binaries: lint
	cargo build --quiet --workspace --bins
	cargo test --quiet --workspace --no-run

## Every test binary of `cargo test --workspace`; those that start a local stack run three at
## a time (tools/run_tests.py says why). Lints and compiling run while pip and npm install
## the tools (on a fresh clone the checks' venv alone takes about 2 minutes).
test:
	$(MAKE) --no-print-directory -j2 test-binaries venv node-tools venv-checks
	$(MAKE) --no-print-directory check-infra
	$(PYTHON) tools/run_tests.py --jobs 3

build:
	cargo build --workspace

clean:
	cargo clean
	rm -rf $(VENV) $(CHECKS_VENV) tools/node_modules
