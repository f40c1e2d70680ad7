#!/usr/bin/env bash
# Renders the files kustomize turns into ConfigMaps, from one policy:
#
#   base/envoy.yaml                            the sidecar's Envoy configuration:
#       envoy/sidecar.yaml with the policy (as JSON), the module's path in
#       the pod and the pod's ports, plus a `probe` listener (below);
#   overlays/shared-companion/policy.json      the policy with the overlay's
#       companion section (overlays/shared-companion/companion.yaml) merged in;
#   overlays/shared-companion/envoy.yaml       as base/envoy.yaml, with that
#       policy, and the two companion clusters pointing at the
#       `palisade-companion` Service instead of 127.0.0.1.
#
# All three are committed, so `kubectl apply -k` needs no Rust toolchain;
# rerun this after editing base/policy.yaml or the overlay's companion.yaml
# (tests/e2e/test_manifests.py fails while a committed file is stale).
#
# Usage: envoy/kubernetes/render.sh [POLICY]     (default: envoy/kubernetes/base/policy.yaml)
# Environment: OUT (default envoy/kubernetes/base/envoy.yaml), SHARED_DIR
# (default envoy/kubernetes/overlays/shared-companion; empty: skip the
# overlay), WASM_PATH (default /etc/palisade-wasm/plugin.wasm, where
# deployment.yaml mounts the module image), LISTEN_PORT (8000), ADMIN_PORT
# (9901), APP_PORT (8080), PROBE_PORT (9902), COMPANION_PORT (8181),
# COMPANION_INTERNAL_PORT (8182), PALISADE (the CLI, default
# target/release/palisade), PYTHON (default .venv/bin/python, else python3).
#
# The probe listener: the kubelet probes the pod IP, but Envoy's admin API
# is on 127.0.0.1 (it can change state, so it must stay there). The
# listener on PROBE_PORT passes exactly `GET /ready` to the admin API's
# /ready (200 once Envoy has initialised, i.e. the policy loaded) and
# answers 404 to everything else.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

POLICY=${1:-$HERE/base/policy.yaml}
OUT=${OUT:-$HERE/base/envoy.yaml}
SHARED_DIR=${SHARED_DIR-$HERE/overlays/shared-companion}
WASM_PATH=${WASM_PATH:-/etc/palisade-wasm/plugin.wasm}
PALISADE=${PALISADE:-$ROOT/target/release/palisade}
# PyYAML is needed for the overlay's companion.yaml: the project's .venv
# has it (scripts/install-envoy.sh), Debian's python3-yaml too.
PY=${PYTHON:-python3}
[ -z "${PYTHON:-}" ] && [ -x "$ROOT/.venv/bin/python" ] && PY=$ROOT/.venv/bin/python

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# policy-json validates the policy, and a policy whose keys come only from
# PALISADE_KEYS needs the variable set to validate: a throwaway key is used
# when it is unset. Keys never appear in the output.
export PALISADE_KEYS=${PALISADE_KEYS:-"0:base64:$(head -c 32 /dev/urandom | base64)"}
"$PALISADE" policy-json "$POLICY" > "$work/policy.json"
if [ -n "$SHARED_DIR" ]; then
  # The overlay's policy: the base policy with its companion section merged
  # over the base's, validated like the base.
  "$PY" - "$work/policy.json" "$SHARED_DIR/companion.yaml" "$work/shared.json" <<'PY'
import json, sys
try:
    import yaml
except ImportError:
    sys.exit("render.sh: needs PyYAML (python3-yaml, or .venv/bin/python3)")
policy = json.load(open(sys.argv[1]))
section = yaml.safe_load(open(sys.argv[2]))["companion"]
policy["companion"] = {**policy.get("companion", {}), **section}
json.dump(policy, open(sys.argv[3], "w"), separators=(",", ":"))
PY
  "$PALISADE" policy-json "$work/shared.json" > "$work/shared-policy.json"
fi

"$PY" - "$ROOT" "$work" "$OUT" "${SHARED_DIR}" "$WASM_PATH" "${LISTEN_PORT:-8000}" \
  "${ADMIN_PORT:-9901}" "${APP_PORT:-8080}" "${PROBE_PORT:-9902}" "${COMPANION_PORT:-8181}" \
  "${COMPANION_INTERNAL_PORT:-8182}" <<'PY'
