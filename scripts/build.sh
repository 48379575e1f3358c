#!/usr/bin/env bash
# Builds Potluck: the wasm bundle (app crate, `hydrate` feature) → wasm-bindgen → [wasm-opt] →
# target/site/pkg (fingerprinted names, brotli and gzip copies; target/site/hash.txt lists the
# fingerprints), the CSS and public files → target/site, and the `potluck` server binary.
#   scripts/build.sh [dev|release]
# The wasm crate is built in its own target dir (target/front): `app` is compiled with other
# features there, and sharing one dir would rebuild it back and forth.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-dev}
SITE=target/site
PKG=$SITE/pkg
JOBS=${JOBS:-2}
case "$MODE" in
  dev)     WASM_PROFILE=dev;          WASM_DIR=debug;        BIN_PROFILE=dev ;;
  release) WASM_PROFILE=wasm-release; WASM_DIR=wasm-release; BIN_PROFILE=release ;;
  *) echo "usage: $0 [dev|release]" >&2; exit 2 ;;
esac

cargo build -j "$JOBS" -p potluck-app --lib --features hydrate --target wasm32-unknown-unknown \
  --profile "$WASM_PROFILE" --target-dir target/front
WASM=target/front/wasm32-unknown-unknown/$WASM_DIR/potluck_app.wasm

rm -rf "$PKG.new"; mkdir -p "$PKG.new"
wasm-bindgen --target web --out-dir "$PKG.new" --out-name potluck "$WASM"
mv -f "$PKG.new/potluck_bg.wasm" "$PKG.new/potluck.wasm"   # HydrationScripts loads /pkg/potluck.wasm
if [ "$MODE" = release ]; then
  # npm's binaryen (scripts/setup.sh); Debian 12's 108 writes a module that breaks hydration.
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int "$PKG.new/potluck.wasm" -o "$PKG.new/potluck.wasm"
fi
cp style/main.css "$PKG.new/potluck.css"
# Fingerprinted names (served as immutable), listed in hash.txt for the server: Leptos'
# HydrationScripts reads the js and wasm lines, the page shell the css line.
hashes=""
for ext in js wasm css; do
  h=$(sha256sum "$PKG.new/potluck.$ext" | cut -c1-16)
  mv "$PKG.new/potluck.$ext" "$PKG.new/potluck.$h.$ext"
  hashes+="$ext: $h"$'\n'
  # Precompressed beside it (the server picks by Accept-Encoding): the release's at the
  # highest levels, a dev build's quickly.
  if [ "$MODE" = release ]; then q=11; z=9; else q=4; z=4; fi
  brotli -f -q "$q" -o "$PKG.new/potluck.$h.$ext.br" "$PKG.new/potluck.$h.$ext"
  gzip -f -k -"$z" "$PKG.new/potluck.$h.$ext"
done
rm -rf "$PKG"; mv "$PKG.new" "$PKG"
printf '%s' "$hashes" > "$SITE/hash.txt"
cp -r public/. "$SITE/"

# SERVER_PACKAGES=--workspace (scripts/test.sh) builds the server in the same dependency graph as
# the test suites, so that they reuse its artifacts instead of compiling it a second time.
cargo build -j "$JOBS" ${SERVER_PACKAGES:--p potluck-server} --profile "$BIN_PROFILE"
