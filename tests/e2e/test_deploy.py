"""The deployment configs in a real Envoy: envoy/demo.yaml and
envoy/sidecar.yaml pass `envoy --mode validate`, and the sidecar's
X-Forwarded-For settings (`use_remote_address: true`,
`xff_num_trusted_hops: 1`) name the client that envoy/sidecar.yaml's
comments say: with one load balancer in front, the policy's `trusted_hops`
is 2, because Envoy's own appended entry counts too.

The load balancer is simulated: the test client sends the X-Forwarded-For
header a load balancer would have built, `<whatever the client wrote>,
<address the LB saw>`. The verified-crawler check shows which entry Palisade
took: a Googlebot user agent is verified from a Google address and blocked as
a spoofed crawler from any other.
"""
import copy
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from conftest import ENVOY, ROOT, free_port, render_config, start_envoy

SIDECAR = ROOT / "envoy" / "sidecar.yaml"
DEMO = ROOT / "envoy" / "demo.yaml"

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
GOOGLE = "66.249.66.1"        # in Google's published Googlebot ranges
ELSEWHERE = "203.0.113.7"     # TEST-NET-3: not Google, in no list of the demo policy
ELSEWHERE_2 = "203.0.113.99"
# A token key that only the environment carries (the deployment shape:
# PALISADE_KEYS from a Secret, no key in the policy).
ENV_KEY = "7:base64:" + "c2lkZWNhci10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGVm"


def sidecar_policy(demo_policy, **client):
    """The demo policy as deployed behind one LB: keys only from
    PALISADE_KEYS, and `client` settings as given."""
    policy = copy.deepcopy(demo_policy)
    policy["tokens"]["keys"] = []
    policy["client"] = {**policy["client"], **client}
    return policy


def validate(template, policy, env=None):
    """`envoy --mode validate` on `template` rendered with `policy`. Validation
    also loads the module and runs the plugin's on_configure."""
    workdir = Path(tempfile.mkdtemp(prefix="palisade-validate-"))
    config = workdir / "envoy.yaml"
    config.write_text(render_config(policy, free_port(), free_port(), free_port(), template))
    return subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(config), "--use-dynamic-base-id",
         "--disable-hot-restart", "--log-level", "info"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )


def get(envoy, path, xff=None, ua=GOOGLEBOT, **kwargs):
    headers = {"User-Agent": ua, "Accept": "application/json", "Accept-Language": "en"}
    if xff is not None:
        headers["X-Forwarded-For"] = xff
    headers.update(kwargs.pop("headers", {}))
    return requests.get(envoy.url + path, headers=headers, timeout=10, **kwargs)


@pytest.fixture(scope="module")
def sidecar(echo_upstream, demo_policy):
    """envoy/sidecar.yaml with the policy its comments prescribe for one LB:
    x_forwarded_for, trusted_hops 2; the token key from PALISADE_KEYS."""
    policy = sidecar_policy(demo_policy, source="x_forwarded_for", trusted_hops=2)
    with start_envoy(policy, echo_upstream, template=SIDECAR, env={"PALISADE_KEYS": ENV_KEY}) as envoy:
        yield envoy


# --- validation -------------------------------------------------------------

