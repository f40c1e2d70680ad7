"""Bad configuration through a real Envoy.

What Envoy 1.40 actually does with a plugin whose configuration fails
(`on_configure` returns false), whatever `failure_policy` says:
- in a static (bootstrap) configuration it refuses to start: a clean exit
  with status 1 after logging why, never a crash and never a proxy that
  lets traffic through unfiltered;
- in a listener pushed at runtime (LDS) it rejects the update: the proxy
  stays up and keeps serving with the last good policy.
Either way Palisade logs exactly one line saying what is wrong and where.
`envoy --mode validate` loads the module too, so it catches bad policies
before a deploy.
"""
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
import requests

from conftest import (
    BROWSER_HEADERS,
    ENVOY,
    Envoy,
    free_port,
    policy_json,
    policy_without_scoring,
    render_config,
    start_envoy,
    stop,
)

INVALID = "palisade: invalid configuration: "
JSON = {"Accept": "application/json"}


def invalid_lines(log):
    return [line[line.index(INVALID):] for line in log.splitlines() if INVALID in line]


def with_change(change):
    policy = policy_json()
    change(policy)
    return policy


def bad_regex(p):
    p["routes"][0]["match"] = {"path_regex": "^/(unclosed"}


def unknown_route_field(p):
    p["routes"][0]["match"]["pathh"] = "/x"


def unknown_top_level_field(p):
    p["rotues"] = p.pop("routes")


def unknown_challenge_kind(p):
    p["challenge"]["kind"] = "image"


def companion_listener_not_an_address(p):
    p["companion"]["public"] = "localhost"


def short_key(p):
    p["tokens"]["keys"] = ["1:a-Secret-that-must-not-leak-anywhere", "2:tiny-Secret"]


def keys_env_unset(p):
    p["tokens"] = {"keys_env": "PALISADE_E2E_UNSET_KEYS"}


NOT_JSON = (r"the plugin configuration is not JSON \(.+\): give the policy as JSON, "
            r"as `palisade policy-json FILE` prints it \(YAML is not accepted here\)")

BAD_POLICIES = {
    "invalid-regex": (with_change(bad_regex), r"routes\[0\]\.match\.path_regex: .*unclosed group.*"),
    "unknown-field": (with_change(unknown_route_field),
                      r"routes\[0\]\.match\.pathh: unknown field `pathh`, expected one of `path`, .*"),
    "unknown-top-level-field": (with_change(unknown_top_level_field), r"rotues: unknown field `rotues`, .*"),
    "unknown-challenge-kind": (with_change(unknown_challenge_kind),
                               r"challenge\.kind: unknown variant `image`, expected one of `pow`, "
                               r"`text`, `one_click`, `grid`, `audio`.*"),
    "companion-listener": (with_change(companion_listener_not_an_address),
                           r"companion\.public: `localhost` is not a listen address \(IP:PORT, .*"),
    "keys-env-unset": (with_change(keys_env_unset),
                       r"tokens\.keys_env: environment variable `PALISADE_E2E_UNSET_KEYS` is not set "
                       r"and `tokens\.keys` is empty"),
    "short-key": (with_change(short_key),
                  r"tokens\.keys\[1\]: key 2: the secret is 11 bytes; at least 16 bytes are required"),
    "not-json": ("this is not json {", NOT_JSON),
    "yaml-not-json": ("client:\n  source: connection\n", NOT_JSON),
    "truncated-json": (json.dumps(policy_json())[:-10], NOT_JSON),
    "empty": ("", r"the plugin configuration is empty: give the policy as JSON.*"),
}


def launch(config_text, env=None):
    """Starts Envoy on a rendered configuration; returns (process, log path,
    workdir). The caller stops it (see `running`)."""
    workdir = Path(tempfile.mkdtemp(prefix="palisade-e2e-config-"))
    config = workdir / "envoy.yaml"
    config.write_text(config_text)
    log_path = workdir / "envoy.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(ENVOY), "-c", str(config), "--concurrency", "2", "--use-dynamic-base-id",
             "--log-level", "info", "--disable-hot-restart"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    return process, log_path, workdir


@contextlib.contextmanager
def running(config_text, admin_port, timeout=30):
    """Envoy on `config_text`, once it has exited or its admin /ready says
    200 (or `timeout` passed); stopped on exit even if the test fails."""
    process, log_path, workdir = launch(config_text)
    try:
        deadline = time.time() + timeout
        while process.poll() is None and time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1):
                    break
            except OSError:  # not listening yet, or 503 while initialising
                time.sleep(0.1)
        yield process, log_path, workdir
    finally:
        stop(process)


