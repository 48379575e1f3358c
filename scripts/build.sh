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
# Work in progress and each build's list of files, beside the site and not served with it.
BUILDS=target/site-builds
NEW=$BUILDS/pkg.new
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

rm -rf "$NEW"; mkdir -p "$NEW" "$SITE"
# The lazy areas' code out of the main module (scripts/wasm-split, app/src/pages/mod.rs):
# split_<area>.wasm, chunk_<n>.wasm for code areas share, their loader and the manifest the
# server reads for a page's preload links. Then wasm-bindgen on the main module, keeping the
# exports the loader hands to the areas' modules.
MAIN_WASM=target/front/potluck_main.wasm
potluck-wasm-split split "$WASM" "$NEW" "$MAIN_WASM"
wasm-bindgen --target web --no-typescript --keep-lld-exports --no-demangle --out-dir "$NEW" --out-name potluck "$MAIN_WASM"
mv -f "$NEW/potluck_bg.wasm" "$NEW/potluck.wasm"   # HydrationScripts loads /pkg/potluck.wasm
if [ "$MODE" = release ]; then
  # npm's binaryen (scripts/setup.sh); Debian 12's 108 writes a module that breaks hydration.
  for f in "$NEW"/*.wasm; do
    wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int "$f" -o "$f"
  done
fi
cp style/main.css "$NEW/potluck.css"
# Fingerprinted names (served as immutable), listed in hash.txt for the server: Leptos'
# HydrationScripts reads the js, wasm, manifest and split (loader) lines, the page shell the
# css line.
potluck-wasm-split fingerprint "$NEW" > "$BUILDS/hash.txt"
# Precompressed beside each (the server picks by Accept-Encoding): the release's at the highest
# levels, a dev build's quickly.
if [ "$MODE" = release ]; then q=11; z=9; else q=4; z=4; fi
for f in "$NEW"/*.js "$NEW"/*.wasm "$NEW"/*.css; do
  brotli -f -q "$q" -o "$f.br" "$f"
  gzip -f -k -"$z" "$f"
done
# SERVER_PACKAGES=--workspace (scripts/test.sh) builds the server in the same dependency graph as
# the test suites, so that they reuse its artifacts instead of compiling it a second time. Built
# before the new site replaces the old, so a failed build leaves both as they were.
cargo build -j "$JOBS" ${SERVER_PACKAGES:--p potluck-server} --profile "$BIN_PROFILE"

# Tabs opened before this build load their areas' modules by the old names: the files of the
# last five builds of the past week stay beside the new ones (each build's list is kept in
# $BUILDS). Restart a running server after a build.
ls "$NEW" > "$BUILDS/next.txt"
find "$BUILDS" -maxdepth 1 -name '[0-9]*.txt' -mtime +7 -delete
{ ls -t "$BUILDS"/[0-9]*.txt 2>/dev/null || true; } | tail -n +5 | xargs -r rm -f
if [ -d "$PKG" ]; then
  { cat "$BUILDS"/[0-9]*.txt 2>/dev/null || true; } | sort -u | while read -r f; do
    [ -e "$NEW/$f" ] || [ ! -f "$PKG/$f" ] || cp -p "$PKG/$f" "$NEW/$f"
  done
fi
rm -rf "$PKG"; mv "$NEW" "$PKG"
mv "$BUILDS/hash.txt" "$SITE/hash.txt"
mv "$BUILDS/next.txt" "$BUILDS/$(date +%s%N).txt"
cp -r public/. "$SITE/"