@pytest.mark.parametrize("template", [DEMO, SIDECAR], ids=["demo", "sidecar"])
def test_config_validates(template, demo_policy):
    result = validate(template, demo_policy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
    assert "palisade: policy loaded" in result.stdout + result.stderr


def test_sidecar_validates_with_keys_from_the_environment(demo_policy):
    policy = sidecar_policy(demo_policy, trusted_hops=2)
    result = validate(SIDECAR, policy, env={"PALISADE_KEYS": ENV_KEY})
    assert result.returncode == 0, result.stdout + result.stderr


def unkeyed(demo_policy):
    """A policy the plugin rejects: no key in it, and its keys_env names a
    variable the VM never gets (only PALISADE_KEYS is in host_env_keys)."""
    policy = sidecar_policy(demo_policy, trusted_hops=2)
    policy["tokens"]["keys_env"] = "PALISADE_KEYS_NOT_FORWARDED"
    return policy


def test_validation_runs_the_policy_check(demo_policy):
    """Validation fails (exit 1) with Palisade's own log line."""
    result = validate(SIDECAR, unkeyed(demo_policy), env={"PALISADE_KEYS_NOT_FORWARDED": ENV_KEY})
    log = result.stdout + result.stderr
    assert result.returncode != 0, log
    assert "palisade: invalid configuration: tokens.keys_env" in log
    assert "Unable to create Wasm plugin palisade" in log


def test_bad_policy_stops_envoy_at_startup(echo_upstream, demo_policy):
    """With a static config, a policy the plugin rejects stops Envoy at
    startup (FAIL_CLOSED: the plugin fails to load, and Envoy refuses a
    configuration it cannot create); it never serves traffic unfiltered."""
    with pytest.raises(RuntimeError, match=r"envoy exited \(1\)") as failure:
        with start_envoy(unkeyed(demo_policy), echo_upstream, template=SIDECAR,
                         env={"PALISADE_KEYS_NOT_FORWARDED": ENV_KEY}):
            pass
    assert "palisade: invalid configuration" in str(failure.value)


# --- X-Forwarded-For and trusted_hops ---------------------------------------

def test_envoy_appends_one_entry(sidecar):
    """The upstream sees what the LB sent plus exactly one entry: Envoy's."""
    r = get(sidecar, "/", xff=f"{ELSEWHERE}, {GOOGLE}")
    assert r.status_code == 200, r.text
    xff = [e.strip() for e in r.json()["headers"]["x-forwarded-for"].split(",")]
    assert xff[:2] == [ELSEWHERE, GOOGLE]
    assert len(xff) == 3


def test_client_is_the_entry_the_lb_appended(sidecar):
    """Googlebot from a Google address as seen by the LB, with a made-up
    entry to its left: verified, allowed, annotated upstream."""
    r = get(sidecar, "/", xff=f"{ELSEWHERE}, {GOOGLE}")
    assert r.status_code == 200, r.text
    client = r.json()["headers"]["x-palisade-client"]
    assert "name=googlebot" in client and "verified" in client


def test_spoofed_leftmost_google_address_is_blocked(sidecar):
    """The client wrote a Google address itself; the LB saw another one."""
    r = get(sidecar, "/", xff=f"{GOOGLE}, {ELSEWHERE}")
    assert r.status_code == 403
    assert r.json()["action"] == "block"


def test_too_few_entries_fall_back_to_the_peer(sidecar):
    """No X-Forwarded-For from an LB: the header holds only Envoy's entry,
    so the connection peer (127.0.0.1 here, not Google) is the client."""
    assert get(sidecar, "/").status_code == 403
    assert get(sidecar, "/", xff=GOOGLE).status_code == 200


def test_trusted_hops_one_would_take_envoys_own_entry(echo_upstream, demo_policy):
    """The off-by-one this config's comments warn about: trusted_hops 1
    picks the entry Envoy appended (its peer, i.e. the LB), so even a genuine
    Googlebot request looks spoofed and every client shares one address."""
    policy = sidecar_policy(demo_policy, source="x_forwarded_for", trusted_hops=1)
    # Envoy's own entry here is 192.0.2.x, inside the demo's `office`
    # allow-list, which would let everything through; drop that rule to see
    # the spoofing verdict the wrong hop count produces.
    policy["rules"] = [r for r in policy["rules"] if r["name"] != "office"]
    with start_envoy(policy, echo_upstream, template=SIDECAR, env={"PALISADE_KEYS": ENV_KEY}) as envoy:
        assert get(envoy, "/", xff=f"{ELSEWHERE}, {GOOGLE}").status_code == 403


def test_connection_source_uses_envoys_trusted_address(echo_upstream, demo_policy):
    """With xff_num_trusted_hops: 1 Envoy reports the entry it trusts as the
    downstream address, so `client.source: connection` names the same
    client as x_forwarded_for with trusted_hops 2."""
    policy = sidecar_policy(demo_policy, source="connection")
    policy["client"].pop("trusted_hops", None)
    with start_envoy(policy, echo_upstream, template=SIDECAR, env={"PALISADE_KEYS": ENV_KEY}) as envoy:
        r = get(envoy, "/", xff=f"{ELSEWHERE}, {GOOGLE}")
        assert r.status_code == 200, r.text
        assert "verified" in r.json()["headers"]["x-palisade-client"]
        assert get(envoy, "/", xff=f"{GOOGLE}, {ELSEWHERE}").status_code == 403


# --- the rest of the sidecar --------------------------------------------------

def test_health_route_is_allowed_for_probes(sidecar):
    """Kubelet-style probe: no X-Forwarded-For, a tool's user agent, no
    Accept-Language. The policy's `health` route allows it."""
    r = requests.get(sidecar.url + "/healthz", headers={"User-Agent": "kube-probe/1.31"}, timeout=10)
    assert r.status_code == 200


def solve(data, bits):
    n = 0
    while True:
        digest = hashlib.sha256((data + str(n)).encode()).digest()
        value = int.from_bytes(digest, "big")
        if value >> (256 - bits) == 0:
            return str(n)
        n += 1


def test_challenge_passes_through_the_sidecar(sidecar):
    """The proof-of-work round trip, POST body included (needs
    allow_on_headers_stop_iteration), signed with the key from PALISADE_KEYS,
    and bound to the client address taken from X-Forwarded-For."""
    xff = f"{ELSEWHERE_2}, {ELSEWHERE}"
    challenge = get(sidecar, "/login", xff=xff, ua=BROWSER)
    assert challenge.status_code == 403, challenge.text
    spec = challenge.json()["challenge"]
    nonce = solve(spec["data"], spec["difficulty"])
    body = json.dumps({"data": spec["data"], "nonce": nonce})
    headers = {"User-Agent": BROWSER, "Content-Type": "application/json", "Accept": "application/json"}

    # The same solution from another LB-seen client: the ticket is bound to
    # the address Palisade took from X-Forwarded-For.
    other = requests.post(sidecar.url + "/.palisade/verify", data=body, timeout=10,
                          headers={**headers, "X-Forwarded-For": f"{ELSEWHERE}, {ELSEWHERE_2}"})
    assert other.status_code == 403, other.text
    assert other.json()["error"] == "ticket_other_client", other.text

    passed = requests.post(sidecar.url + "/.palisade/verify", data=body, timeout=10,
                           headers={**headers, "X-Forwarded-For": xff})
    assert passed.status_code == 200, passed.text
    token = passed.json()["token"]
    r = get(sidecar, "/login", xff=xff, ua=BROWSER, cookies={"palisade": token})
    assert r.status_code == 200, r.text
    assert r.json()["upstream"] == "palisade-demo"


def test_metrics_are_on_the_admin_page(sidecar):
    get(sidecar, "/", xff=f"{ELSEWHERE}, {GOOGLE}")
    stats = sidecar.stats()
    assert stats["wasmcustom.palisade.requests.allow"] >= 1
    assert stats["wasmcustom.palisade.config_errors"] == 0


def test_only_a_verify_body_needs_allow_on_headers_stop_iteration(echo_upstream, demo_policy, tmp_path):
    """Without the flag (Istio's WasmPlugin cannot set it) Envoy never hands
    Palisade the body of POST /.palisade/verify, and that request hangs
    (here until the client gives up). The pages' GET, solution in the query,
    needs no body and is answered either way: a wrong solution with 403,
    the right one with 303 and the pass cookie."""
    text = SIDECAR.read_text()
    assert text.count("allow_on_headers_stop_iteration: true") == 1
    template = tmp_path / "sidecar-without-flag.yaml"
    template.write_text(text.replace("allow_on_headers_stop_iteration: true",
                                     "allow_on_headers_stop_iteration: false"))
    policy = sidecar_policy(demo_policy, trusted_hops=2)
    body = json.dumps({"data": "x", "nonce": "1"})
    headers = {"Content-Type": "application/json", "X-Forwarded-For": ELSEWHERE}
    with start_envoy(policy, echo_upstream, template=template, env={"PALISADE_KEYS": ENV_KEY}) as envoy:
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(envoy.url + "/.palisade/verify", data=body, headers=headers, timeout=3)
        browser = {"User-Agent": BROWSER, "Accept": "application/json", "Accept-Language": "en",
                   "X-Forwarded-For": ELSEWHERE}
        challenge = requests.get(envoy.url + "/login", headers=browser, timeout=10)
        assert challenge.status_code == 403, challenge.text
        spec = challenge.json()["challenge"]
        nonce = solve(spec["data"], spec["difficulty"])
        wrong = requests.get(envoy.url + "/.palisade/verify", headers=browser, timeout=10,
                             params={"data": spec["data"], "nonce": "x"}, allow_redirects=False)
        assert wrong.status_code == 403 and wrong.json()["error"] == "bad_nonce", wrong.text
        passed = requests.get(envoy.url + "/.palisade/verify", headers=browser, timeout=10,
                              params={"data": spec["data"], "nonce": nonce}, allow_redirects=False)
        assert passed.status_code == 303 and passed.headers["location"] == "/login", passed.text
        token = passed.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        r = requests.get(envoy.url + "/login", headers=browser, cookies={"palisade": token}, timeout=10)
        assert r.status_code == 200, r.text
    with start_envoy(policy, echo_upstream, template=SIDECAR, env={"PALISADE_KEYS": ENV_KEY}) as envoy:
        r = requests.post(envoy.url + "/.palisade/verify", data=body, headers=headers, timeout=10)
        assert r.status_code == 403 and r.json()["error"] == "ticket_invalid", r.text


# --- Kubernetes and Istio files (no cluster here: render and check) ---------

KUBE = ROOT / "envoy" / "kubernetes"
ISTIO = ROOT / "envoy" / "istio"


def test_kubernetes_render_validates(tmp_path):
    """render.sh turns envoy/kubernetes/base/policy.yaml into the ConfigMap's
    envoy.yaml; with the module where the pod mounts it, Envoy accepts it."""
    out = tmp_path / "envoy.yaml"
    env = {**os.environ, "OUT": str(out), "SHARED_DIR": "",
           "WASM_PATH": str(ROOT / "target/wasm32-wasip1/release/palisade.wasm")}
    env.pop("PALISADE_KEYS", None)
    subprocess.run(["bash", str(KUBE / "render.sh")], check=True, env=env, capture_output=True, timeout=60)
    config = out.read_text()
    assert "port_value: 8000" in config and "port_value: 8080" in config
    assert '\\"trusted_hops\\":2' in config and '\\"keys\\":[]' in config
    result = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(out), "--use-dynamic-base-id", "--disable-hot-restart"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PALISADE_KEYS": ENV_KEY},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_render_refuses_keys_in_the_policy(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "envoy.yaml"), "SHARED_DIR": ""}
    result = subprocess.run(["bash", str(KUBE / "render.sh"), str(ROOT / "envoy" / "demo-policy.yaml")],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "tokens.keys" in result.stderr
    assert not (tmp_path / "envoy.yaml").exists()


def test_example_secret_is_rejected():
    """The example Secret's placeholder fails to parse, so a forgotten
    placeholder stops Envoy instead of signing with a published key."""
    text = (KUBE / "secret.example.yaml").read_text()
    value = text.split("PALISADE_KEYS:", 1)[1].split('"')[1]
    result = subprocess.run([str(ROOT / "target/release/palisade"), "check-config",
                             str(KUBE / "base" / "policy.yaml")],
                            env={**os.environ, "PALISADE_KEYS": value}, capture_output=True, text=True)
    assert result.returncode != 0
    assert "base64" in result.stderr


def test_istio_plugin_config_is_a_policy(tmp_path):
    """The WasmPlugin's pluginConfig, cut out of the manifest, is a policy
    Palisade accepts, with a challenge band (challenges work under
    WasmPlugin: the filter needs no request body)."""
    lines = (ISTIO / "wasmplugin.yaml").read_text().splitlines()
    start = lines.index("  pluginConfig:") + 1
    block = []
    for line in lines[start:]:
        if line.strip() and not line.startswith("    "):
            break
        block.append(line[4:])
    policy = tmp_path / "plugin-config.yaml"
    policy.write_text("\n".join(block) + "\n")
    result = subprocess.run([str(ROOT / "target/release/palisade"), "policy-json", str(policy)],
                            env={**os.environ, "PALISADE_KEYS": ENV_KEY}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout)
    assert parsed["thresholds"]["challenge"] < parsed["thresholds"]["block"]
    assert parsed["client"] == {"source": "x_forwarded_for", "trusted_hops": 2, "ipv6_prefix": 64}


def test_istio_envoyfilter_renders(demo_policy):
    """envoyfilter.yaml is a template for scripts/render_envoy.py: the
    policy lands as one JSON string, the module URL as the remote code."""
    template = (ISTIO / "envoyfilter.yaml").read_text()
    import render_envoy  # scripts/, on the path through conftest

    rendered = render_envoy.render(template, json.dumps(demo_policy), "oci://registry.example.com/p:1", 0, 0, 0)
    assert "__POLICY_JSON__" not in rendered and "__WASM__" not in rendered
    value = next(line for line in rendered.splitlines() if line.strip().startswith('value: "{'))
    assert json.loads(json.loads(value.split("value: ", 1)[1])) == demo_policy
    assert 'uri: "oci://registry.example.com/p:1"' in rendered
    assert "allow_on_headers_stop_iteration: true" in rendered
