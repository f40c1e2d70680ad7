"""Rules on where a client comes from, through real Envoy: the filter, which
carries no geo table, decides by country, ASN and hosting from the ranges
`palisade policy-json` resolves them into (`resolved_ranges`), and refuses at
load time a policy whose geo conditions come without them, naming the
condition."""
import json
import tempfile
from pathlib import Path

import pytest
import requests

import render_envoy
from conftest import (
    BROWSER_HEADERS,
    ROOT,
    WASM,
    free_port,
    policy_json,
    policy_without_scoring,
    start_envoy,
)
from test_config import invalid_lines, running


def with_rules(rules):
    """The demo policy with `rules` in front, as `policy-json` prints it
    (so with the ranges they need)."""
    policy = policy_without_scoring()
    policy["rules"][:0] = rules
    source = Path(tempfile.mkdtemp(prefix="palisade-e2e-geo-")) / "policy.json"
    source.write_text(json.dumps(policy))
    return policy_json(source)


def geo_policy():
    return with_rules([
        {"name": "google-us", "when": {"country": ["US"], "asn": [15169]}, "action": "block"},
        {"name": "datacenter", "when": {"hosting": True}, "action": "block"},
    ])


def get(envoy, client_ip):
    headers = {**BROWSER_HEADERS, "X-Forwarded-For": client_ip}
    return requests.get(f"http://127.0.0.1:{envoy.port}/", headers=headers, timeout=10)


def test_the_filter_decides_by_country_asn_and_hosting(echo_upstream):
    policy = geo_policy()
    assert {"country=US", "asn=15169", "hosting"} <= set(policy["resolved_ranges"])
    with start_envoy(policy, echo_upstream) as envoy:
        google = get(envoy, "8.8.8.8")  # US, AS15169
        assert google.status_code == 403, google.text
        aws = get(envoy, "3.5.140.1")  # aws.txt: hosting
        assert aws.status_code == 403, aws.text
        # Deutsche Telekom's resolver range: Germany, not hosting.
        home = get(envoy, "80.130.1.1")
        assert home.status_code == 200, home.text


# Lists only native hosts carry, and an address in each.
RESOLVED_LISTS = [
    ("vpn", "45.83.220.7", "reputation lists"),  # AS39351, in the shipped vpn.txt
    ("aws", "3.5.140.1", "cloud providers' lists"),  # in the shipped aws.txt
]


@pytest.mark.parametrize("name, inside, what", RESOLVED_LISTS)
def test_the_filter_takes_native_only_lists_from_the_policy(echo_upstream, name, inside, what):
    """The filter carries neither the reputation lists nor the cloud
    providers': named in a rule, each reaches it in resolved_ranges, and
    without that entry the filter refuses the policy, saying so."""
    policy = with_rules([{"name": name, "when": {"ip_in": [name]}, "action": "block"}])
    assert f"builtin={name}" in policy["resolved_ranges"]
    with start_envoy(policy, echo_upstream) as envoy:
        listed = get(envoy, inside)
        assert listed.status_code == 403, listed.text
        home = get(envoy, "80.130.1.1")
        assert home.status_code == 200, home.text
    del policy["resolved_ranges"][f"builtin={name}"]
    refusal = refused(policy, echo_upstream)
    assert f"lists.{name}.builtin[0]: the Envoy filter carries no {what}" in refusal


def test_the_filter_refuses_geo_conditions_without_their_ranges(echo_upstream):
    policy = geo_policy()
    del policy["resolved_ranges"]
    refusal = refused(policy, echo_upstream)
    assert "rules[0].when.country: the Envoy filter carries no geo table" in refusal
    assert "palisade policy-json" in refusal


def refused(policy, upstream_port):
    """The first configuration error of an Envoy refusing `policy`."""
    port, admin = free_port(), free_port()
    template = (ROOT / "envoy" / "demo.yaml").read_text()
    config = render_envoy.render(template, json.dumps(policy), str(WASM), port, admin,
                                 upstream_port, free_port(), free_port())
    with running(config, admin) as (process, log_path, _):
        process.wait(timeout=30)
        assert process.returncode == 1
        lines = invalid_lines(log_path.read_text())
        assert lines, log_path.read_text()[-2000:]
        return lines[0]


def test_the_companion_uses_a_refreshed_list_after_sighup(tmp_path):
    """`palisade datasets refresh` writes <companion.datasets>/networks/;
    a SIGHUP makes the running companion compile the policy with it."""
    import http.server
    import os
    import signal
    import threading
    import time

    from conftest import cli, policy_json, start_companion

    datasets = tmp_path / "datasets"
    (datasets / "networks").mkdir(parents=True)
    for name in ("fonts", "images", "audio", "models", "altcha"):
        (datasets / name).symlink_to(ROOT / "datasets" / name)

    # At least the 300 entries a real exit list has (the refresh checks).
    filler = "".join(f"10.200.{i // 250}.{i % 250 + 1}\n" for i in range(300))
    exits = {"/v1": filler + "".join(f"203.0.113.{i}\n" for i in range(1, 100)),
             "/v2": filler + "".join(f"203.0.113.{i}\n" for i in range(100, 200))}

    class Lists(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = exits.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Lists)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def refresh(path):
        cli("datasets", "refresh", "tor", "--dir", str(datasets / "networks"), "--url", f"tor={base}{path}")

    refresh("/v1")
    policy = policy_json()
    policy["rules"].insert(0, {"name": "tor-exit", "when": {"ip_in": ["tor"]}, "action": "block"})

    def action(companion, ip):
        h = {**BROWSER_HEADERS, "X-Original-URI": "/public/x", "X-Original-Method": "GET",
             "X-Real-IP": "127.0.0.1", "X-Forwarded-For": ip, "Host": "example.test"}
        return requests.get(companion.internal + "/auth", headers=h, timeout=10).headers["x-palisade-action"]

    try:
        with start_companion(policy, datasets=datasets) as c:
            assert action(c, "203.0.113.7") == "block"
            assert action(c, "203.0.113.150") == "allow"
            refresh("/v2")
            os.kill(c.process.pid, signal.SIGHUP)
            deadline = time.time() + 10
            while action(c, "203.0.113.150") != "block" and time.time() < deadline:
                time.sleep(0.1)
            assert action(c, "203.0.113.150") == "block"
            assert action(c, "203.0.113.7") == "allow"
    finally:
        server.shutdown()
