#!/usr/bin/env bash
# Everything `make test` checks, in order, each step timed:
#   formatting; clippy -D warnings for the server side (ssr) and for the browser side (hydrate,
#   wasm32); the bundle splitter's tests; the site and the binary; unit tests; the integration suites on SQLite and on
#   PostgreSQL against the real identity providers; and the browser journeys in Chromium.
# The services come from scripts/test-services.sh. Set SKIP_E2E=1 only for quick local runs:
# CI never skips.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
started=$SECONDS
step() {
  local name=$1; shift
  local t=$SECONDS
  printf '\n==> %s\n' "$name"
  "$@"
  printf '<== %s: %ss\n' "$name" $((SECONDS - t))
}

if [ -n "${CI:-}" ] && [ -n "${SKIP_E2E:-}" ]; then
  echo "SKIP_E2E is not allowed in CI" >&2; exit 2
fi

step "test services" scripts/test-services.sh start
# shellcheck disable=SC1091
source target/test-services.env

step "rustfmt" cargo fmt --all -- --check
step "rustfmt (wasm-split)" cargo fmt --manifest-path scripts/wasm-split/Cargo.toml -- --check
step "clippy (ssr)" cargo clippy -j "$JOBS" --workspace --all-targets -- -D warnings
step "clippy (hydrate, wasm32)" cargo clippy -j "$JOBS" -p potluck-app --lib --features hydrate \
  --target wasm32-unknown-unknown --target-dir target/front -- -D warnings
# The bundle's splitter and fingerprints (its own workspace, built where setup.sh installs it from).
step "wasm-split tests" env CARGO_TARGET_DIR=target/tools cargo test -j "$JOBS" --release --locked \
  --manifest-path scripts/wasm-split/Cargo.toml
step "build site and binary" env SERVER_PACKAGES=--workspace scripts/build.sh dev
export POTLUCK_BIN=$PWD/target/debug/potluck
step "unit and integration tests (SQLite)" env POTLUCK_TEST_DATABASE=sqlite cargo test -j "$JOBS" --workspace
# The conformance and backup suites do not touch the database: they ran in the SQLite pass.
step "integration tests (PostgreSQL)" env POTLUCK_TEST_DATABASE=postgres cargo test -j "$JOBS" -p potluck-tests --test integration -- --skip conformance:: --skip backups::
if [ -z "${SKIP_E2E:-}" ]; then
  mkdir -p end2end/artifacts
  step "end2end (Chromium)" bash -c 'cd end2end && node --test --test-concurrency=1 tests/'
else
  echo "end2end skipped (SKIP_E2E set)"
fi
printf '\nall checks passed in %ss\n' $((SECONDS - started))
