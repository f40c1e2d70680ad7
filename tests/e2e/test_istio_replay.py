"""envoy/istio/wasmplugin.yaml as Istio would deliver it, replayed in a real
Envoy 1.40: scripts/istio_config.py turns the WasmPlugin into the filter
configuration istiod builds (pluginConfig as Struct -> JSON ->
StringValue, vmConfig.env as host_env_keys, no
allow_on_headers_stop_iteration) and hands it to Envoy over a file ECDS
subscription; the gateway's routes send the challenge prefix to the
companion (a real `palisade serve`) under its outbound|PORT||FQDN cluster
name, the rest to the app.

What differs from a cluster, and only that: the clusters point at
127.0.0.1 ports, the module is a local file (istio-agent's job), the ECDS
source is a file instead of istiod's stream, and the companion listens on
free local ports with a fresh data directory.

The proof: a client is challenged on /login and passes through the
companion; with the companion stopped, it passes through the filter's own
proof-of-work fallback, a GET (no body needed), answered with 303.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import yaml

from conftest import (ENVOY, ROOT, Envoy, admin_stats, free_port, solve_pow, start_companion, stop,
                      wait_for_200)

sys.path.insert(0, str(ROOT / "scripts"))
import istio_config  # noqa: E402

WASMPLUGIN = ROOT / "envoy" / "istio" / "wasmplugin.yaml"
WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "palisade.wasm"
KEY = "3:base64:" + "aXN0aW8tcmVwbGF5LXRlc3Qta2V5LTAxMjM0NTY3ODlhYg=="
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
APP_CLUSTER = "outbound|80||web.default.svc.cluster.local"


def plugin():
    return istio_config.wasm_plugin(WASMPLUGIN)


def policy():
    return plugin()["spec"]["pluginConfig"]


# --- the translation --------------------------------------------------------

def test_plugin_config_becomes_the_json_string_istiod_sends():
    spec = plugin()["spec"]
    name, extension = istio_config.plugin_config(plugin(), str(WASM))
    config = extension["typed_config"]["config"]
    assert name == f"{plugin()['metadata']['namespace']}.{plugin()['metadata']['name']}"
    assert config["root_id"] == spec["pluginName"]
    value = config["configuration"]["value"]
    assert config["configuration"]["@type"].endswith("google.protobuf.StringValue")
    # The same policy, as one compact JSON text with sorted keys.
    assert json.loads(value) == json.loads(json.dumps(spec["pluginConfig"]))
    assert value == json.dumps(json.loads(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    hosts = [e["name"] for e in spec["vmConfig"]["env"] if e.get("valueFrom") == "HOST"]
    assert config["vm_config"]["environment_variables"]["host_env_keys"] == hosts
    assert "PALISADE_KEYS" in hosts
    assert "allow_on_headers_stop_iteration" not in config
    assert "vm_id" not in config["vm_config"]
    assert config["failure_policy"] == {"FAIL_CLOSE": "FAIL_CLOSED", "FAIL_OPEN": "FAIL_OPEN"}[
        spec.get("failStrategy", "FAIL_CLOSE")]


def test_numbers_pass_through_a_struct_as_doubles():
    assert istio_config.struct_json({"b": 2, "a": [1.0, 2.5, True, None]}) == '{"a":[1,2.5,true,null],"b":2}'


def test_a_module_that_does_not_match_sha256_is_refused(tmp_path):
    doc = plugin()
    doc["spec"]["url"] = "https://modules.example.com/palisade.wasm"
    doc["spec"]["sha256"] = "0" * 64
    with pytest.raises(istio_config.TranslationError, match="sha256"):
        istio_config.plugin_config(doc, str(WASM))


def test_the_plugin_names_the_companion_by_its_istio_cluster_names():
    companion = policy()["companion"]
    for key in ("cluster", "health_cluster"):
        direction, port, subset, host = companion[key].split("|")
        assert direction == "outbound" and port.isdigit() and subset == ""
        assert host.endswith(".svc.cluster.local"), companion[key]


# --- in a real Envoy ---------------------------------------------------------

@contextmanager
def istio_gateway(companion_public, companion_internal, app_port, tmp):
    """Envoy with the WasmPlugin as Istio delivers it; the companion's
    clusters point at the given local ports."""
    companion = policy()["companion"]
    prefix = policy().get("challenge", {}).get("path_prefix", "/.palisade/")
    port, admin = free_port(), free_port()
    ecds = tmp / "ecds.json"
    config = tmp / "envoy.json"
    args = [str(WASMPLUGIN), "--wasm", str(WASM), "--listen", str(port), "--admin", str(admin),
            "--ecds", str(ecds), "--trusted-proxies", "1",
            "--route", f"{prefix}={companion['cluster']}", "--route", f"/={APP_CLUSTER}",
            "--cluster", f"{companion['cluster']}=127.0.0.1:{companion_public}",
            "--cluster", f"{companion['health_cluster']}=127.0.0.1:{companion_internal}",
            "--cluster", f"{APP_CLUSTER}=127.0.0.1:{app_port}"]
    config.write_text(subprocess.run([sys.executable, str(ROOT / "scripts" / "istio_config.py"), *args],
                                     check=True, capture_output=True, text=True).stdout)
    log_path = tmp / "envoy.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(ENVOY), "-c", str(config), "--concurrency", "2", "--use-dynamic-base-id",
             "--disable-hot-restart", "--log-level", "info"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PALISADE_KEYS": KEY})
    envoy = Envoy(process, port, admin, log_path)
    try:
        wait_for_200(process, envoy.admin + "/ready", 30, "envoy", envoy.log)
        # The filter arrives over ECDS: wait until it has (a spoofed crawler
        # is blocked only by Palisade).
        deadline = time.time() + 20
        while get(envoy, "/", ua=GOOGLEBOT).status_code != 403:
            assert time.time() < deadline, envoy.log()[-3000:]
            time.sleep(0.2)
        # And until its health probe has found the companion up: until then
        # it answers the prefix itself (503 companion_unavailable), and the
        # companion's own 404 shows the hand-off.
        while get(envoy, "/.palisade/nothing").status_code != 404:
            assert time.time() < deadline, envoy.log()[-3000:]
            time.sleep(0.2)
        yield envoy
    finally:
        stop(process)


def get(envoy, path, ip="203.0.113.20", ua=BROWSER, **kwargs):
    """A request as the load balancer in front of the gateway forwards it."""
    headers = {"User-Agent": ua, "Accept": "application/json", "Accept-Language": "en",
               "X-Forwarded-For": ip, **kwargs.pop("headers", {})}
    return requests.get(envoy.url + path, headers=headers, timeout=10, allow_redirects=False, **kwargs)


def challenged(envoy, ip):
    r = get(envoy, "/login", ip=ip)
    assert r.status_code == 403, r.text
    return r.json()["challenge"]


def solve_by_get(envoy, challenge, ip):
    """The pages' way: GET verify with the solution in the query."""
    nonce = solve_pow(challenge["data"], challenge["difficulty"])
    r = get(envoy, "/.palisade/verify", ip=ip, params={"data": challenge["data"], "nonce": nonce})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/login"
    return r.headers["set-cookie"].split(";")[0].split("=", 1)[1]


