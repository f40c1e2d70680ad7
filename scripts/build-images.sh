#!/usr/bin/env bash
# Build Palisade's two OCI images without a container engine daemon:
#
#   palisade-wasm       the filter, Wasm "compat" image (images/wasm.Containerfile)
#   palisade-companion  `palisade serve`, FROM scratch (images/companion.Containerfile)
#
#   scripts/build-images.sh [--out DIR]
#
# Each image is written to DIR (default target/images) twice: as an OCI
# layout (DIR/NAME, tag = the crate version) and as a docker-archive
# (DIR/NAME.tar, for `docker load` / `podman load`); the build contexts
# stay in DIR/context/. The last lines printed are the images' manifest
# digests, one `NAME:VERSION sha256:...` a line: the digests a registry
# shows after `skopeo copy oci:DIR/NAME:VERSION docker://...`.
#
# Inputs, built by `make images` first: target/wasm32-wasip1/release/palisade.wasm
# (`make wasm`) and target/release/palisade (`make build`; CARGO_TARGET_DIR
# is honoured). The companion image carries that glibc binary with exactly
# the shared objects `ldd` names (libc, libm, libgcc_s and the loader, from
# the build machine), at the paths `ldd` gives, rather than a static musl
# build: the e2e suite builds the release binary anyway, and a musl build
# (x86_64-unknown-linux-musl with musl-gcc; it works, static-pie) is a
# second full LTO build of the crate, measured at 15 minutes beside the
# glibc one (one job each, 2 shared cores), against seconds for this. glibc's
# DNS and files lookups are inside libc.so.6 (>= 2.34), so no NSS modules or
# nsswitch.conf are needed.
#
# Reproducible: the same tree and build machine give the same digests.
# buildah runs with --timestamp 0 (image creation time and every file's
# mtime), the contexts are staged with fixed modes, and each run starts from
# empty storage. buildah (vfs storage under DIR/.buildah: no fuse-overlayfs,
# no daemon, no registry, since both images are FROM scratch) and skopeo
# come from Debian (scripts/install-system-deps.sh, run here when they are
# missing). Needs root (or a user buildah can run rootless for).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { echo "build-images: $*" >&2; }

OUT="$ROOT/target/images"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$(mkdir -p "$2" && cd "$2" && pwd); shift ;;
    *) echo "usage: $0 [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
WASM="$ROOT/target/wasm32-wasip1/release/palisade.wasm"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/palisade"

command -v buildah >/dev/null && command -v skopeo >/dev/null || bash scripts/install-system-deps.sh

# --- inputs -------------------------------------------------------------------
[ -f "$WASM" ] || { log "missing $WASM: run \`make wasm\` first"; exit 1; }
[ -x "$BIN" ] || { log "missing $BIN: run \`make build\` first"; exit 1; }
# The shared objects the binary loads, as ldd resolves them: `NAME => PATH
# (ADDR)` lines and the loader's own `PATH (ADDR)` line (none when static).
LIBS=()
if ldd_out=$(LC_ALL=C ldd "$BIN" 2>&1); then
  if grep -q 'not found' <<<"$ldd_out"; then log "ldd $BIN: $ldd_out"; exit 1; fi
  mapfile -t LIBS < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$ldd_out" | sort -u)
fi

# --- build contexts (fixed modes and mtimes, so that the engine-built image
# is reproducible too) ----------------------------------------------------------
CTX="$OUT/context"
rm -rf "$CTX"
mkdir -p "$CTX/wasm" "$CTX/companion/rootfs/usr/local/bin" "$CTX/companion/rootfs/palisade/datasets" \
  "$CTX/companion/rootfs/etc/palisade" "$CTX/companion/rootfs/tmp" "$CTX/companion/data"
cp "$WASM" "$CTX/wasm/palisade.wasm"
cp "$BIN" "$CTX/companion/rootfs/usr/local/bin/palisade"
for lib in "${LIBS[@]}"; do
  mkdir -p "$CTX/companion/rootfs$(dirname "$lib")"
  cp -L "$lib" "$CTX/companion/rootfs$lib"   # the file, not a symlink (/lib64's loader is one)
done
# What `palisade serve` reads from disk (see images/companion.Containerfile).
for d in altcha audio charts fonts images models networks; do
  cp -R "datasets/$d" "$CTX/companion/rootfs/palisade/datasets/$d"
done
cp datasets/README.md "$CTX/companion/rootfs/palisade/datasets/"
chmod -R u=rwX,go=rX "$CTX"
chmod 0755 "$CTX/companion/rootfs/usr/local/bin/palisade" "${LIBS[@]/#/$CTX/companion/rootfs}"
chmod 1777 "$CTX/companion/rootfs/tmp"
find "$CTX" -exec touch -h -d @0 {} +

# --- images -------------------------------------------------------------------
STORE="$OUT/.buildah"
rm -rf "$STORE"
# vfs: plain directory copies, no fuse-overlayfs or overlay mounts needed.
BUILDAH=(buildah --storage-driver vfs --root "$STORE/root" --runroot "$STORE/run")
export BUILDAH_ISOLATION=chroot
trap 'rm -rf "$STORE"' EXIT

# build NAME CONTAINERFILE CONTEXT [extra buildah bud args]
build() {
  local name=$1 file=$2 context=$3; shift 3
  local ref="localhost/$name:$VERSION"
  log "$name: buildah bud -f ${file#"$ROOT"/}"
  "${BUILDAH[@]}" bud --quiet --timestamp 0 --format oci --pull=never \
    --build-arg "VERSION=$VERSION" "$@" -f "$file" -t "$ref" "$context" >/dev/null
  rm -rf "$OUT/$name" "$OUT/$name.tar"
  # gzip layers in the OCI layout: Istio and Envoy Gateway accept a compat
  # layer only as ...tar+gzip (or Docker's tar.gzip).
  "${BUILDAH[@]}" push --quiet --compression-format gzip "$ref" "oci:$OUT/$name:$VERSION" >/dev/null
  # The docker-archive from that layout (buildah's own would also carry the
  # localhost/ name): layers uncompressed, tagged NAME:VERSION.
  skopeo copy --quiet "oci:$OUT/$name:$VERSION" "docker-archive:$OUT/$name.tar:$name:$VERSION" >/dev/null
}

build palisade-wasm "$ROOT/images/wasm.Containerfile" "$CTX/wasm" \
  --annotation module.wasm.image/variant=compat
build palisade-companion "$ROOT/images/companion.Containerfile" "$CTX/companion"

# --- digests ------------------------------------------------------------------
for name in palisade-wasm palisade-companion; do
  digest=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' \
    "$OUT/$name/index.json")
  log "$name: oci:${OUT#"$ROOT"/}/$name:$VERSION, docker-archive:${OUT#"$ROOT"/}/$name.tar" \
    "(sha256 $(sha256sum "$OUT/$name.tar" | cut -c1-64))"
  echo "$name:$VERSION $digest"
done
