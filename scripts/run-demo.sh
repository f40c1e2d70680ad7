#!/usr/bin/env bash
# `make run`: the demo upstream on 127.0.0.1:8080, the companion
# (`palisade serve`, on the policy's companion.public and .internal:
# 127.0.0.1:8181 and :8182) and Envoy with Palisade on 127.0.0.1:10000
# (admin 127.0.0.1:9901), in the foreground until Ctrl-C stops them all.
# `make run-nginx` (PROXY=nginx): the same with Debian's nginx on
# 127.0.0.1:10080 in place of Envoy, its configuration rendered into
# target/nginx/ (NGINX_FAILURE_MODE: closed or open).
# Ports can be changed with LISTEN_PORT, ADMIN_PORT and UPSTREAM_PORT; the
# companion's in the policy.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PROXY=${PROXY:-envoy}
case "$PROXY" in
  envoy) LISTEN_PORT=${LISTEN_PORT:-10000} ;;
  nginx) LISTEN_PORT=${LISTEN_PORT:-10080} ;;
  *) echo "run-demo.sh: PROXY must be envoy or nginx, not '$PROXY'" >&2; exit 2 ;;
esac
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
if [ "$PROXY" = envoy ]; then
  python3 scripts/render_envoy.py envoy/demo.yaml "$WORK/policy.json" \
    "$ROOT/target/wasm32-wasip1/release/palisade.wasm" \
    "$LISTEN_PORT" "$ADMIN_PORT" "$UPSTREAM_PORT" \
    "$COMPANION_PORT" "$COMPANION_INTERNAL_PORT" > "$WORK/envoy.yaml"
else
  NGINX_WORK=target/nginx
  python3 scripts/render_nginx.py "$NGINX_WORK" "$WORK/policy.json" \
    "$LISTEN_PORT" "$UPSTREAM_PORT" "${NGINX_FAILURE_MODE:-closed}"
  nginx -t -q -p "$NGINX_WORK" -c "$ROOT/$NGINX_WORK/nginx.conf" -e stderr
fi

PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
python3 envoy/upstream.py "$UPSTREAM_PORT" &
PIDS+=($!)
target/release/palisade serve --config "$POLICY" > "$WORK/companion.log" &
PIDS+=($!)

if [ "$PROXY" = envoy ]; then
  ADMIN_LINE="Envoy admin:     http://127.0.0.1:$ADMIN_PORT/stats?filter=palisade"
else
  ADMIN_LINE="nginx logs:      $NGINX_WORK/access.log, $NGINX_WORK/error.log"
fi
cat <<MSG

  Palisade demo:   http://127.0.0.1:$LISTEN_PORT/  (through $PROXY)
  $ADMIN_LINE
  Companion:       http://127.0.0.1:$COMPANION_INTERNAL_PORT/stats  (log: $WORK/companion.log)
  Try:             curl -i http://127.0.0.1:$LISTEN_PORT/admin/     (blocked)
                   curl -i http://127.0.0.1:$LISTEN_PORT/login      (challenged)
  In a browser:    http://127.0.0.1:$LISTEN_PORT/demo/text  (also /demo/one-click,
                   /demo/grid, /demo/audio, /demo/chart, /demo/pow,
                   /demo/altcha)
  Stop with Ctrl-C.

MSG
if [ "$PROXY" = envoy ]; then
  .venv/bin/envoy -c "$WORK/envoy.yaml" --concurrency 2 --use-dynamic-base-id --log-level warning \
    --component-log-level wasm:info  # Palisade logs monitor decisions at info
else
  nginx -p "$NGINX_WORK" -c "$ROOT/$NGINX_WORK/nginx.conf" -e stderr
fi
