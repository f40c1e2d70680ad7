#!/usr/bin/env python3
"""Renders an Envoy config template: fills __POLICY_JSON__, __WASM__ and ports.

Usage: render_envoy.py TEMPLATE POLICY_JSON WASM LISTEN ADMIN UPSTREAM > out.yaml
POLICY_JSON is what `palisade policy-json FILE` prints.
"""
import json
import sys


def render(template_text, policy, wasm, listen, admin, upstream):
    """Fills the placeholders; `policy` is the plugin configuration text."""
    # A JSON string literal is a valid YAML double-quoted scalar.
    return (
        template_text.replace("__POLICY_JSON__", json.dumps(policy))
        .replace("__WASM__", json.dumps(wasm))
        .replace("__LISTEN_PORT__", str(listen))
        .replace("__ADMIN_PORT__", str(admin))
        .replace("__UPSTREAM_PORT__", str(upstream))
    )


if __name__ == "__main__":
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    template, policy_file, *rest = sys.argv[1:]
    policy = open(policy_file).read().strip()
    json.loads(policy)  # fail here, not inside Envoy, on a broken file
    sys.stdout.write(render(open(template).read(), policy, *rest))
