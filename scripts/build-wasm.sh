#!/usr/bin/env bash
# Build the Envoy filter: target/wasm32-wasip1/{release,debug}/palisade.wasm.
#
#   scripts/build-wasm.sh [--debug | --clippy | --profile] [--manifest-path PATH]
#
# --clippy lints the filter code (compiled only for wasm) instead of building.
# --profile builds the filter with its per-phase timers (cargo feature
# `profile`) into target/profile/ (the benchmark's BENCH_PROFILE=1).
# --manifest-path builds another proxy-wasm crate the same way (the
# benchmark's empty filter): target/NAME/NAME.wasm, NAME being its folder.
#
# Toolchain: rustup's wasm32-wasip1 target when available (installed, or
# `rustup target add` succeeds within PALISADE_RUSTUP_TIMEOUT seconds);
# otherwise Debian's rustc-web + -Zbuild-std, which needs no download from
# static.rust-lang.org. PALISADE_WASM_TOOLCHAIN=rustup|debian forces one.
# Cargo's own env vars pass through, e.g. CARGO_PROFILE_RELEASE_OPT_LEVEL=z.
# Release modules are post-optimised with binaryen's `wasm-opt -O3`
# (Debian's `binaryen`, installed here when missing): about 10% smaller and
# no slower, which keeps the filter under its 2 MB budget.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET=wasm32-wasip1
log() { echo "build-wasm: $*" >&2; }

PROFILE=release PROFILE_FLAG=--release MODE=build
NAME=palisade CRATE_ARGS=(--lib) TARGET_DIR="$ROOT/target" DEBIAN_DIR="$ROOT/target/debian-wasm"
while [ $# -gt 0 ]; do
  case "$1" in
    --debug) PROFILE=debug PROFILE_FLAG= ;;
    --clippy) MODE=clippy ;;
    --profile) CRATE_ARGS+=(--features profile) TARGET_DIR="$ROOT/target/profile" DEBIAN_DIR="$ROOT/target/profile-debian" ;;
    --manifest-path)
      NAME=$(basename "$(dirname "$2")")
      CRATE_ARGS=(--manifest-path "$(cd "$(dirname "$2")" && pwd)/Cargo.toml")
      TARGET_DIR="$ROOT/target/$NAME" DEBIAN_DIR="$ROOT/target/$NAME-debian"
      shift ;;
    *) echo "usage: $0 [--debug | --clippy | --profile] [--manifest-path PATH]" >&2; exit 2 ;;
  esac
  shift
done
OUT="$TARGET_DIR/$TARGET/$PROFILE/$NAME.wasm"

# Size-optimised by default: measured on this filter, opt-level "s" is ~7%
# smaller than 3 (1.63 vs 1.75 MiB before the cloud datasets) and the filter
# stays within its latency budget (see `make bench`); "z" saves little more.
export CARGO_PROFILE_RELEASE_OPT_LEVEL="${CARGO_PROFILE_RELEASE_OPT_LEVEL:-s}"
# A panic in the filter kills its VM either way; abort makes the module
# smaller. Native builds keep unwinding (tests and benches need it).
export CARGO_PROFILE_RELEASE_PANIC=abort CARGO_PROFILE_DEV_PANIC=abort
# The filter's stack: 256 KiB instead of the linker's 1 MiB, 768 KiB less
# linear memory in every VM. The module is laid out stack first, so an
# overflow traps rather than corrupting data; the deepest policy the
# parsers take loads and decides within it (tests/e2e/test_config.py).
WASM_RUSTFLAGS=
[ "$NAME" = palisade ] && WASM_RUSTFLAGS="-C link-arg=-zstack-size=262144"

SUDO=
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
apt_install() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2; }

# True if rustup can build for $TARGET (adding the target if needed).
rustup_ready() {
  command -v rustup >/dev/null && command -v cargo >/dev/null || return 1
  rustup target list --installed 2>/dev/null | grep -qx "$TARGET" && return 0
  log "rustup: adding target $TARGET (timeout ${PALISADE_RUSTUP_TIMEOUT:-120}s)"
  timeout "${PALISADE_RUSTUP_TIMEOUT:-120}" rustup target add "$TARGET" >&2
}

build_rustup() {
  log "toolchain: rustup ($(rustc --version))"
  CARGO_TARGET_DIR="$TARGET_DIR" CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="$WASM_RUSTFLAGS" \
    cargo build $PROFILE_FLAG --target "$TARGET" "${CRATE_ARGS[@]}"
}

