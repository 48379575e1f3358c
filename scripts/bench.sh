#!/usr/bin/env bash
# Runs the benchmarks (optimized build). Each prints its ratio against a baseline measured in the
# same run. Arguments are passed to the audit bench (how many events to verify).
set -euo pipefail
cd "$(dirname "$0")/.."
source target/test-services.env 2>/dev/null || export POTLUCK_TEST_SHARED=$PWD/../shared
# The page and load benchmarks run the release server and bundle, as people run them.
scripts/build.sh release
export POTLUCK_BIN=$PWD/target/release/potluck
cargo bench -j "${JOBS:-2}" -p potluck-tests --bench audit -- "$@"
cargo bench -j "${JOBS:-2}" -p potluck-tests --bench pages
cargo bench -j "${JOBS:-2}" -p potluck-tests --bench load
cargo bench -j "${JOBS:-2}" -p potluck-tests --bench catalogue
cargo bench -j "${JOBS:-2}" -p potluck-tests --bench deploy
cargo bench -j "${JOBS:-2}" -p potluck-tests --bench backup
