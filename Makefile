# Potluck — the two commands (see README.md):
#   make run    set up what is missing, build, and serve on http://127.0.0.1:3000 (SQLite in ./data)
#   make test   set up, start the real services the tests need, and run every check
# Both are idempotent. Other targets: build, bench, fuzz, services, stop-services, fmt, clean.

SHELL := /bin/bash
# rustup's proxies come first on PATH here; rust-toolchain.toml points them at Debian's toolchain.
export PATH := $(HOME)/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export CARGO_TERM_COLOR ?= never
MODE ?= dev

.PHONY: run test build setup setup-test services stop-services bench fuzz fmt clean

setup:
	@scripts/setup.sh

setup-test:
	@WITH_TEST_SERVICES=1 scripts/setup.sh

build: setup
	@scripts/build.sh $(MODE)

run: build
	@if [ "$(MODE)" = release ]; then bin=target/release/potluck; else bin=target/debug/potluck; fi; \
	  POTLUCK_SITE_ROOT=$${POTLUCK_SITE_ROOT:-target/site} exec $$bin serve

test: setup-test
	@scripts/test.sh

services: setup-test
	@scripts/test-services.sh start

stop-services:
	@scripts/test-services.sh stop

bench:
	@WITH_TEST_SERVICES=1 WITH_BENCH=1 scripts/setup.sh
	@scripts/test-services.sh start
	@scripts/bench.sh

fuzz: setup
	@scripts/fuzz.sh

fmt:
	cargo fmt --all

clean:
	cargo clean
