#!/usr/bin/env bash
# Vendors the ALTCHA widget (npm `altcha`, MIT) into datasets/altcha/: the
# built ES module the companion serves at <prefix>altcha.js, its licence,
# and a note of the version and checksum. Run it to update the pin; the
# companion only reads the files it writes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=2.3.0 # widget v2: ALTCHA's v1 challenge format (docs/providers.md)
OUT="$ROOT/datasets/altcha"
log() { echo "vendor-altcha: $*" >&2; }

command -v npm >/dev/null || { log "npm is missing: run scripts/install-system-deps.sh"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log "npm install altcha@$VERSION"
npm install --prefix "$work" --no-save --no-audit --no-fund --silent "altcha@$VERSION" >&2
pkg="$work/node_modules/altcha"
got=$(node -p "require('$pkg/package.json').version")
[ "$got" = "$VERSION" ] || { log "npm gave altcha $got, not $VERSION"; exit 1; }
[ "$(node -p "require('$pkg/package.json').license")" = "MIT" ] || { log "the licence is no longer MIT"; exit 1; }

mkdir -p "$OUT"
cp "$pkg/dist/altcha.js" "$OUT/altcha.js"
cp "$pkg/LICENSE.txt" "$OUT/LICENSE.txt"
sum=$(sha256sum "$OUT/altcha.js" | cut -d' ' -f1)
cat > "$OUT/README.md" <<NOTE
# ALTCHA widget

\`altcha.js\` is \`dist/altcha.js\` of the npm package \`altcha\` $VERSION
(<https://github.com/altcha-org/altcha>), MIT licence (\`LICENSE.txt\`),
unmodified; sha256 \`$sum\`. Written by \`scripts/vendor-altcha.sh\`; the
companion serves it at \`<prefix>altcha.js\` when \`companion.providers.altcha\`
is configured.
NOTE
log "wrote $OUT (altcha $VERSION, sha256 $sum)"
