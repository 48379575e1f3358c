#!/usr/bin/env bash
# Idempotent machine set-up for Potluck on Debian 12 (run as root): everything `make run` and
# `make test` need that is not in the repository. Each step checks first and is skipped when done.
#
#   1. Debian packages: Debian's rustc-web 1.96 toolchain (pinned by rust-toolchain.toml), lld-22
#      (the wasm32 linker), libgit2's build deps, and with WITH_TEST_SERVICES=1 the real services the
#      tests start: docker.io + busybox-static (swarm), postgresql, chromium + chromium-driver, and
#      restic (the tests read Potluck's backup repositories with the restic CLI itself).
#   2. A wasm32-unknown-unknown std for Debian's rustc, built once from rust-web-src (no rustup
#      target can be downloaded here) and installed where rustc already looks.
#   3. wasm-bindgen-cli at exactly the version Cargo.lock pins, and potluck-wasm-split
#      (scripts/wasm-split: splits the bundle at its lazy routes and fingerprints it).
#   4. wasm-opt from npm's binaryen (Debian 12's binaryen 108 breaks wasm-bindgen output).
#      With WITH_BENCH=1 (make bench): nginx-light and wrk, the page benchmark's baseline and load.
#   5. With WITH_TEST_SERVICES=1: the test OIDC provider's and the browser tests' npm packages,
#      and moto's S3 server from PyPI (in a venv under $TOOLS_ROOT/moto) for S3 repositories,
#      and aiosmtpd (in $TOOLS_ROOT/aiosmtpd) for email notifications.
#
# cargo-leptos is deliberately not installed: it costs 15-30 minutes of compiling on a fresh
# machine, and scripts/build.sh does the steps Potluck needs (cargo, split, wasm-bindgen, copy).
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=$(sed -n 's/^wasm-bindgen = "=\(.*\)".*/\1/p' Cargo.toml)
BINARYEN_VERSION=132.0.0
MOTO_VERSION=5.2.5
AIOSMTPD_VERSION=1.4.6
TOOLS_ROOT=${TOOLS_ROOT:-$HOME/.cargo}
BINARYEN_PREFIX=/opt/binaryen-$BINARYEN_VERSION
WITH_TEST_SERVICES=${WITH_TEST_SERVICES:-0}
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
CARGO=/usr/bin/cargo
log() { printf '==> setup: %s\n' "$*"; }

# --- 1. Debian packages ---------------------------------------------------------------------
pkgs=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22 rustfmt-web rust-web-clippy gcc g++ libc6-dev make
      pkg-config ca-certificates curl git libssl-dev libssh2-1-dev zlib1g-dev nodejs npm sqlite3 brotli gzip)
if [ "$WITH_TEST_SERVICES" = 1 ]; then
  pkgs+=(docker.io busybox-static postgresql chromium chromium-driver iproute2 openssl openssh-server openssh-client
         restic python3-venv haproxy)
fi
# make bench: nginx as the baseline of the page benchmark, wrk to load both.
if [ "${WITH_BENCH:-0}" = 1 ]; then
  pkgs+=(nginx-light wrk)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node and npm may come from elsewhere (NodeSource); only install Debian's when absent.
if command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi
# Debian starts the nginx it installs on :80 where systemd runs; the benchmark starts its own.
if [ "${WITH_BENCH:-0}" = 1 ] && command -v systemctl >/dev/null && systemctl is-enabled nginx >/dev/null 2>&1; then
  systemctl disable --now nginx >/dev/null 2>&1 || true
fi
/usr/bin/rust-lld -flavor wasm --version >/dev/null

# --- 2. wasm32 std for Debian's rustc ---------------------------------------------------------
rustc_id=$($RUSTC -vV | sed -n 's/^commit-hash: //p')-$($RUSTC -vV | sed -n 's/^release: //p')
libdir=/usr/lib/rustlib/wasm32-unknown-unknown/lib
stamp=$libdir/.built-for-rustc
if [ "$(cat "$stamp" 2>/dev/null)" = "$rustc_id" ]; then
  log "wasm32 std present for rustc $rustc_id"