@pytest.fixture(scope="module")
def replay(echo_upstream):
    tmp = Path(tempfile.mkdtemp(prefix="palisade-istio-"))
    public, internal = free_port(), free_port()
    with start_companion(policy(), public_port=public, internal_port=internal,
                         env={"PALISADE_KEYS": KEY}) as companion:
        with istio_gateway(public, internal, echo_upstream, tmp) as envoy:
            envoy.ecds = tmp / "ecds.json"
            yield envoy, companion


def test_the_demo_behaviours_hold_at_the_gateway(replay):
    envoy, _ = replay
    r = get(envoy, "/healthz", ua="kube-probe/1.34")
    assert r.status_code == 200 and r.json()["upstream"] == "palisade-demo"
    assert get(envoy, "/", ua=GOOGLEBOT, ip="203.0.113.21").status_code == 403
    r = get(envoy, "/about", ip="203.0.113.22")
    assert r.status_code == 200, r.text
    assert r.json()["headers"]["x-palisade-action"] in ("allow", "monitor")


def test_a_challenge_is_solved_through_the_companion(replay):
    envoy, companion = replay
    ip = "203.0.113.30"
    token = solve_by_get(envoy, challenged(envoy, ip), ip)
    assert {"event": "verify", "outcome": "solved", "kind": "pow"} in \
        [e.get("fields") for e in companion.log_events()], "the companion did not verify it"
    r = get(envoy, "/login", ip=ip, cookies={"palisade": token})
    assert r.status_code == 200, r.text
    # The companion's own kinds work too, POSTed answer included: the
    # filter reads no body while the companion is up.
    r = get(envoy, "/.palisade/challenge", ip=ip, params={"kind": "text", "return": "/login"})
    assert r.status_code == 200, r.text
    stored = r.json()
    answer = companion.answer(stored["id"])
    r = requests.post(envoy.url + stored["verify"], json={"answer": answer}, timeout=10,
                      headers={"User-Agent": BROWSER, "Accept": "application/json", "X-Forwarded-For": ip})
    assert r.status_code == 200, r.text


