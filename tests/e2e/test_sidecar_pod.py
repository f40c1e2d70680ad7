"""The sidecar pod of envoy/kubernetes/base/, replayed without a cluster.

The Envoy configuration and the policy are taken from the `kustomize
build` output (scripts/kustomize.py), i.e. the two ConfigMaps as the pod
mounts them, and run as the pod's containers would run them: Envoy with
the envoy container's arguments, `palisade serve` with the companion
container's policy, the test's echo server as the app. Only what must
differ outside a pod is rewritten, each rewrite counted so that a changed
configuration fails here instead of slipping through:

* Envoy: the module's path (the image volume's /etc/palisade-wasm/plugin.wasm
  becomes target/wasm32-wasip1/release/palisade.wasm); every port
  (8000 listener, 9901 admin, 9902 probe, 8080 app, 8181/8182 companion)
  becomes a free one, and the two listeners' 0.0.0.0 becomes 127.0.0.1;
  --config-path points at the rewritten file;
* the companion's policy: `companion.public` and `companion.internal` get
  the same free ports on 127.0.0.1, `data_dir` a temporary directory and
  `datasets` the repository's datasets/ (the image ships them under its
  working directory).

Then the probes are sent as the kubelet would send them, and the demo
checks run through the pod: allowed, blocked and challenged requests per
the policy, and a proof-of-work challenge solved through the companion.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import requests
import yaml

from conftest import (CLI, ENVOY, ROOT, WASM, Envoy, admin_stats, envoy_memory, free_port, solve_pow,
                      stop, wait_for_200)

sys.path.insert(0, str(ROOT / "scripts"))
import kustomize  # noqa: E402  scripts/kustomize.py

KEY = "7:base64:" + "c2lkZWNhci1wb2QtdGVzdC1rZXktMDEyMzQ1Njc4OWFi"
BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0.0.0 Safari/537.36",
    "Accept": "application/json",
    "Accept-Language": "en-GB,en;q=0.9",
}
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
# An AI crawler no published range can verify: the ai-training-crawler
# rule's weight alone (70) puts it in the challenge band (70-89).
CLAUDEBOT = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)"
MiB = 1024 * 1024


def rewrite(text, old, new, count):
    """Replaces `old` by `new`, which must occur exactly `count` times."""
    found = text.count(old)
    assert found == count, f"{old!r}: {found} times in the ConfigMap's envoy.yaml, expected {count}"
    return text.replace(old, new)


def container_port(container, name):
    return next(p["containerPort"] for p in container["ports"] if p["name"] == name)


class Pod:
    def __init__(self, envoy, companion, ports, containers, workdir):
        self.envoy = envoy
        self.companion = companion
        self.ports = ports            # pod port -> port used here
        self.containers = containers  # name -> container spec
        self.workdir = workdir
        self.url = envoy.url

    def port(self, container, port):
        """The local port for a probe's `port` (a name or a number)."""
        number = port if isinstance(port, int) else container_port(self.containers[container], port)
        return self.ports[number]


