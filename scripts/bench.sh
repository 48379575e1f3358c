#!/usr/bin/env bash
# Runs the benchmarks (optimized build). Each prints its ratio against a baseline measured in the
# same run. Arguments are passed to every bench binary.
set -euo pipefail
cd "$(dirname "$0")/.."
source target/test-services.env 2>/dev/null || export POTLUCK_TEST_SHARED=$PWD/../shared
cargo bench -j "${JOBS:-2}" -p potluck-tests --bench audit -- "$@"
cargo bench -j "${JOBS:-2}" -p potluck-tests --bench catalogue
cargo bench -j "${JOBS:-2}" -p potluck-tests --bench deploy
cargo bench -j "${JOBS:-2}" -p potluck-tests --bench backup