def push_over_ecds(envoy, plugin_config, counter):
    """Replaces the ECDS file (a rename, as a file subscription expects) with
    `plugin_config` as the WasmPlugin's pluginConfig, and waits until
    Envoy's `counter` for the filter's ECDS stream goes up."""
    doc = plugin()
    doc["spec"]["pluginConfig"] = plugin_config
    _, extension = istio_config.plugin_config(doc, str(WASM))
    stat = f"extension_config_discovery.http_filter.{extension['name']}.{counter}"
    before = admin_stats(envoy, "extension_config_discovery").get(stat, 0)
    staged = envoy.ecds.with_suffix(".new")
    staged.write_text(json.dumps(istio_config.ecds_file(extension)))
    os.rename(staged, envoy.ecds)
    deadline = time.time() + 20
    while admin_stats(envoy, "extension_config_discovery").get(stat, 0) <= before:
        assert time.time() < deadline, f"{stat} did not move:\n{envoy.log()[-3000:]}"
        time.sleep(0.2)


def test_a_policy_update_over_ecds_applies_and_a_bad_one_is_refused(replay):
    """What istiod does on a WasmPlugin edit: a new ECDS resource. A good
    policy takes over; one the plugin rejects is refused, and the last good
    one keeps serving."""
    envoy, _ = replay
    updated = json.loads(json.dumps(policy()))
    updated["routes"].insert(0, {"name": "closed", "match": {"path": "/closed*"}, "action": "block"})
    push_over_ecds(envoy, updated, "config_reload")
    assert get(envoy, "/closed/x", ip="203.0.113.50").status_code == 403
    broken = json.loads(json.dumps(updated))
    broken["thresholds"]["monitor"] = "high"
    push_over_ecds(envoy, broken, "config_fail")
    assert get(envoy, "/closed/x", ip="203.0.113.51").status_code == 403
    assert get(envoy, "/", ua=GOOGLEBOT, ip="203.0.113.52").status_code == 403
    assert get(envoy, "/about", ip="203.0.113.53").status_code == 200
    push_over_ecds(envoy, policy(), "config_reload")
    assert get(envoy, "/closed/x", ip="203.0.113.54").status_code == 200


def test_with_the_companion_stopped_the_filter_verifies_a_get(replay):
    envoy, companion = replay
    stop(companion.process)
    deadline = time.time() + 30
    # The filter probes the companion's health cluster; once it has seen
    # it down, it answers the prefix itself (Envoy's router would answer
    # 503 too, without the JSON, while the filter still thinks it up).
    while "companion_unavailable" not in get(envoy, "/.palisade/nothing").text:
        assert time.time() < deadline, envoy.log()[-3000:]
        time.sleep(0.5)
    ip = "203.0.113.40"
    token = solve_by_get(envoy, challenged(envoy, ip), ip)
    r = get(envoy, "/login", ip=ip, cookies={"palisade": token})
    assert r.status_code == 200, r.text
    r = get(envoy, "/.palisade/verify", ip=ip, params={"data": "x", "nonce": "1"})
    assert r.status_code == 403 and r.json()["error"] == "ticket_invalid", r.text
