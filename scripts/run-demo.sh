#!/usr/bin/env bash
# `make run`: the demo upstream on 127.0.0.1:8080 and Envoy with Palisade on
# 127.0.0.1:10000 (admin 127.0.0.1:9901), in the foreground until Ctrl-C.
# Ports can be changed with LISTEN_PORT, ADMIN_PORT and UPSTREAM_PORT.
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
python3 scripts/render_envoy.py envoy/demo.yaml "$WORK/policy.json" \
  "$ROOT/target/wasm32-wasip1/release/palisade.wasm" \
  "$LISTEN_PORT" "$ADMIN_PORT" "$UPSTREAM_PORT" > "$WORK/envoy.yaml"

python3 envoy/upstream.py "$UPSTREAM_PORT" &
UPSTREAM=$!
trap 'kill $UPSTREAM 2>/dev/null || true' EXIT

cat <<MSG

  Palisade demo:   http://127.0.0.1:$LISTEN_PORT/
  Envoy admin:     http://127.0.0.1:$ADMIN_PORT/stats?filter=palisade
  Try:             curl -i http://127.0.0.1:$LISTEN_PORT/admin/     (blocked)
                   curl -i http://127.0.0.1:$LISTEN_PORT/login      (challenged)
  Stop with Ctrl-C.

MSG
.venv/bin/envoy -c "$WORK/envoy.yaml" --concurrency 2 --use-dynamic-base-id --log-level warning \
  --component-log-level wasm:info  # Palisade logs monitor decisions at info