@pytest.fixture(scope="module")
def pod(echo_upstream):
    resources = kustomize.kustomize(str(ROOT / "envoy" / "kubernetes" / "base"))
    web = next(r for r in resources if r["kind"] == "Deployment" and r["metadata"]["name"] == "web")
    spec = web["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in spec["containers"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    config_maps = {r["metadata"]["name"]: r["data"] for r in resources if r["kind"] == "ConfigMap"}

    def mounted(container, volume_name):
        """(mount path, ConfigMap data) of a ConfigMap volume in a container."""
        mount = next(m for m in containers[container]["volumeMounts"] if m["name"] == volume_name)
        return mount["mountPath"], config_maps[volumes[volume_name]["configMap"]["name"]]

    workdir = Path(tempfile.mkdtemp(prefix="palisade-e2e-pod-"))
    ports = {8000: free_port(), 9901: free_port(), 9902: free_port(), 8080: echo_upstream,
             8181: free_port(), 8182: free_port()}

    # Envoy: the ConfigMap's envoy.yaml at the path --config-path names.
    args = list(containers["envoy"]["args"])
    config_dir, envoy_data = mounted("envoy", "envoy-config")
    config_path = args[args.index("--config-path") + 1]
    assert Path(config_path).parent == Path(config_dir)
    text = envoy_data[Path(config_path).name]
    wasm_mount = next(m for m in containers["envoy"]["volumeMounts"] if m["name"] == "wasm")["mountPath"]
    assert "image" in volumes["wasm"], "the base mounts the module from an image volume"
    text = rewrite(text, f'filename: "{wasm_mount}/plugin.wasm"', f'filename: "{WASM}"', 1)
    text = rewrite(text, "address: 0.0.0.0, port_value: 8000", f"address: 127.0.0.1, port_value: {ports[8000]}", 1)
    text = rewrite(text, "address: 0.0.0.0, port_value: 9902", f"address: 127.0.0.1, port_value: {ports[9902]}", 1)
    # The admin API itself and the probe listener's cluster to it.
    text = rewrite(text, "address: 127.0.0.1, port_value: 9901", f"address: 127.0.0.1, port_value: {ports[9901]}", 2)
    for port in (8080, 8181, 8182):
        text = rewrite(text, f"address: 127.0.0.1, port_value: {port}}}",
                       f"address: 127.0.0.1, port_value: {ports[port]}}}", 1)
    assert "address: 0.0.0.0" not in text
    (workdir / "envoy.yaml").write_text(text)
    args[args.index("--config-path") + 1] = str(workdir / "envoy.yaml")

    # The companion: the ConfigMap's policy.yaml where the image reads it.
    policy_dir, policy_data = mounted("companion", "policy")
    policy = yaml.safe_load(policy_data["policy.yaml"])
    assert policy["companion"]["public"] == "127.0.0.1:8181"
    assert policy["companion"]["internal"] == "0.0.0.0:8182"
    policy["companion"].update({
        "public": f"127.0.0.1:{ports[8181]}",
        "internal": f"127.0.0.1:{ports[8182]}",
        "data_dir": str(workdir / "palisade-data"),
        "datasets": str(ROOT / "datasets"),
    })
    (workdir / "policy.yaml").write_text(json.dumps(policy))

    # PALISADE_KEYS comes from the Secret in both containers.
    for name in ("envoy", "companion"):
        assert any(e["name"] == "PALISADE_KEYS" and "secretKeyRef" in e["valueFrom"]
                   for e in containers[name]["env"])
    env = {**os.environ, "PALISADE_KEYS": KEY}
    started = []
    try:
        companion_log = open(workdir / "companion.log", "w")
        companion = subprocess.Popen([str(CLI), "serve", "--config", str(workdir / "policy.yaml")],
                                     stdout=companion_log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
        started.append(companion)
        envoy_log = open(workdir / "envoy.log", "w")
        process = subprocess.Popen([str(ENVOY), *args, "--use-dynamic-base-id"],
                                   stdout=envoy_log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
        started.append(process)
        envoy = Envoy(process, ports[8000], ports[9901], workdir / "envoy.log")
        pod = Pod(envoy, companion, ports, containers, workdir)
        # Started: the companion's startupProbe, Envoy's readinessProbe.
        for name, kind in (("companion", "startupProbe"), ("envoy", "readinessProbe")):
            probe = containers[name][kind]["httpGet"]
            wait_for_200(started[0] if name == "companion" else process,
                         f"http://127.0.0.1:{pod.port(name, probe['port'])}{probe['path']}", 30, name,
                         lambda: (workdir / f"{name}.log").read_text(errors="replace"))
        # The filter finds the companion up (its first probe is 100 ms
        # after the policy loads, then every second).
        deadline = time.time() + 10
        while admin_stats(envoy, r"palisade\.companion\.up$").get("wasmcustom.palisade.companion.up") != 1:
            assert time.time() < deadline, "the filter never saw the companion up:\n" + envoy.log()[-3000:]
            time.sleep(0.1)
        yield pod
    finally:
        for process in reversed(started):
            stop(process)


def get(pod, path, headers, xff, **kwargs):
    """A request as the LB would pass it: the client in X-Forwarded-For
    (policy trusted_hops: 2 = the LB's entry plus Envoy's own)."""
    return requests.get(pod.url + path, headers={**headers, "X-Forwarded-For": xff}, timeout=10,
                        allow_redirects=False, **kwargs)


def test_probes_answer_as_the_kubelet_sends_them(pod):
    """Every probe in the pod spec succeeds against the running pod: httpGet
    probes get 200, tcpSocket probes connect."""
    checked = 0
    for name, container in pod.containers.items():
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = container.get(kind)
            if not probe:
                continue
            if "httpGet" in probe:
                url = f"http://127.0.0.1:{pod.port(name, probe['httpGet']['port'])}{probe['httpGet']['path']}"
                with urllib.request.urlopen(url, timeout=5) as r:
                    assert r.status == 200, (name, kind)
            else:
                socket.create_connection(("127.0.0.1", pod.port(name, probe["tcpSocket"]["port"])), timeout=5).close()
            checked += 1
    assert checked == 4  # envoy: readiness, liveness; companion: startup, liveness; app: none here


def test_probe_listener_passes_only_get_ready(pod):
    """The probe port reaches the admin API's /ready and nothing else."""
    probe = f"http://127.0.0.1:{pod.ports[9902]}"
    assert requests.get(probe + "/ready", timeout=5).text.strip() == "LIVE"
    for method, path in (("GET", "/stats"), ("POST", "/ready"), ("POST", "/quitquitquit"), ("GET", "/ready/x")):
        assert requests.request(method, probe + path, timeout=5).status_code == 404, (method, path)
    assert pod.envoy.alive()


def test_a_browser_is_allowed(pod):
    r = get(pod, "/", BROWSER, "198.51.100.10")
    assert r.status_code == 200, r.text
    assert r.json()["headers"]["x-palisade-action"] == "allow"


def test_lb_health_checks_pass(pod):
    """An LB or kubelet health check of the app through Envoy: a tool's user
    agent, no Accept-Language; the policy's `health` route allows it."""
    r = requests.get(pod.url + "/healthz", headers={"User-Agent": "kube-probe/1.35"}, timeout=10)
    assert r.status_code == 200


def test_a_spoofed_crawler_is_blocked(pod):
    r = get(pod, "/", {**BROWSER, "User-Agent": GOOGLEBOT}, "203.0.113.7")
    assert r.status_code == 403 and r.json()["action"] == "block", r.text


def test_a_tool_probing_for_files_is_blocked(pod):
    """curl (+50) asking for a .php file (+40): 90, the block threshold."""
    r = get(pod, "/wp-login.php", {"User-Agent": "curl/8.5.0", "Accept": "application/json"}, "198.51.100.11")
    assert r.status_code == 403 and r.json()["action"] == "block", r.text


def test_a_tool_is_only_monitored(pod):
    r = get(pod, "/", {"User-Agent": "curl/8.5.0", "Accept": "application/json"}, "198.51.100.12")
    assert r.status_code == 200 and r.json()["headers"]["x-palisade-action"] == "monitor"


def test_a_challenge_is_solved_through_the_companion(pod):
    """An unverifiable AI crawler scores 70: challenged. The answer goes to
    /.palisade/verify, which Envoy routes to the companion (its cluster
    counts the request); the companion's token then lets the client in."""
    headers = {**BROWSER, "User-Agent": CLAUDEBOT}
    xff = "198.51.100.20"
    r = get(pod, "/articles/1", headers, xff)
    assert r.status_code == 403, r.text
    assert r.json()["action"] == "challenge", r.text
    spec = r.json()["challenge"]
    assert spec["kind"] == "pow"
    before = admin_stats(pod.envoy, r"^cluster\.palisade_companion\.upstream_rq_total$")
    body = {"data": spec["data"], "nonce": solve_pow(spec["data"], spec["difficulty"])}
    passed = requests.post(pod.url + "/.palisade/verify", json=body, timeout=10,
                           headers={"User-Agent": CLAUDEBOT, "Accept": "application/json", "X-Forwarded-For": xff})
    assert passed.status_code == 200, passed.text
    after = admin_stats(pod.envoy, r"^cluster\.palisade_companion\.upstream_rq_total$")
    assert after["cluster.palisade_companion.upstream_rq_total"] == \
        before.get("cluster.palisade_companion.upstream_rq_total", 0) + 1
    token = passed.json()["token"]
    # The rule's own limit (60/minute, one a second) still applies.
    time.sleep(1.1)
    r = get(pod, "/articles/1", headers, xff, cookies={"palisade": token})
    assert r.status_code == 200, r.text
    assert r.json()["upstream"] == "palisade-demo"
    # The same token from another address is refused: bound to the client.
    r = get(pod, "/articles/1", headers, "198.51.100.21", cookies={"palisade": token})
    assert r.status_code == 403


def test_memory_within_the_requests_and_limits(pod):
    """Envoy's and the companion's resident memory after the traffic above,
    against deployment.yaml's limits (and printed: the figures the
    requests are sized from)."""
    envoy = envoy_memory(pod.envoy)
    status = Path(f"/proc/{pod.companion.pid}/status").read_text()
    companion = {k: int(v.split()[0]) * 1024 for k, _, v in
                 (line.partition(":") for line in status.splitlines()) if k in ("VmRSS", "VmHWM")}
    limits = {name: c["resources"]["limits"]["memory"] for name, c in pod.containers.items() if "resources" in c}
    print(f"\n[memory] envoy rss {envoy['rss'] / MiB:.1f} MiB (limit {limits['envoy']}), "
          f"companion rss {companion['VmRSS'] / MiB:.1f} MiB, peak {companion['VmHWM'] / MiB:.1f} MiB "
          f"(limit {limits['companion']})")
    mebibytes = lambda q: int(q.removesuffix("Mi")) * MiB  # noqa: E731
    assert envoy["rss"] < mebibytes(limits["envoy"])
    assert companion["VmHWM"] < mebibytes(limits["companion"])


def test_zz_with_the_companion_down_the_pod_still_protects(pod):
    """Why the companion has no readiness probe: with it gone, the filter
    notices within two probes and challenges with its own proof of work
    (failure_mode: pow); browsers still get through. (Runs last: it stops
    the companion.)"""
    stop(pod.companion)
    deadline = time.time() + 10
    while admin_stats(pod.envoy, r"palisade\.companion\.up$").get("wasmcustom.palisade.companion.up") != 0:
        assert time.time() < deadline, "the filter never saw the companion down"
        time.sleep(0.1)
    r = get(pod, "/articles/2", {**BROWSER, "User-Agent": CLAUDEBOT}, "198.51.100.30")
    assert r.status_code == 403 and r.json()["challenge"]["kind"] == "pow", r.text
    assert get(pod, "/", BROWSER, "198.51.100.31").status_code == 200
    # The prefix is the filter's now: it answers instead of routing to a
    # companion that is not there.
    r = get(pod, "/.palisade/challenge/x", BROWSER, "198.51.100.32")
    assert r.status_code == 503 and r.json()["error"] == "companion_unavailable", r.text
