#!/usr/bin/env python3
"""Writes the nginx demo into OUT_DIR: nginx/nginx.conf with its placeholders
filled in, and the three snippets pointed at the policy's companion.

Usage: render_nginx.py OUT_DIR POLICY_JSON LISTEN_PORT UPSTREAM_PORT [FAILURE_MODE]

POLICY_JSON is `palisade policy-json POLICY`; the companion's listeners
(companion.public, companion.internal) and the challenge prefix
(challenge.path_prefix) come from it. FAILURE_MODE is `closed` (default) or
`open`: what nginx does when the companion cannot answer.
"""
import grp
import json
import os
import pwd
import sys

SNIPPETS = ("palisade-http.conf", "palisade.conf", "palisade-headers.conf")
NGINX_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "nginx")


def current_user():
    """The `user` line: nginx started by root runs its workers as `nobody`,
    who cannot write the temporary directories; keep them the current user's.
    Started by anyone else, nginx cannot switch users, and the line is empty."""
    if os.geteuid() != 0:
        return ""
    entry = pwd.getpwuid(os.geteuid())
    return f"user {entry.pw_name} {grp.getgrgid(entry.pw_gid).gr_name};"


def render(out_dir, policy, listen_port, upstream_port, failure_mode="closed"):
    """Writes the demo into `out_dir` for `policy` (a dict)."""
    if failure_mode not in ("closed", "open"):
        raise ValueError(f"FAILURE_MODE must be closed or open, not {failure_mode!r}")
    companion = policy.get("companion", {})
    prefix = policy.get("challenge", {}).get("path_prefix", "/.palisade/")
    replacements = {
        "127.0.0.1:8181": companion.get("public", "127.0.0.1:8181"),
        "127.0.0.1:8182": companion.get("internal", "127.0.0.1:8182"),
        "location /.palisade/ {": f"location {prefix} {{",
        "    default closed;": f"    default {failure_mode};",
        "__WORK__": os.path.abspath(out_dir),
        "__LISTEN_PORT__": str(int(listen_port)),
        "__UPSTREAM_PORT__": str(int(upstream_port)),
        "__USER__": current_user(),
    }
    os.makedirs(os.path.join(out_dir, "tmp"), exist_ok=True)
    docs = os.path.join(out_dir, "www", "api", "docs")
    os.makedirs(docs, exist_ok=True)
    with open(os.path.join(docs, "index.html"), "w") as page:
        page.write("<!doctype html><title>API docs</title><h1>API docs, served by nginx</h1>\n")
    unused = set(replacements)
    for name in SNIPPETS + ("nginx.conf",):
        text = open(os.path.join(NGINX_DIR, name)).read()
        for old, new in replacements.items():
            if old in text:
                unused.discard(old)
                text = text.replace(old, new)
        with open(os.path.join(out_dir, name), "w") as out:
            out.write(text)
    if unused:
        # A snippet was edited and a setting would silently keep its default.
        raise ValueError(f"nothing in nginx/ to replace for {sorted(unused)}")


def main(out_dir, policy_json, listen_port, upstream_port, failure_mode="closed"):
    try:
        render(out_dir, json.load(open(policy_json)), listen_port, upstream_port, failure_mode)
    except (OSError, ValueError) as e:
        sys.exit(f"render_nginx.py: {e}")


if __name__ == "__main__":
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    main(*sys.argv[1:])
