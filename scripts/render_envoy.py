#!/usr/bin/env python3
"""Renders an Envoy config template: fills __POLICY_JSON__, __WASM__, the
ports and the challenge prefix.

Usage: render_envoy.py TEMPLATE POLICY_JSON WASM LISTEN ADMIN UPSTREAM \
           [COMPANION COMPANION_INTERNAL] > out.yaml
POLICY_JSON is what `palisade policy-json FILE` prints. COMPANION and
COMPANION_INTERNAL are the ports of the companion's public and internal
listeners (`companion.public`, `companion.internal`; default 8181, 8182).

Placeholders: __POLICY_JSON__, __WASM__, __LISTEN_PORT__, __ADMIN_PORT__,
__UPSTREAM_PORT__, __COMPANION_PORT__, __COMPANION_INTERNAL_PORT__, and
__CHALLENGE_PREFIX__: the policy's `challenge.path_prefix` (default
`/.palisade/`), so the route to the companion always matches the prefix the
filter hands off.
"""
import json
import os
import sys

DEFAULT_PREFIX = "/.palisade/"


def challenge_prefix(policy):
    """The policy's challenge.path_prefix; the default when the text is not
    a policy (tests render deliberately broken configurations too)."""
    try:
        prefix = json.loads(policy).get("challenge", {}).get("path_prefix", DEFAULT_PREFIX)
    except (ValueError, AttributeError):
        return DEFAULT_PREFIX
    return prefix if isinstance(prefix, str) else DEFAULT_PREFIX


def render(template_text, policy, wasm, listen, admin, upstream, companion=8181,
           companion_internal=8182):
    """Fills the placeholders; `policy` is the plugin configuration text."""
    # A JSON string literal is a valid YAML double-quoted scalar.
    return (
        template_text.replace("__POLICY_JSON__", json.dumps(policy))
        .replace("__WASM__", json.dumps(wasm))
        .replace("__CHALLENGE_PREFIX__", json.dumps(challenge_prefix(policy)))
        .replace("__LISTEN_PORT__", str(listen))
        .replace("__ADMIN_PORT__", str(admin))
        .replace("__UPSTREAM_PORT__", str(upstream))
        .replace("__COMPANION_INTERNAL_PORT__", str(companion_internal))
        .replace("__COMPANION_PORT__", str(companion))
    )


if __name__ == "__main__":
    if len(sys.argv) not in (7, 9):
        sys.exit(__doc__)
    template, policy_file, *rest = sys.argv[1:]
    policy = open(policy_file).read().strip()
    json.loads(policy)  # fail here, not inside Envoy, on a broken file
    sys.stdout.write(render(open(template).read(), policy, *rest))
