#!/usr/bin/env bash
# Renders the sidecar's Envoy configuration for the ConfigMap:
# envoy/sidecar.yaml with a policy (as JSON), the module path inside the pod
# and the pod's ports. kustomization.yaml turns the result into the
# `palisade-envoy` ConfigMap.
#
# Usage: envoy/kubernetes/render.sh [POLICY]     (default: envoy/kubernetes/policy.yaml)
# Environment: OUT (default envoy/kubernetes/envoy.yaml), WASM_PATH
# (default /etc/palisade/palisade.wasm), LISTEN_PORT (8000), ADMIN_PORT (9901),
# APP_PORT (8080), PALISADE (the CLI, default target/release/palisade).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

POLICY=${1:-$HERE/policy.yaml}
OUT=${OUT:-$HERE/envoy.yaml}
WASM_PATH=${WASM_PATH:-/etc/palisade/palisade.wasm}
PALISADE=${PALISADE:-$ROOT/target/release/palisade}

json=$(mktemp)
trap 'rm -f "$json"' EXIT
# policy-json validates the policy, and a policy whose keys come only from
# PALISADE_KEYS needs the variable set to validate: a throwaway key is used
# when it is unset. Keys never appear in the output.
PALISADE_KEYS=${PALISADE_KEYS:-"0:base64:$(head -c 32 /dev/urandom | base64)"} \
  "$PALISADE" policy-json "$POLICY" > "$json"

# A key written in the policy would end up in a ConfigMap, readable by anyone
# who can read ConfigMaps in the namespace: refuse.
python3 - "$json" <<'PY'
import json, sys
keys = json.load(open(sys.argv[1])).get("tokens", {}).get("keys") or []
if keys:
    sys.exit("render.sh: the policy has tokens.keys; in Kubernetes keep keys in the "
             "palisade-keys Secret (PALISADE_KEYS) and set `keys: []`")
PY

python3 "$ROOT/scripts/render_envoy.py" "$ROOT/envoy/sidecar.yaml" "$json" "$WASM_PATH" \
  "${LISTEN_PORT:-8000}" "${ADMIN_PORT:-9901}" "${APP_PORT:-8080}" > "$OUT"
echo "render.sh: wrote $OUT" >&2
