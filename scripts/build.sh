#!/usr/bin/env bash
# Builds Potluck: the wasm bundle (app crate, `hydrate` feature) → wasm-bindgen → [wasm-opt] →
# target/site/pkg, the CSS and public files → target/site, and the `potluck` server binary.
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
rm -rf "$PKG"; mv "$PKG.new" "$PKG"
cp -r public/. "$SITE/"

# SERVER_PACKAGES=--workspace (scripts/test.sh) builds the server in the same dependency graph as
# the test suites, so that they reuse its artifacts instead of compiling it a second time.
cargo build -j "$JOBS" ${SERVER_PACKAGES:--p potluck-server} --profile "$BIN_PROFILE"