import json, os, sys
root, work, out, shared_dir, wasm, listen, admin, app, probe, comp, comp_internal = sys.argv[1:]
sys.path.insert(0, os.path.join(root, "scripts"))
import render_envoy

def refuse_keys(path):
    # A key written in the policy would end up in a ConfigMap, readable by
    # anyone who can read ConfigMaps in the namespace: refuse.
    if (json.load(open(path)).get("tokens", {}).get("keys") or []):
        sys.exit("render.sh: the policy has tokens.keys; in Kubernetes keep keys in the "
                 "palisade-keys Secret (PALISADE_KEYS) and set `keys: []`")

PROBE_LISTENER = f"""\
  # The kubelet's readiness probe (deployment.yaml) comes to the pod IP; the
  # admin API stays on loopback. This listener passes exactly GET /ready to
  # the admin API's /ready (200 once Envoy is initialised) and answers 404
  # to anything else. Added by envoy/kubernetes/render.sh.
  - name: probe
    address:
      socket_address: {{address: 0.0.0.0, port_value: {probe}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: probe
          route_config:
            virtual_hosts:
            - name: probe
              domains: ["*"]
              routes:
              - match:
                  path: /ready
                  headers:
                  - name: ":method"
                    string_match: {{exact: GET}}
                route: {{cluster: envoy_admin, timeout: 2s}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"""
ADMIN_CLUSTER = f"""\
  # The admin API, for the probe listener's /ready only.
  - name: envoy_admin
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: envoy_admin
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{address: 127.0.0.1, port_value: {admin}}}
"""

def insert_after(text, line, block):
    assert text.count(line) == 1, f"render.sh: {line!r} is not once in envoy/sidecar.yaml"
    return text.replace(line, line + block)

def render(policy_path):
    refuse_keys(policy_path)
    policy = open(policy_path).read().strip()
    template = open(os.path.join(root, "envoy", "sidecar.yaml")).read()
    text = render_envoy.render(template, policy, wasm, listen, admin, app, comp, comp_internal)
    text = insert_after(text, "\n  listeners:\n", PROBE_LISTENER)
    return insert_after(text, "\n  clusters:\n", ADMIN_CLUSTER)

def to_service(text):
    """The companion clusters of the sidecar config, pointed at the
    palisade-companion Service (the shared-companion overlay)."""
    for port in (comp, comp_internal):
        static = ("    type: STATIC\n    load_assignment:\n", f"port_value: {port}}}")
        start = text.index(f"socket_address: {{address: 127.0.0.1, port_value: {port}}}")
        cluster_start = text.rindex("  - name: palisade_companion", 0, start)
        chunk = text[cluster_start:start]
        assert static[0] in chunk, "render.sh: a companion cluster is not STATIC"
        text = (text[:cluster_start]
                + chunk.replace(static[0], "    # The palisade-companion Service, shared by every pod (the overlay's\n"
                                           "    # companion.yaml); its ClusterIP, resolved through the pod's DNS\n"
                                           "    # search path (c-ares reads resolv.conf's search list; not tried on a\n"
                                           "    # cluster here), so the namespace does not matter.\n"
                                           "    type: STRICT_DNS\n    dns_lookup_family: V4_PREFERRED\n"
                                           "    load_assignment:\n")
                + f"socket_address: {{address: palisade-companion, port_value: {port}}}"
                + text[start + len(f"socket_address: {{address: 127.0.0.1, port_value: {port}}}"):])
    return text

header = ("# GENERATED by envoy/kubernetes/render.sh from {src} and envoy/sidecar.yaml:\n"
          "# do not edit; rerun render.sh.\n")
# Everything is rendered (and checked) before anything is written.
outputs = {out: header.format(src="base/policy.yaml") + render(os.path.join(work, "policy.json"))}
if shared_dir:
    shared_policy = os.path.join(work, "shared-policy.json")
    outputs[os.path.join(shared_dir, "envoy.yaml")] = (
        header.format(src="base/policy.yaml, overlays/shared-companion/companion.yaml")
        + to_service(render(shared_policy)))
    outputs[os.path.join(shared_dir, "policy.json")] = open(shared_policy).read()
for path, text in outputs.items():
    with open(path, "w") as f:
        f.write(text)
    print(f"render.sh: wrote {path}", file=sys.stderr)
PY
