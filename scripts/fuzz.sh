#!/usr/bin/env bash
# Coverage-guided fuzzing of the deploy engine's untrusted-input entry points (libFuzzer through
# cargo-fuzz, no sanitizer runtime needed: Debian's rustc is enough), a bounded time each:
#   envfile  an env file: parse, expand, write back, read again (values must survive)
#   yaml     a compose file's YAML (anchors, aliases, merges, nesting)
#   compose  a whole recipe: .env.sample + compose.yml → load, interpolate, validate, convert,
#            guardrails
# Seeds come from the project's fixtures and ../shared's recipes. A crash stops the run and
# leaves its input under server/engine/fuzz/artifacts/<target>/.
#   scripts/fuzz.sh [target…]      FUZZ_SECONDS=60 per target by default
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(envfile yaml compose)
command -v cargo-fuzz >/dev/null || [ -x "$HOME/.cargo/bin/cargo-fuzz" ] || {
  echo "==> fuzz: cargo install cargo-fuzz (once)"; cargo install --quiet --locked cargo-fuzz; }
CORPUS=target/fuzz-corpus
for t in "${TARGETS[@]}"; do
  mkdir -p "$CORPUS/$t"
  case "$t" in
    envfile) find tests/fixtures/recipes ../shared/recipes -name '.env.sample' 2>/dev/null | head -200 | while read -r f; do
               cp "$f" "$CORPUS/$t/$(sha1sum "$f" | cut -c1-16)"; done ;;
    yaml|compose) find tests/fixtures ../shared/recipes -name 'compose*.yml' 2>/dev/null | head -400 | while read -r f; do
               if [ "$t" = compose ]; then { echo 'DOMAIN=x.example.org\nSTACK_NAME=x'; cat "$f"; } > "$CORPUS/$t/$(sha1sum "$f" | cut -c1-16)";
               else cp "$f" "$CORPUS/$t/$(sha1sum "$f" | cut -c1-16)"; fi; done ;;
    *) echo "unknown fuzz target $t (envfile, yaml, compose)" >&2; exit 2 ;;
  esac
  echo "==> fuzz: $t for ${SECONDS_EACH}s"
  log=target/fuzz-$t.log
  status=0
  cargo fuzz run --fuzz-dir server/engine/fuzz --sanitizer none -j 1 "$t" "$CORPUS/$t" -- \
    -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  grep -E '(stat::number_of_executed_units|panicked at|SUMMARY|Test unit written)' "$log" || true
  if [ "$status" -ne 0 ]; then
    echo "fuzz: $t found a crash (full log: $log); reproduce with: cargo fuzz run --fuzz-dir server/engine/fuzz --sanitizer none $t <artifact>" >&2
    exit 1
  fi
done
echo "==> fuzz: no crash in ${#TARGETS[@]} target(s)"