def refused(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


# --- a bad policy in the bootstrap configuration --------------------------------

# Each start costs a wasm compile; every case is also pushed at runtime below.
STATIC_CASES = ["invalid-regex", "unknown-field", "not-json"]


@pytest.mark.parametrize("case", STATIC_CASES)
def test_bad_policy_stops_envoy_cleanly_with_one_clear_line(echo_upstream, case):
    policy, expected = BAD_POLICIES[case]
    port, admin = free_port(), free_port()
    with running(render_config(policy, echo_upstream, port, admin), admin) as (process, log_path, _):
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("Envoy kept running with a bad policy")
        log = log_path.read_text(errors="replace")
        # A refusal, not a crash: exit status 1, no signal, no stack trace.
        assert process.returncode == 1, log[-3000:]
        assert process.returncode != -signal.SIGSEGV and "Caught " not in log and "Backtrace" not in log
        lines = invalid_lines(log)
        assert len(lines) == 1, lines
        assert re.fullmatch(re.escape(INVALID) + expected, lines[0]), lines[0]
        assert "Unable to create Wasm plugin palisade" in log
        assert "palisade: policy loaded" not in log
        # Nothing was ever served: the listener never opened.
        assert "starting workers" not in log
        assert refused(port)


# --- a policy pushed at runtime (LDS): Envoy stays up -------------------------------

class Dynamic:
    """Envoy whose listener (with the Palisade filter) comes from an LDS file,
    so a new policy can be pushed while it runs."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.port, self.admin_port = free_port(), free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="palisade-e2e-lds-"))
        self.lds = self.dir / "lds.yaml"
        self.version = 0

    def split(self, policy):
        text = render_config(policy, self.upstream_port, self.port, self.admin_port)
        head, rest = text.split("  listeners:\n", 1)
        listeners, clusters = rest.split("  clusters:\n", 1)
        assert listeners.startswith("  - name: ingress\n")
        resources = textwrap.dedent(listeners).replace(
            "- name: ingress\n",
            '- "@type": type.googleapis.com/envoy.config.listener.v3.Listener\n  name: ingress\n', 1)
        bootstrap = (head + "  clusters:\n" + clusters
                     + "dynamic_resources:\n  lds_config:\n    resource_api_version: V3\n"
                     + f"    path_config_source: {{path: {json.dumps(str(self.lds))}}}\n"
                     + "node: {id: palisade-e2e, cluster: palisade-e2e}\n")
        return bootstrap, "resources:\n" + resources

    def push(self, policy):
        """Replaces the LDS file atomically (Envoy watches for the move)."""
        self.version += 1
        tmp = self.dir / f"lds.{self.version}.tmp"
        tmp.write_text(self.split(policy)[1])
        os.replace(tmp, self.lds)

    def lds_stats(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/stats?filter=lds.update") as r:
            return {k.strip(): int(v) for k, _, v in (l.partition(": ") for l in r.read().decode().splitlines())
                    if v.strip().isdigit()}

    def wait_for_update(self, before, kind, timeout=20):
        """Waits until listener_manager.lds.update_<kind> rises past `before`."""
        name = f"listener_manager.lds.update_{kind}"
        deadline = time.time() + timeout
        while time.time() < deadline:
            with contextlib.suppress(OSError):
                if self.lds_stats().get(name, 0) > before.get(name, 0):
                    return
            time.sleep(0.05)
        raise AssertionError(f"{name} did not rise in {timeout}s: {self.lds_stats()}")


def browse(port, path, ip="10.78.0.1"):
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=10,
                        headers={**BROWSER_HEADERS, **JSON, "X-Forwarded-For": ip})


ADMIN_BODY = "The admin area is not reachable from the internet."


@pytest.fixture(scope="module")
def dynamic(echo_upstream):
    """Envoy started with a bad policy in its LDS file, then given the demo
    policy. Yields (Dynamic, Envoy, what was seen before the good push)."""
    dyn = Dynamic(echo_upstream)
    bad = BAD_POLICIES["invalid-regex"][0]
    bootstrap, _ = dyn.split(bad)
    dyn.push(bad)
    with running(bootstrap, dyn.admin_port) as (process, log_path, _):
        envoy = Envoy(process, dyn.port, dyn.admin_port, log_path)
        dyn.wait_for_update({}, "rejected")
        initial = {
            "alive": envoy.alive(),
            "rejected": dyn.lds_stats()["listener_manager.lds.update_rejected"],
            "listener_refused": refused(dyn.port),
            "lines": invalid_lines(envoy.log()),
        }
        before = dyn.lds_stats()
        dyn.push(policy_json())
        dyn.wait_for_update(before, "success")
        deadline = time.time() + 10
        while refused(dyn.port) and time.time() < deadline:
            time.sleep(0.05)
        initial["errors_after_good"] = envoy.stats()["wasmcustom.palisade.config_errors"]
        yield dyn, envoy, initial


def test_bad_first_policy_keeps_envoy_up_and_the_listener_closed(dynamic):
    _, envoy, initial = dynamic
    assert initial["alive"], envoy.log()[-3000:]
    assert initial["rejected"] == 1
    assert initial["listener_refused"]  # nothing served unfiltered
    assert len(initial["lines"]) == 1
    assert re.fullmatch(re.escape(INVALID) + BAD_POLICIES["invalid-regex"][1], initial["lines"][0])


def test_good_policy_pushed_after_a_bad_one_applies(dynamic):
    dyn, _, initial = dynamic
    assert browse(dyn.port, "/").json()["headers"]["x-palisade-action"] == "allow"
    r = browse(dyn.port, "/admin/")
    assert r.status_code == 403 and r.json()["message"] == ADMIN_BODY
    # The rejected first policy's VM is gone with its counters; this one is fresh.
    assert initial["errors_after_good"] == 0


@pytest.mark.parametrize("case", sorted(BAD_POLICIES))
def test_bad_policy_pushed_at_runtime_is_rejected_and_the_last_good_one_serves(dynamic, case):
    dyn, envoy, _ = dynamic
    policy, expected = BAD_POLICIES[case]
    errors = envoy.stats()["wasmcustom.palisade.config_errors"]
    seen = len(invalid_lines(envoy.log()))
    before = dyn.lds_stats()
    dyn.push(policy)
    dyn.wait_for_update(before, "rejected")
    assert envoy.alive()
    new = invalid_lines(envoy.log())[seen:]
    assert len(new) == 1, new  # exactly one line per bad push
    assert re.fullmatch(re.escape(INVALID) + expected, new[0]), new[0]
    assert "Secret" not in envoy.log()  # key material is never logged
    assert envoy.stats()["wasmcustom.palisade.config_errors"] == errors + 1
    # The last good policy is still in force: neither open nor failing.
    assert browse(dyn.port, "/").status_code == 200
    r = browse(dyn.port, "/admin/")
    assert r.status_code == 403 and r.json()["message"] == ADMIN_BODY


def test_next_good_policy_applies_after_rejections(dynamic):
    dyn, _, _ = dynamic
    changed = policy_json()
    next(r for r in changed["routes"] if r["name"] == "admin")["block"]["body"] = "Closed for maintenance."
    try:
        before = dyn.lds_stats()
        dyn.push(changed)
        dyn.wait_for_update(before, "success")
        deadline = time.time() + 10
        while True:
            r = browse(dyn.port, "/admin/")
            if r.json().get("message") == "Closed for maintenance." or time.time() > deadline:
                break
            time.sleep(0.1)
        assert r.status_code == 403 and r.json()["message"] == "Closed for maintenance."
    finally:
        before = dyn.lds_stats()
        dyn.push(policy_json())
        dyn.wait_for_update(before, "success")


# --- envoy --mode validate -----------------------------------------------------

def validate(config_text):
    workdir = Path(tempfile.mkdtemp(prefix="palisade-e2e-validate-"))
    config = workdir / "envoy.yaml"
    config.write_text(config_text)
    return subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(config), "--use-dynamic-base-id",
                           "--disable-hot-restart"], capture_output=True, text=True, timeout=60)


def test_validate_accepts_the_demo_configuration(echo_upstream):
    r = validate(render_config(policy_json(), echo_upstream, free_port(), free_port()))
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "OK" in r.stdout
    assert "palisade: policy loaded" in r.stdout + r.stderr


@pytest.mark.parametrize("breakage", ["unknown-cluster", "not-yaml", "unknown-filter-field"])
def test_validate_rejects_a_broken_envoy_configuration(echo_upstream, breakage):
    text = render_config(policy_json(), echo_upstream, free_port(), free_port())
    if breakage == "unknown-cluster":
        text = text.replace("route: {cluster: upstream}", "route: {cluster: nowhere}")
    elif breakage == "not-yaml":
        text += "\n  - : : [\n"
    else:
        text = text.replace("failure_policy: FAIL_CLOSED", "failure_policy: FAIL_SOMETIMES")
    r = validate(text)
    assert r.returncode != 0, (r.stdout + r.stderr)[-3000:]
    assert r.returncode > 0  # an error exit, not a signal


def test_validate_rejects_a_bad_policy(echo_upstream):
    r = validate(render_config(BAD_POLICIES["invalid-regex"][0], echo_upstream, free_port(), free_port()))
    assert r.returncode != 0
    assert invalid_lines(r.stdout + r.stderr) == [
        line for line in invalid_lines(r.stdout + r.stderr) if "routes[0].match.path_regex: " in line]
    assert len(invalid_lines(r.stdout + r.stderr)) == 1


def test_the_deepest_policy_the_parsers_take_loads_and_decides_in_envoy(echo_upstream):
    """The filter's stack is 256 KiB (scripts/build-wasm.sh). The deepest
    policy the JSON and regex parsers accept (tests/policy.rs shows one step
    past each refused) compiles in every VM and is decided on, recursion
    and all, without overflowing it: an overflow would trap the VM, and
    FAIL_CLOSED would refuse every request."""
    policy = policy_without_scoring()
    when = {"path": ["/deep/*"]}
    for _ in range(122):  # an even number of nots: the path condition itself
        when = {"not": when}
    policy["rules"].insert(0, {"name": "deep", "when": when, "action": "block"})
    regex = "^/" + "(" * 249 + "x" + ")" * 249 + "$"
    policy["routes"].insert(0, {"name": "deep-regex", "action": "block",
                                "match": {"path_regex": regex}})
    with start_envoy(policy, echo_upstream) as envoy:
        assert browse(envoy.port, "/x").status_code == 403
        assert browse(envoy.port, "/deep/a").status_code == 403
        assert browse(envoy.port, "/").status_code == 200
        assert browse(envoy.port, "/xx").status_code == 200
        assert envoy.alive()
