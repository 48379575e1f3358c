#!/usr/bin/env bash
# Builds Potluck: the wasm bundle (app crate, `hydrate` feature) → split at the lazy routes →
# wasm-bindgen → [wasm-opt] → target/site/pkg (fingerprinted names, brotli and gzip copies;
# target/site/hash.txt lists the fingerprints), the CSS and public files → target/site, and the
# `potluck` server binary.
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

# --emit-relocs for the splitter, on the app's own link only: RUSTFLAGS would replace the
# `erase_components` cfg of .cargo/config.toml and the bundle would no longer match the server.
cargo rustc -j "$JOBS" -p potluck-app --lib --crate-type cdylib --features hydrate \
  --target wasm32-unknown-unknown --profile "$WASM_PROFILE" --target-dir target/front \
  -- -C link-arg=--emit-relocs
WASM=target/front/wasm32-unknown-unknown/$WASM_DIR/potluck_app.wasm

rm -rf "$PKG.new"; mkdir -p "$PKG.new"
# The lazy areas' code out of the main module (scripts/wasm-split, app/src/pages/mod.rs):
# split_<area>.wasm, chunk_<n>.wasm for code areas share, their loader and the manifest the
# server reads for a page's preload links. Then wasm-bindgen on the main module, keeping the
# exports the loader hands to the areas' modules.
MAIN_WASM=target/front/potluck_main.wasm
potluck-wasm-split split "$WASM" "$PKG.new" "$MAIN_WASM"
wasm-bindgen --target web --no-typescript --keep-lld-exports --no-demangle --out-dir "$PKG.new" --out-name potluck "$MAIN_WASM"
mv -f "$PKG.new/potluck_bg.wasm" "$PKG.new/potluck.wasm"   # HydrationScripts loads /pkg/potluck.wasm
if [ "$MODE" = release ]; then
  # npm's binaryen (scripts/setup.sh); Debian 12's 108 writes a module that breaks hydration.
  for f in "$PKG.new"/*.wasm; do
    wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int "$f" -o "$f"
  done
fi
cp style/main.css "$PKG.new/potluck.css"
# Fingerprinted names (served as immutable), listed in hash.txt for the server: Leptos'
# HydrationScripts reads the js, wasm, manifest and split (loader) lines, the page shell the
# css line.
potluck-wasm-split fingerprint "$PKG.new" > "$SITE/hash.txt.new"
# Precompressed beside each (the server picks by Accept-Encoding): the release's at the highest
# levels, a dev build's quickly.
if [ "$MODE" = release ]; then q=11; z=9; else q=4; z=4; fi
for f in "$PKG.new"/*.js "$PKG.new"/*.wasm "$PKG.new"/*.css; do
  brotli -f -q "$q" -o "$f.br" "$f"
  gzip -f -k -"$z" "$f"
done
# Tabs opened before this build still load their areas' modules by the old names: the previous
# build's own files (listed in pkg-files.txt) stay beside the new ones, one build back.
ls "$PKG.new" > "$SITE/pkg-files.txt.new"
if [ -f "$SITE/pkg-files.txt" ] && [ -d "$PKG" ]; then
  while read -r f; do
    [ -e "$PKG.new/$f" ] || [ ! -f "$PKG/$f" ] || cp -p "$PKG/$f" "$PKG.new/$f"
  done < "$SITE/pkg-files.txt"
fi
rm -rf "$PKG"; mv "$PKG.new" "$PKG"
mv "$SITE/pkg-files.txt.new" "$SITE/pkg-files.txt"
mv "$SITE/hash.txt.new" "$SITE/hash.txt"
cp -r public/. "$SITE/"

# SERVER_PACKAGES=--workspace (scripts/test.sh) builds the server in the same dependency graph as
# the test suites, so that they reuse its artifacts instead of compiling it a second time.
cargo build -j "$JOBS" ${SERVER_PACKAGES:--p potluck-server} --profile "$BIN_PROFILE"
