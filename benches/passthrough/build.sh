#!/usr/bin/env bash
# Build the empty pass-through filter: target/passthrough/passthrough.wasm.
#
#   benches/passthrough/build.sh
#
# Same toolchain choice as scripts/build-wasm.sh (which only builds the
# root crate): rustup's wasm32-wasip1 target when available, else Debian's
# rustc-web + -Zbuild-std; PALISADE_WASM_TOOLCHAIN=rustup|debian forces one.
# Keep the two in step (see the Debian notes in build-wasm.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
TARGET=wasm32-wasip1
MANIFEST="$ROOT/benches/passthrough/Cargo.toml"
OUT="$ROOT/target/passthrough/passthrough.wasm"
log() { echo "build-passthrough: $*" >&2; }

SUDO=
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
apt_install() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2; }

rustup_ready() {
  command -v rustup >/dev/null && command -v cargo >/dev/null || return 1
  rustup target list --installed 2>/dev/null | grep -qx "$TARGET" && return 0
  log "rustup: adding target $TARGET (timeout ${PALISADE_RUSTUP_TIMEOUT:-120}s)"
  timeout "${PALISADE_RUSTUP_TIMEOUT:-120}" rustup target add "$TARGET" >&2
}

build_rustup() {
  log "toolchain: rustup ($(rustc --version))"
  CARGO_TARGET_DIR="$ROOT/target/passthrough" \
    cargo build --release --target "$TARGET" --manifest-path "$MANIFEST"
  BUILT="$ROOT/target/passthrough/$TARGET/release/passthrough.wasm"
}

DEBIAN_PKGS=(rustc-web cargo-web rust-web-src lld-19 wasi-libc)
build_debian() {
  local missing=() p
  for p in "${DEBIAN_PKGS[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt_install "${missing[@]}" || { $SUDO apt-get update >&2 && apt_install "${missing[@]}"; }
  fi
  local cargo rustc wasmld libc
  cargo=$(dpkg -L cargo-web | grep -m1 -E '/bin/cargo$')
  rustc=$(dpkg -L rustc-web | grep -m1 -E '/bin/rustc$')
  wasmld=$(dpkg -L lld-19 | grep -m1 -E '/llvm-19/bin/wasm-ld$')
  libc=$(dirname "$(dpkg -L wasi-libc | grep -m1 -E '/libc\.a$')")
  log "toolchain: debian ($("$rustc" --version)), target dir target/passthrough-debian"
  env -u RUSTUP_TOOLCHAIN RUSTC="$rustc" RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_DIR="$ROOT/target/passthrough-debian" \
    CARGO_TARGET_WASM32_WASIP1_LINKER="$wasmld" \
    CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="-L$libc" \
    "$cargo" build --release --target "$TARGET" -Zbuild-std=std,panic_abort --manifest-path "$MANIFEST"
  BUILT="$ROOT/target/passthrough-debian/$TARGET/release/passthrough.wasm"
}

case "${PALISADE_WASM_TOOLCHAIN:-auto}" in
  debian) build_debian ;;
  rustup) rustup_ready || { log "rustup cannot provide $TARGET"; exit 1; }; build_rustup ;;
  auto)
    if rustup_ready; then build_rustup
    else log "rustup cannot provide $TARGET; falling back to Debian's toolchain"; build_debian
    fi ;;
  *) log "PALISADE_WASM_TOOLCHAIN must be rustup, debian or unset"; exit 2 ;;
esac

[ -f "$BUILT" ] || { log "missing $BUILT after build"; exit 1; }
mkdir -p "$(dirname "$OUT")"
# rm first: cargo hard-links its output to deps/, which cp would overwrite.
rm -f "$OUT"
cp "$BUILT" "$OUT"
stat -c %s "$OUT" | awk -v out="$OUT" '{ printf "%s: %d bytes\n", out, $1 }' >&2
