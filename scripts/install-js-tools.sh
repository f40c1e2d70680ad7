#!/usr/bin/env bash
# Install the npm packages the tests use into target/js (not the repo):
# axe-core, the accessibility checker the browser tests run on every
# challenge page. Idempotent: a fast no-op when the pinned version is there.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR="$ROOT/target/js"
PKGS=(axe-core@4.14.1)
log() { echo "install-js-tools: $*" >&2; }

installed() {
  local name=${1%@*} version=${1##*@}
  [ "$(node -p "require('$DIR/node_modules/$name/package.json').version" 2>/dev/null)" = "$version" ]
}

missing=()
for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then
  log "already installed: ${PKGS[*]}"
  exit 0
fi
command -v npm >/dev/null || { log "npm is missing: run scripts/install-system-deps.sh"; exit 1; }
mkdir -p "$DIR"
log "npm install ${missing[*]}"
npm install --prefix "$DIR" --no-save --no-audit --no-fund --silent "${missing[@]}" >&2