else
  log "building the wasm32-unknown-unknown std for rustc $rustc_id (about 1-2 min, once)"
  work=$(mktemp -d)
  mkdir -p "$work/src"
  printf '[package]\nname = "wasm-sysroot"\nversion = "0.0.0"\nedition = "2021"\n[profile.release]\nopt-level = 3\n[workspace]\n' > "$work/Cargo.toml"
  echo '#![no_std]' > "$work/src/lib.rs"
  # Bitcode stays in the rlibs so that `lto = true` wasm builds work; RUSTC_BOOTSTRAP for this build only.
  (cd "$work" && RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Cembed-bitcode=yes" CARGO_TARGET_DIR="$work/target" \
     "$CARGO" build --release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort --quiet)
  rm -rf "$libdir"; mkdir -p "$libdir"
  find "$work/target/wasm32-unknown-unknown/release/deps" -maxdepth 1 -name 'lib*.rlib' \
    ! -name 'libwasm_sysroot-*' -exec cp {} "$libdir/" \;
  echo "$rustc_id" > "$stamp"
  rm -rf "$work"
fi

# --- 3. wasm-bindgen-cli, exactly the pinned version ---------------------------------------------
if "$TOOLS_ROOT/bin/wasm-bindgen" --version 2>/dev/null | grep -qw "$WASM_BINDGEN_VERSION"; then
  log "wasm-bindgen $WASM_BINDGEN_VERSION present"
else
  log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 3-5 min, once)"
  # --locked first; this registry mirror can lag the tool's lock file, then resolve afresh.
  "$CARGO" install --quiet --force --locked --root "$TOOLS_ROOT" wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" ||
    "$CARGO" install --quiet --force --root "$TOOLS_ROOT" wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# potluck-wasm-split, rebuilt when its sources change (about a minute).
split_src=scripts/wasm-split
split_id=$(cat "$split_src/Cargo.toml" "$split_src/Cargo.lock" "$split_src"/src/*.rs | sha256sum | cut -c1-16)
if [ -x "$TOOLS_ROOT/bin/potluck-wasm-split" ] && [ "$(cat "$TOOLS_ROOT/potluck-wasm-split.id" 2>/dev/null)" = "$split_id" ]; then
  log "potluck-wasm-split present"
else
  log "cargo install potluck-wasm-split (scripts/wasm-split, about a minute)"
  CARGO_TARGET_DIR="$PWD/target/tools" "$CARGO" install --quiet --force --locked --root "$TOOLS_ROOT" --path "$split_src"
  echo "$split_id" > "$TOOLS_ROOT/potluck-wasm-split.id"
fi

# --- 4. wasm-opt from npm's binaryen -----------------------------------------------------------
if "$BINARYEN_PREFIX/bin/wasm-opt" --version 2>/dev/null | grep -q "version_${BINARYEN_VERSION%%.*}"; then
  log "wasm-opt (binaryen $BINARYEN_VERSION) present"
else
  log "npm install binaryen@$BINARYEN_VERSION"
  npm install -g --prefix "$BINARYEN_PREFIX" --no-audit --no-fund --loglevel=error "binaryen@$BINARYEN_VERSION"
fi
mkdir -p "$TOOLS_ROOT/bin"
ln -sfn "$BINARYEN_PREFIX/bin/wasm-opt" "$TOOLS_ROOT/bin/wasm-opt"

# --- 5. test services' own dependencies ----------------------------------------------------------
if [ "$WITH_TEST_SERVICES" = 1 ] && [ -f tests/idp/package.json ]; then
  if [ ! -d tests/idp/node_modules/oidc-provider ]; then
    log "npm ci for the test OIDC provider"
    (cd tests/idp && npm ci --no-audit --no-fund --loglevel=error)
  fi
  # An S3-compatible server for the backup tests: moto's standalone server, from PyPI, in a venv
  # of its own (Debian 12 has no S3 server; restic talks to it as to any other).
  if [ "$("$TOOLS_ROOT/moto/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)" != "$MOTO_VERSION" ]; then
    log "pip install moto[server]==$MOTO_VERSION"
    /usr/bin/python3 -m venv --clear "$TOOLS_ROOT/moto"
    "$TOOLS_ROOT/moto/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
  # A real SMTP server for the notification tests: aiosmtpd from PyPI, in a venv of its own.
  if [ "$("$TOOLS_ROOT/aiosmtpd/bin/python" -c 'import importlib.metadata as m; print(m.version("aiosmtpd"))' 2>/dev/null)" != "$AIOSMTPD_VERSION" ]; then
    log "pip install aiosmtpd==$AIOSMTPD_VERSION"
    /usr/bin/python3 -m venv --clear "$TOOLS_ROOT/aiosmtpd"
    "$TOOLS_ROOT/aiosmtpd/bin/pip" install -q --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
  fi
  if [ -f end2end/package.json ] && [ ! -d end2end/node_modules/playwright-core ]; then
    log "npm ci for the browser tests"
    (cd end2end && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
log "done"
