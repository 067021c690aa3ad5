# riverguard developer commands.
#   make test    venv + local stack up + ruff + mypy + pytest, stack stopped again afterwards
#   make demo    venv + `riverguard demo`
#   make up / down / status / logs / env   the native local stack (deploy/stack.sh)
#   make lint    ruff + mypy (+ rustfmt and clippy for native/), no services needed

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
# cargo builds the ingest fast path (native/) during the install; rustup puts it here
export PATH := $(HOME)/.cargo/bin:$(PATH)
VENV ?= .venv
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help venv sysdeps test demo lint up down status logs env clean-stack

help:
	@sed -n '2,6p' Makefile | sed 's/^# \{0,1\}//'

# (Re)install only when pyproject.toml or the native fast path changed since the last install; an
# existing .venv is reused.
$(STAMP): pyproject.toml native/Cargo.toml native/Cargo.lock $(wildcard native/src/*.rs) \
		native/plume/Cargo.toml native/plume/Cargo.lock $(wildcard native/plume/src/*.rs)
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	@touch $@

venv: $(STAMP)

# a CJK font for the playbook map; cheap when already there
sysdeps:
	@deploy/system-deps.sh

test: venv sysdeps
	VENV=$(VENV) deploy/run-tests.sh $(PYTEST_ARGS)

demo: venv sysdeps
	$(VENV)/bin/riverguard demo

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	cargo fmt --manifest-path native/Cargo.toml --check
	cargo clippy --quiet --release --manifest-path native/Cargo.toml -- -D warnings
	cargo fmt --manifest-path native/plume/Cargo.toml --check
	cargo clippy --quiet --release --manifest-path native/plume/Cargo.toml -- -D warnings

up:
	deploy/stack.sh up

down:
	deploy/stack.sh down

status:
	deploy/stack.sh status

logs:
	deploy/stack.sh logs

env:
	@deploy/stack.sh env

# stop the stack and delete its data (keeps the download/build cache)
clean-stack: down
	rm -rf "$${RIVERGUARD_STACK_DIR:-.stack}"
