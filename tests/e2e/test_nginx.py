"""Palisade through real nginx (Debian's, with auth_request): the demo's
challenges solved and their tokens accepted, request bodies intact, one
count per request across internal redirects, the companion killed under
load in each failure mode, forged descriptions of the request ignored, and
a learned score applied from a client's next check.
The decisions themselves are compared with Envoy's in test_parity.py."""
import json
import subprocess
import threading
import time

import pytest
import requests

from conftest import (BROWSER_HEADERS, BROWSER_UA, ROOT, WRK, cli, free_port, next_client_ip, policy_json,
                      run_wrk, solve_pow, start_companion, start_nginx)

JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def demo(echo_upstream):
    with start_companion(policy_json()) as companion, start_nginx(companion, echo_upstream) as nginx:
        yield nginx, companion


def get(nginx, path, ip, headers=None, **kwargs):
    h = {**BROWSER_HEADERS, "X-Forwarded-For": ip, **(headers or {})}
    return requests.get(nginx.url + path, headers=h, allow_redirects=False, timeout=10, **kwargs)


def reached_upstream(r):
    return r.status_code == 200 and r.headers["content-type"].startswith("application/json") \
        and r.json().get("upstream") == "palisade-demo"


def test_proof_of_work_through_nginx_then_the_token_by_cookie_and_header(demo):
    nginx, _ = demo
    ip = next_client_ip()
    r = get(nginx, "/login", ip, JSON)
    assert r.status_code == 403 and r.json()["action"] == "challenge"
    challenge = r.json()["challenge"]
    nonce = solve_pow(challenge["data"], challenge["difficulty"])
    solved = requests.post(nginx.url + r.json()["verify"], json={"data": challenge["data"], "nonce": nonce},
                           headers={**BROWSER_HEADERS, **JSON, "X-Forwarded-For": ip}, timeout=10)
    assert solved.status_code == 200, solved.text
    token = solved.json()["token"]
    assert solved.cookies.get("palisade") == token
    assert reached_upstream(get(nginx, "/login", ip, {**JSON, "Cookie": f"palisade={token}"}))
    assert reached_upstream(get(nginx, "/login", ip, {**JSON, "X-Palisade-Token": token}))
    # Bound to the client: another address is challenged again.
    assert get(nginx, "/login", next_client_ip(), {**JSON, "Cookie": f"palisade={token}"}).status_code == 403


def test_text_challenge_through_nginx(demo):
    nginx, companion = demo
    ip = next_client_ip()
    r = get(nginx, "/demo/text", ip)
    assert r.status_code == 303
    page = get(nginx, r.headers["location"], ip, JSON)
    assert page.status_code == 200, page.text
    challenge = page.json()
    assert get(nginx, challenge["media"]["image"], ip).headers["content-type"] == "image/png"
    answer = companion.answer(challenge["id"])
    solved = requests.post(nginx.url + challenge["verify"], json={"answer": answer},
                           headers={**BROWSER_HEADERS, **JSON, "X-Forwarded-For": ip}, timeout=10)
    assert solved.status_code == 200, solved.text
    token = solved.json()["token"]
    assert reached_upstream(get(nginx, "/demo/text", ip, {**JSON, "Cookie": f"palisade={token}"}))


def test_rate_limit_then_429_with_retry_after(demo):
    nginx, _ = demo
    ip = next_client_ip()
    with requests.Session() as s:
        statuses = [s.get(nginx.url + "/api/items", headers={**BROWSER_HEADERS, "X-Forwarded-For": ip},
                          timeout=10).status_code for _ in range(10)]
        assert statuses == [200] * 10
        r = s.get(nginx.url + "/api/items", headers={**BROWSER_HEADERS, "X-Forwarded-For": ip}, timeout=10)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.headers["ratelimit-policy"] == '"palisade";q=19;w=60'


