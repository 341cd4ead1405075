# keyrotor — the two commands: `make demo` and `make test`. Each sets up what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
REQUIREMENTS := tools/requirements.txt
VENV_STAMP := $(VENV)/.installed-$(shell sha256sum $(REQUIREMENTS) | cut -c1-16)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv node-tools demo test lint unit build clean

help:
	@echo "make demo   run the whole pipeline against the local emulator and print a report"
	@echo "make test   set up, then run formatting, lints, unit, integration and end-to-end tests"

## Python venv with moto (the local AWS), time-machine and cargo-lambda, pinned.
venv: $(VENV_STAMP)

$(VENV_STAMP): $(REQUIREMENTS)
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "python3 -m venv failed; installing python3-venv"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(REQUIREMENTS)
	@rm -f $(VENV)/.installed-*
	@touch $@

## Node tools of the checks (asl-validator), pinned by tools/package-lock.json.
node-tools: tools/node_modules/.installed

tools/node_modules/.installed: tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund --loglevel=error
	@touch $@

demo: venv
	cargo build --quiet --workspace --bins
	cargo run --quiet -p keyrotor-tests --bin keyrotor-demo

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test: venv node-tools lint
	cargo build --workspace --bins
	cargo test --workspace

build:
	cargo build --workspace

clean:
	cargo clean
	rm -rf $(VENV)
