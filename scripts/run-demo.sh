#!/usr/bin/env bash
# `make run`: the demo upstream on 127.0.0.1:8080, the companion
# (`palisade serve`, on the policy's companion.public and .internal:
# 127.0.0.1:8181 and :8182) and Envoy with Palisade on 127.0.0.1:10000
# (admin 127.0.0.1:9901), in the foreground until Ctrl-C stops them all.
# Ports can be changed with LISTEN_PORT, ADMIN_PORT and UPSTREAM_PORT; the
# companion's in the policy.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

LISTEN_PORT=${LISTEN_PORT:-10000}
ADMIN_PORT=${ADMIN_PORT:-9901}
UPSTREAM_PORT=${UPSTREAM_PORT:-8080}
POLICY=${POLICY:-envoy/demo-policy.yaml}
WORK=target/demo
mkdir -p "$WORK"

target/release/palisade check-config "$POLICY"
target/release/palisade policy-json "$POLICY" > "$WORK/policy.json"
# The companion's ports, as the policy sets them (defaults 8181 and 8182).
read -r COMPANION_PORT COMPANION_INTERNAL_PORT < <(python3 -c '
import json, sys
c = json.load(open(sys.argv[1])).get("companion", {})
port = lambda field, default: c.get(field, default).rsplit(":", 1)[1]
print(port("public", "127.0.0.1:8181"), port("internal", "127.0.0.1:8182"))
' "$WORK/policy.json")
python3 scripts/render_envoy.py envoy/demo.yaml "$WORK/policy.json" \
  "$ROOT/target/wasm32-wasip1/release/palisade.wasm" \
  "$LISTEN_PORT" "$ADMIN_PORT" "$UPSTREAM_PORT" \
  "$COMPANION_PORT" "$COMPANION_INTERNAL_PORT" > "$WORK/envoy.yaml"

PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
python3 envoy/upstream.py "$UPSTREAM_PORT" &
PIDS+=($!)
target/release/palisade serve --config "$POLICY" > "$WORK/companion.log" &
PIDS+=($!)

cat <<MSG

  Palisade demo:   http://127.0.0.1:$LISTEN_PORT/
  Envoy admin:     http://127.0.0.1:$ADMIN_PORT/stats?filter=palisade
  Companion:       http://127.0.0.1:$COMPANION_INTERNAL_PORT/stats  (log: $WORK/companion.log)
  Try:             curl -i http://127.0.0.1:$LISTEN_PORT/admin/     (blocked)
                   curl -i http://127.0.0.1:$LISTEN_PORT/login      (challenged)
  In a browser:    http://127.0.0.1:$LISTEN_PORT/demo/text  (also /demo/one-click,
                   /demo/grid, /demo/audio, /demo/pow)
  Stop with Ctrl-C.

MSG
.venv/bin/envoy -c "$WORK/envoy.yaml" --concurrency 2 --use-dynamic-base-id --log-level warning \
  --component-log-level wasm:info  # Palisade logs monitor decisions at info
