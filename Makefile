# choruspro-gateway — local stack and checks. `make demo` and `make test` work from a fresh
# clone on a machine with only the Rust and Python toolchains.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STACK := tests/stack/stack.sh

.PHONY: help venv build up down token demo test lint bench run chaos qualify clean-local

help:
	@echo "make demo | test | up | down | token COMPANIES=\"…\" | lint | run FN=… [NOW=…] | bench | chaos [SEED=…] [N=…] | qualify"

# The Python tools, pinned, in a project venv (moto server, cfn-lint, SAM translator).
$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

venv: $(VENV)/.installed

build:
	cargo build --workspace --bins

up: venv build
	@$(STACK) up

down:
	@$(STACK) down

token: build
	@target/debug/local-api token $(COMPANIES)

demo: venv build
	@$(STACK) up
	@tests/demo.sh

test: venv
	@tests/run_all.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# Measures the gateway (issue 7): warm CPU per route, calls per operation, cold start, size,
# memory, the month-end burst, the reminder run. Prints one table, writes tests/bench/RESULTS.md.
# Cold starts are compared with a hello-world Lambda (tests/hello-world, issue 18), also in a
# 128 MB Lambda's CPU share where a cgroup can be made (BENCH_STARTS starts each, default 30).
# Not part of `make test`; the release builds (LTO) take several minutes the first time.
bench: venv build
	cargo build --release --bin company-settings --bin identifiers --bin transmit-invoice \
		--bin status-sync --bin password-reminder --bin documents --bin hello-world --bin bench
	cargo test -p gateway-tests --test password_reminder --test follow_changes --no-run
	@$(STACK) up
	@eval "$$($(STACK) env)" && target/release/bench

# The chaos suite (tests/tests/chaos.rs) alone, larger: N transmissions with faults drawn
# from SEED, then the invariants table. `make test` runs it with N=60.
SEED ?= 20261203
N ?= 500
chaos: venv build
	@$(STACK) up
	@eval "$$($(STACK) env)" && CHAOS_SEED=$(SEED) CHAOS_N=$(N) \
		cargo test -p gateway-tests --test chaos -- --nocapture

# The qualification scenario (issue 15) against the Chorus Pro named by CHORUS_API_URL and
# PISTE_TOKEN_URL, with PISTE_CLIENT_ID, PISTE_CLIENT_SECRET, CHORUS_TECHNICAL_LOGIN,
# CHORUS_TECHNICAL_PASSWORD, QUALIFY_SUPPLIER_SIRET, QUALIFY_BUYER_SIRET (README, "Going to
# production"); against the local emulator (`make up` first) when both URLs are unset. One
# line per check; .local/qualify/report.md and report.json; exit 0 when every mandatory
# check passed.
qualify:
	cargo build --bin qualify
	@target/debug/qualify

# Runs a scheduled function once against the local stack: make run FN=status-sync NOW=…
run: build
	@tests/stack/run_function.sh "$(FN)" "$(NOW)"

clean-local: down
	rm -rf .local
