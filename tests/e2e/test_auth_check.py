"""The companion's `/auth` check on its own: the filter's decision for the
request nginx describes, in the shapes `auth_request` allows, with an
empty body. These tests ask the check the way nginx's subrequest does;
test_nginx.py and test_parity.py go through real nginx."""
import json

import pytest
import requests

from conftest import (BROWSER_HEADERS, GOOGLEBOT_UA, cli, next_client_ip, policy_json,
                      start_companion)


@pytest.fixture(scope="module")
def companion():
    with start_companion(policy_json()) as c:
        yield c


def check(companion, uri, ip=None, method="GET", headers=None):
    h = {**BROWSER_HEADERS, "X-Original-URI": uri, "X-Original-Method": method,
         "X-Real-IP": "127.0.0.1", "X-Forwarded-For": ip or next_client_ip(), "Host": "example.test",
         **(headers or {})}
    r = requests.get(companion.internal + "/auth", headers=h, timeout=10)
    assert r.content == b"", "auth_request answers carry no body"
    return r


def test_allow_carries_the_annotations(companion):
    r = check(companion, "/public/x")
    assert r.status_code == 204
    assert r.headers["x-palisade-action"] == "allow"
    assert r.headers["x-palisade-client"] == "class=browser; name=chrome"


def test_block_and_spoofed_crawler(companion):
    r = check(companion, "/admin/users")
    assert (r.status_code, r.headers["x-palisade-action"], r.headers["x-palisade-status"]) == (403, "block", "403")
    r = check(companion, "/", ip="203.0.113.50", headers={"User-Agent": GOOGLEBOT_UA})
    assert r.status_code == 403 and r.headers["x-palisade-action"] == "block"


@pytest.mark.parametrize("uri,kind", [("/login?next=/a", "pow"), ("/demo/text", "text"), ("/demo/grid", "grid")])
def test_challenges_name_the_companion_page(companion, uri, kind):
    r = check(companion, uri)
    assert r.status_code == 401 and r.headers["x-palisade-action"] == "challenge"
    assert r.headers["x-palisade-challenge"].startswith(f"/.palisade/challenge?kind={kind}&difficulty=2&return=")


def test_a_pass_token_lets_the_client_through(companion):
    ip = next_client_ip()
    token = cli("token", "sign", "--config", companion.policy_path, "--level", "2", "--ip", ip,
                "--user-agent", BROWSER_HEADERS["User-Agent"]).stdout.strip()
    assert check(companion, "/login", ip=ip, headers={"Cookie": f"palisade={token}"}).status_code == 204
    assert check(companion, "/login", ip=ip, headers={"X-Palisade-Token": token}).status_code == 204
    assert check(companion, "/login", ip=next_client_ip(), headers={"Cookie": f"palisade={token}"}).status_code == 401


def test_rate_limit_is_a_403_with_retry_after(companion):
    ip = next_client_ip()
    statuses = [check(companion, "/api/items", ip=ip).status_code for _ in range(10)]
    assert statuses == [204] * 10
    r = check(companion, "/api/items", ip=ip)
    assert r.status_code == 403 and r.headers["x-palisade-action"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1


@pytest.mark.parametrize("uri,ua", [("/", None), ("/admin/", None), ("/login", None),
                                    ("/protected/x", "curl/8.5.0"), ("/demo/audio", None)])
def test_the_same_decision_as_explain(companion, uri, ua):
    ip = next_client_ip()
    headers = dict(BROWSER_HEADERS)
    if ua:
        headers["User-Agent"] = ua
    r = check(companion, uri, ip=ip, headers=headers)
    args = ["explain", "--config", companion.policy_path, "--path", uri, "--ip", "127.0.0.1", "--json",
            "--host", "example.test", "-H", f"X-Forwarded-For: {ip}"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    explained = json.loads(cli(*args).stdout)
    assert r.headers["x-palisade-action"] == explained["action"], explained


def test_without_x_original_uri_the_check_describes_the_root(companion):
    r = requests.get(companion.internal + "/auth", headers=BROWSER_HEADERS, timeout=10)
    assert r.status_code == 204 and r.content == b""


def test_a_repeated_request_id_gets_the_first_answer_uncounted(companion):
    ip = next_client_ip()
    first = [check(companion, "/api/items", ip=ip, headers={"X-Request-Id": f"id-{ip}-{n}"}).status_code
             for n in range(10)]
    assert first == [204] * 10
    # The same ids again: answered from their verdicts, not counted.
    again = [check(companion, "/api/items", ip=ip, headers={"X-Request-Id": f"id-{ip}-{n}"}).status_code
             for n in range(10)]
    assert again == [204] * 10
    assert check(companion, "/api/items", ip=ip).status_code == 403
    # An id only answers its own request.
    r = check(companion, "/admin/", ip=ip, headers={"X-Request-Id": f"id-{ip}-0"})
    assert r.status_code == 403 and r.headers["x-palisade-action"] == "block"


def test_the_reply_is_the_filters_response(companion):
    ip = next_client_ip()
    h = {"X-Request-Id": f"reply-{ip}", "Accept": "application/json"}
    assert check(companion, "/admin/x", ip=ip, headers=h).status_code == 403
    reply = requests.get(companion.internal + "/auth/reply", timeout=10, headers={
        **BROWSER_HEADERS, **h, "X-Original-URI": "/admin/x", "X-Real-IP": "127.0.0.1",
        "X-Forwarded-For": ip, "Host": "example.test"})
    assert reply.status_code == 403
    assert reply.json() == {"action": "block", "message": "The admin area is not reachable from the internet."}
    unknown = requests.get(companion.internal + "/auth/reply", headers={"X-Request-Id": "never-seen"}, timeout=10)
    assert unknown.status_code == 403 and unknown.text == "Forbidden\n"


def test_replicas_share_rate_limits_in_redis():
    """`companion.limits: redis`: two companions, one allowance per client;
    with Redis gone, `limits_unavailable: local` counts in each one."""
    from conftest import start_redis

    p = policy_json()
    p["companion"].update({"limits": "redis", "limits_unavailable": "local"})
    redis = start_redis()
    url = redis.__enter__()
    try:
        with start_companion(p, redis_url=url) as a, start_companion(p, redis_url=url) as b:
            ip = next_client_ip()
            statuses = [check(a if n % 2 else b, "/api/items", ip=ip).status_code for n in range(10)]
            assert statuses == [204] * 10
            assert check(a, "/api/items", ip=ip).status_code == 403
            assert check(b, "/api/items", ip=ip).status_code == 403
            redis.__exit__(None, None, None)
            redis = None
            ip = next_client_ip()
            for replica in (a, b):
                assert [check(replica, "/api/items", ip=ip).status_code for _ in range(10)] == [204] * 10
                assert check(replica, "/api/items", ip=ip).status_code == 403
            assert 'palisade_companion_limit_fallbacks_total{mode="local"}' in a.metrics()
    finally:
        if redis is not None:
            redis.__exit__(None, None, None)