def test_post_bodies_reach_the_upstream_intact(demo):
    nginx, _ = demo
    ip = next_client_ip()
    form = "name=" + "x" * 200_000 + "&end=1"
    r = requests.post(nginx.url + "/public/form", data=form,
                      headers={**BROWSER_HEADERS, **JSON, "X-Forwarded-For": ip,
                               "Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert reached_upstream(r) and r.json()["body"] == form and r.json()["method"] == "POST"

    def chunks():
        yield b'{"part": 1,'
        yield b' "part2": true}'
    r = requests.post(nginx.url + "/public/form", data=chunks(),
                      headers={**BROWSER_HEADERS, **JSON, "X-Forwarded-For": ip,
                               "Content-Type": "application/json"}, timeout=10)
    assert reached_upstream(r) and r.json()["body"] == '{"part": 1, "part2": true}'


def test_an_internal_redirect_is_counted_once(demo):
    """/api/docs/ is served by nginx's `index`, an internal redirect that
    checks again with the same $request_id: the api route's limit (10 at
    once) must see one request per client request, not two."""
    nginx, companion = demo
    ip = next_client_ip()
    before = companion.metrics()
    with requests.Session() as s:
        statuses = [s.get(nginx.url + "/api/docs/", headers={**BROWSER_HEADERS, "X-Forwarded-For": ip},
                          timeout=10) for _ in range(10)]
    assert [r.status_code for r in statuses] == [200] * 10
    assert "API docs, served by nginx" in statuses[0].text
    assert get(nginx, "/api/docs/", ip).status_code == 429
    repeats = metric(companion.metrics(), 'palisade_companion_checks_total{action="allow",check="repeat"}')
    assert repeats - metric(before, 'palisade_companion_checks_total{action="allow",check="repeat"}') == 10


def metric(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def test_forged_descriptions_of_the_request_are_ignored(demo):
    nginx, _ = demo
    forged = {"X-Real-IP": "192.0.2.10", "X-Original-URI": "/public/", "X-Original-Method": "GET",
              "X-Request-Id": "0" * 32, "X-Palisade-Client-Ip": "192.0.2.10"}
    # The office network is allowed everywhere; claiming it changes nothing.
    assert get(nginx, "/admin/users", next_client_ip(), forged).status_code == 403
    assert get(nginx, "/", "198.51.100.9", forged).status_code == 403
    # Nor do annotations the client writes itself reach the upstream.
    r = get(nginx, "/public/x", next_client_ip(),
            {"User-Agent": "curl/8.5.0", **JSON, "X-Palisade-Action": "allow", "X-Palisade-Score": "0",
             "X-Palisade-Client-Ip": "1.2.3.4"})
    seen = r.json()["headers"]
    assert (seen["x-palisade-action"], seen["x-palisade-score"]) == ("monitor", "50")
    assert "x-palisade-client-ip" not in seen


def wait_for_status(url, want, timeout, headers=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = requests.get(url, headers={**BROWSER_HEADERS, **(headers or {})}, allow_redirects=False, timeout=5)
        if r.status_code == want:
            return r
        time.sleep(0.05)
    raise AssertionError(f"not {want} within {timeout}s: {r.status_code}")


@pytest.mark.skipif(WRK is None, reason="wrk not installed (scripts/install-system-deps.sh)")
@pytest.mark.parametrize("mode,down_status", [("closed", 503), ("open", 200)])
def test_companion_killed_under_load(echo_upstream, mode, down_status):
    policy = policy_json()
    ports = {"public_port": free_port(), "internal_port": free_port()}
    first = start_companion(policy, **ports)
    companion = first.__enter__()
    try:
        with start_nginx(companion, echo_upstream, failure_mode=mode) as nginx:
            result = {}
            load = threading.Thread(target=run_wrk, args=(
                nginx.url + "/public/x", 8, {**BROWSER_HEADERS, "X-Forwarded-For": "10.99.0.1"}, result))
            load.start()
            time.sleep(2)
            first.__exit__(None, None, None)
            first = None
            r = wait_for_status(nginx.url + "/public/x", down_status, 2)
            if mode == "closed":
                assert r.headers["retry-after"] == "1" and "unavailable" in r.text
                j = wait_for_status(nginx.url + "/public/x", 503, 2, JSON)
                assert j.json() == {"error": "companion_unavailable", "retry_after": 1}
            else:
                # Open means unchecked: even the blocked area is reachable.
                assert wait_for_status(nginx.url + "/admin/", 200, 2).status_code == 200
            time.sleep(2)
            with start_companion(policy, **ports):
                wait_for_status(nginx.url + "/public/x", 200, 5)
                assert wait_for_status(nginx.url + "/admin/", 403, 5).status_code == 403
                load.join()
            log = nginx.log()
    finally:
        if first is not None:
            first.__exit__(None, None, None)
    statuses = result["statuses"]
    assert sum(statuses.values()) > 500, result["stdout"]
    assert set(statuses) <= {200, down_status}, f"{mode}: {statuses}\n{log[-2000:]}"
    assert statuses.get(down_status, 0) > 0 and statuses.get(200, 0) > 0, statuses


def test_checks_from_untrusted_peers_are_refused(echo_upstream):
    policy = policy_json()
    policy["companion"]["trusted_peers"] = ["192.0.2.1"]
    with start_companion(policy) as companion:
        r = requests.get(companion.internal + "/auth",
                         headers={"X-Original-URI": "/public/", "X-Real-IP": "192.0.2.5"}, timeout=5)
        assert r.status_code == 403 and r.content == b""
        assert "check refused" in companion.log() and "192.0.2.1" not in companion.log()


def write_policy_with(**companion):
    from conftest import write_policy

    policy = policy_json()
    policy["companion"].update(companion)
    return write_policy(policy)


def test_check_config_names_a_bad_trusted_peer():
    r = cli("check-config", write_policy_with(trusted_peers=["10.0.0.0/33"]), check=False)
    assert r.returncode != 0 and "companion.trusted_peers[0]" in r.stderr
    r = cli("check-config", write_policy_with(trusted_peers=[]), check=False)
    assert r.returncode != 0 and "companion.trusted_peers" in r.stderr


def test_make_run_nginx_serves_the_demo(tmp_path):
    """`make run-nginx` (scripts/run-demo.sh with PROXY=nginx): nginx, the
    companion and the upstream start together, and Ctrl-C stops them."""
    import os
    import signal

    from conftest import ROOT, write_policy

    listen, upstream_port = free_port(), free_port()
    public, internal = free_port(), free_port()
    policy = policy_json()
    policy["companion"].update({"public": f"127.0.0.1:{public}", "internal": f"127.0.0.1:{internal}",
                                "data_dir": str(tmp_path / "data")})
    env = {**os.environ, "PROXY": "nginx", "LISTEN_PORT": str(listen), "UPSTREAM_PORT": str(upstream_port),
           "POLICY": str(write_policy(policy, tmp_path))}
    log = open(tmp_path / "run.log", "w")
    demo = subprocess.Popen(["bash", "scripts/run-demo.sh"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{listen}"
    try:
        deadline = time.time() + 60
        while True:
            assert demo.poll() is None, (tmp_path / "run.log").read_text()
            try:
                if requests.get(url + "/", headers=BROWSER_HEADERS, timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.time() < deadline, (tmp_path / "run.log").read_text()
            time.sleep(0.2)
        assert get_status(url + "/admin/") == 403
        assert get_status(url + "/demo/grid") == 303
        r = requests.get(url + "/demo/text", headers={**BROWSER_HEADERS, "User-Agent": BROWSER_UA}, timeout=5)
        assert r.status_code == 200 and 'form method="post"' in r.text
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(timeout=20)
        finally:
            log.close()
    time.sleep(0.5)
    for port in (listen, upstream_port, public, internal):
        with pytest.raises(OSError):
            import socket
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


def get_status(url):
    return requests.get(url, headers=BROWSER_HEADERS, allow_redirects=False, timeout=5).status_code


def constant_model(path, logit):
    """The shipped logistic model's file with every weight 0: it scores
    every client alike, 100 / (1 + e^-logit)."""
    model = json.loads((ROOT / "datasets" / "models" / "request-logistic.json").read_text())
    layer = model["layers"][0]
    layer["weights"] = [0.0] * layer["inputs"]
    layer["bias"] = [logit]
    model["calibration"] = {"a": 1.0, "b": 0.0}
    path.write_text(json.dumps(model))
    return str(path)


def test_a_learned_score_blocks_from_the_clients_next_check(echo_upstream, tmp_path):
    """nginx's check applies the score a client's previous check left, as
    the Envoy filter applies its cached score: with a model that scores
    everyone 100, a browser's first request to the demo's `score: cached`
    route passes on rules alone and its next one is blocked, while routes
    that do not use the score still pass."""
    policy = policy_json()
    policy["scoring"]["model"] = constant_model(tmp_path / "model.json", 8.0)
    with start_companion(policy) as companion, start_nginx(companion, echo_upstream) as nginx:
        ip = next_client_ip()
        first = get(nginx, "/protected/a", ip, JSON)
        assert reached_upstream(first), first.text
        assert first.json()["headers"]["x-palisade-score"] == "0"
        second = get(nginx, "/protected/b", ip, JSON)
        assert second.status_code == 403 and not reached_upstream(second), second.text
        assert reached_upstream(get(nginx, "/", ip, JSON))
        other = next_client_ip()
        assert reached_upstream(get(nginx, "/protected/a", other, JSON)), "another client has its own score"