# Debian's toolchain has no prebuilt wasm std, so std is rebuilt from
# rust-web-src (-Zbuild-std, unlocked by RUSTC_BOOTSTRAP) and linked with
# lld's wasm-ld against Debian's wasi-libc.
DEBIAN_PKGS=(rustc-web cargo-web rust-web-src lld-19 wasi-libc)
build_debian() {
  local missing=() p
  for p in "${DEBIAN_PKGS[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    # Only refresh the package lists if the install fails without it.
    apt_install "${missing[@]}" || { $SUDO apt-get update >&2 && apt_install "${missing[@]}"; }
  fi
  # Paths come from the packages themselves, in case a release moves them.
  local cargo rustc wasmld libc
  cargo=$(dpkg -L cargo-web | grep -m1 -E '/bin/cargo$')
  rustc=$(dpkg -L rustc-web | grep -m1 -E '/bin/rustc$')
  wasmld=$(dpkg -L lld-19 | grep -m1 -E '/llvm-19/bin/wasm-ld$')
  libc=$(dirname "$(dpkg -L wasi-libc | grep -m1 -E '/libc\.a$')")
  log "toolchain: debian ($("$rustc" --version)), target dir ${DEBIAN_DIR#"$ROOT"/}"
  # Separate target dir: the two toolchains would otherwise keep invalidating
  # each other's fingerprints. RUSTUP_TOOLCHAIN is cleared so that nothing
  # reaches back into rustup's proxies.
  env -u RUSTUP_TOOLCHAIN RUSTC="$rustc" RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_DIR="$DEBIAN_DIR" \
    CARGO_TARGET_WASM32_WASIP1_LINKER="$wasmld" \
    CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="-L$libc $WASM_RUSTFLAGS" \
    "$cargo" build $PROFILE_FLAG --target "$TARGET" -Zbuild-std=std,panic_abort "${CRATE_ARGS[@]}"
  # Same output path as the rustup build, so callers don't care. rm first:
  # cargo hard-links OUT to its deps/ copy, which cp would overwrite.
  mkdir -p "$(dirname "$OUT")"
  rm -f "$OUT"
  cp "$DEBIAN_DIR/$TARGET/$PROFILE/$NAME.wasm" "$OUT"
}

if [ "$MODE" = clippy ]; then
  # Debian's toolchain ships no clippy; lint only where rustup can.
  if [ "${PALISADE_WASM_TOOLCHAIN:-auto}" != debian ] && rustup_ready; then
    # The build's flags, so that the two do not rebuild each other's deps.
    export CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="$WASM_RUSTFLAGS"
    cargo clippy --target "$TARGET" --lib -- -D warnings
    # The per-phase timers are compiled only with their feature.
    exec cargo clippy --target "$TARGET" --lib --features profile -- -D warnings
  fi
  log "no rustup wasm target: skipping the wasm clippy pass"
  exit 0
fi

case "${PALISADE_WASM_TOOLCHAIN:-auto}" in
  debian) build_debian ;;
  rustup) rustup_ready || { log "rustup cannot provide $TARGET"; exit 1; }; build_rustup ;;
  auto)
    if rustup_ready; then build_rustup
    else log "rustup cannot provide $TARGET; falling back to Debian's toolchain"; build_debian
    fi ;;
  *) log "PALISADE_WASM_TOOLCHAIN must be rustup, debian or unset"; exit 2 ;;
esac

[ -f "$OUT" ] || { log "missing $OUT after build"; exit 1; }

# Post-optimisation. The features listed are the ones rustc >= 1.82 emits
# by default for wasm32; without them old wasm-opt refuses the module.
if [ "$PROFILE" = release ] && [ "$MODE" = build ]; then
  if ! command -v wasm-opt >/dev/null; then
    log "installing Debian package: binaryen (wasm-opt)"
    apt_install binaryen || { $SUDO apt-get update >&2 && apt_install binaryen; }
  fi
  log "wasm-opt: $(wasm-opt --version)"
  wasm-opt -O3 --strip-debug --enable-bulk-memory --enable-sign-ext \
    --enable-mutable-globals --enable-nontrapping-float-to-int \
    --enable-multivalue --enable-reference-types "$OUT" -o "$OUT.opt" >&2 \
    || { rm -f "$OUT.opt"; log "wasm-opt failed on $OUT"; exit 1; }
  log "wasm-opt: $(stat -c %s "$OUT") -> $(stat -c %s "$OUT.opt") bytes"
  rm -f "$OUT" && mv "$OUT.opt" "$OUT"
fi

stat -c %s "$OUT" | awk -v name="$NAME" '{ printf "%s.wasm: %d bytes (%.2f MiB)\n", name, $1, $1 / 1048576 }'
