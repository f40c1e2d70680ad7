#!/usr/bin/env bash
# Install the Debian packages the tests and benchmarks use. Only missing
# packages are installed (a fast no-op otherwise) and no service is started:
# the tests run their own nginx/redis on free ports.
set -euo pipefail

PKGS=(nginx redis-server chromium chromium-driver wrk hyperfine espeak-ng sox fonts-dejavu-core binaryen)
# `make images` (scripts/build-images.sh): buildah builds the images without
# a daemon; skopeo reads OCI layouts (tests) and pushes them to registries.
PKGS+=(buildah skopeo)
# `make bench` (scripts/bench-abuse.py): OCR on text challenges.
PKGS+=(tesseract-ocr)
# The challenge page's unit tests run under Node; use Debian's only if the
# machine has no node of its own.
command -v node >/dev/null || PKGS+=(nodejs)
command -v npm >/dev/null || PKGS+=(npm)
log() { echo "install-system-deps: $*" >&2; }

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { log "not root and no sudo; cannot install"; exit 1; }
  SUDO=sudo
fi

# dpkg-query's status rather than `dpkg -s`'s exit code: the latter also
# succeeds for removed packages whose config files remain.
missing=()
for p in "${PKGS[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  log "all present: ${PKGS[*]}"
  exit 0
fi

# nginx and redis-server start themselves on install; a policy-rc.d that
# answers 101 ("action forbidden") stops that, on systemd and sysvinit alike.
# Only add one if none exists, and remove only our own.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  trap '$SUDO rm -f "$POLICY"' EXIT
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
fi

log "installing: ${missing[*]}"
$SUDO apt-get update >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2
log "done"
