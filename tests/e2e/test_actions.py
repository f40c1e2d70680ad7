"""What the demo policy (envoy/demo-policy.yaml) does to requests, through a
real Envoy: allow with upstream annotations, block, rate limit, challenge,
crawler verification, X-Forwarded-For trust, monitor, and the metrics.

Each test sends its own client address in X-Forwarded-For (the demo trusts
one hop, so the rightmost entry is the client), so rate limits and counters
of one test never leak into another.
"""
import http.client
import json
import re

import pytest
import requests

from conftest import (
    BROWSER_HEADERS,
    BROWSER_UA,
    GOOGLEBOT_UA,
    google_crawler_ip,
    next_client_ip,
    policy_json,
    prometheus_stats,
    start_envoy,
    wait_for_log,
)

JSON = {"Accept": "application/json"}
ADMIN_BODY = "The admin area is not reachable from the internet."
DEFAULT_BLOCK_BODY = "Access denied by Palisade."
# TEST-NET-3: not in any crawler's published ranges.
OUTSIDE_GOOGLE = "203.0.113.77"


def get(envoy, path, ip=None, headers=None, **kwargs):
    """GET through Envoy as client `ip` (a fresh one when None)."""
    h = {"X-Forwarded-For": ip or next_client_ip(), **(headers or {})}
    return requests.get(envoy.url + path, headers=h, allow_redirects=False, timeout=10, **kwargs)


def upstream_saw(response):
    """The request headers the echo upstream received (needs Accept: JSON)."""
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["upstream"] == "palisade-demo"
    return body["headers"]


def assert_challenge(response):
    assert response.status_code == 403, response.text[:300]
    body = response.json()
    assert body["action"] == "challenge"
    assert body["challenge"]["kind"] == "pow"
    assert body["verify"] == "/.palisade/verify"


def assert_blocked(response, message=DEFAULT_BLOCK_BODY):
    assert response.status_code == 403, response.text[:300]
    assert response.json() == {"action": "block", "message": message}


# --- allow, and the annotation headers -------------------------------------

@pytest.mark.parametrize("path", ["/", "/public/", "/public/docs/page.html?x=1", "/api/public/status"])
def test_browser_reaches_the_upstream_with_annotations(demo_envoy, path):
    r = get(demo_envoy, path, headers={**BROWSER_HEADERS, **JSON})
    seen = upstream_saw(r)
    assert r.json()["path"] == path
    assert seen["x-palisade-action"] == "allow"
    assert seen["x-palisade-score"] == "0"
    assert seen["x-palisade-client"].startswith("class=browser")
    assert "x-palisade-token" not in seen


def test_browser_page_shows_the_annotations(demo_envoy):
    r = get(demo_envoy, "/", headers=BROWSER_HEADERS)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "Hello from the upstream" in r.text
    assert "<td>x-palisade-action</td><td>allow</td>" in r.text


def test_client_sent_annotations_are_overwritten(demo_envoy):
    forged = {
        "X-Palisade-Action": "block",
        "x-palisade-score": "99",
        "X-PALISADE-CLIENT": "class=search_engine; name=googlebot; verified",
    }
    r = get(demo_envoy, "/public/x", headers={**BROWSER_HEADERS, **JSON, **forged})
    seen = upstream_saw(r)
    assert seen["x-palisade-action"] == "allow"
    assert seen["x-palisade-score"] == "0"
    assert seen["x-palisade-client"].startswith("class=browser")
    assert "verified" not in seen["x-palisade-client"]


def test_client_sent_annotations_are_removed_when_annotation_is_off(echo_upstream):
    policy = policy_json()
    policy["annotate"] = {"upstream_headers": False}
    with start_envoy(policy, echo_upstream) as envoy:
        r = get(envoy, "/public/x", headers={
            **BROWSER_HEADERS, **JSON,
            "X-Palisade-Action": "allow", "X-Palisade-Score": "0", "X-Palisade-Client": "class=browser",
            "X-Palisade-Other": "kept",
        })
        seen = upstream_saw(r)
        assert not {"x-palisade-action", "x-palisade-score", "x-palisade-client"} & set(seen)
        # Only Palisade's own annotation names are reserved.
        assert seen["x-palisade-other"] == "kept"


# --- block -----------------------------------------------------------------

def test_admin_is_blocked_with_an_html_page_for_browsers(demo_envoy):
    r = get(demo_envoy, "/admin/users", headers=BROWSER_HEADERS)
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store"
    assert ADMIN_BODY in r.text
    assert "Hello from the upstream" not in r.text
    assert "x-envoy-upstream-service-time" not in r.headers  # never proxied


def test_admin_is_blocked_with_json_for_api_clients(demo_envoy):
    r = get(demo_envoy, "/admin/", headers={**BROWSER_HEADERS, **JSON})
    assert r.headers["content-type"] == "application/json"
    assert_blocked(r, ADMIN_BODY)


@pytest.mark.parametrize("method", ["POST", "DELETE", "HEAD"])
def test_admin_is_blocked_for_every_method(demo_envoy, method):
    r = requests.request(method, demo_envoy.url + "/admin/settings", timeout=10,
                         headers={**BROWSER_HEADERS, **JSON, "X-Forwarded-For": next_client_ip()})
    assert r.status_code == 403


# --- rate limit ------------------------------------------------------------

def test_api_allows_ten_requests_per_minute_then_429(demo_envoy):
    ip = next_client_ip()
    statuses = [get(demo_envoy, f"/api/items/{i}", ip=ip, headers=BROWSER_HEADERS).status_code
                for i in range(11)]
    assert statuses == [200] * 10 + [429]


def api_limit():
    """(requests admitted at once, the RateLimit-Policy quota) of the demo's api route."""
    route = next(r for r in policy_json()["routes"] if r["name"] == "api")
    count = int(route["rate_limit"]["rate"].split("/")[0])
    burst = route["rate_limit"].get("burst", 0)
    return burst + 1, count + burst


def exhaust(envoy, ip, path="/api/items", headers=None, limit=12):
    """Requests as `ip` until the first 429; returns (answers before it, the 429)."""
    ok = 0
    for _ in range(limit):
        r = get(envoy, path, ip=ip, headers={**BROWSER_HEADERS, **(headers or {})})
        if r.status_code == 429:
            return ok, r
        assert r.status_code == 200, r.text[:300]
        ok += 1
    raise AssertionError(f"no 429 after {limit} requests to {path}")


def test_api_rate_limit_answers_429_with_headers(demo_envoy):
    ip = next_client_ip()
    ok, r = exhaust(demo_envoy, ip)
    at_once, quota = api_limit()
    assert ok == at_once == 10
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 6  # one request's worth of 10/minute
    assert r.headers["ratelimit-policy"] == f'"palisade";q={quota};w=60'
    m = re.fullmatch(r'"palisade";r=(\d+);t=(\d+)', r.headers["ratelimit"])
    assert m, r.headers["ratelimit"]
    assert int(m.group(1)) == 0 and 0 <= int(m.group(2)) <= 60
    assert r.headers["content-type"].startswith("text/html")
    assert "Too many requests" in r.text
    # Still limited, and the JSON form says the same.
    r = get(demo_envoy, "/api/other", ip=ip, headers={**BROWSER_HEADERS, **JSON})
    assert r.status_code == 429
    assert r.json() == {"action": "rate_limited", "retry_after": int(r.headers["retry-after"])}


def test_api_rate_limit_is_per_client(demo_envoy):
    limited = next_client_ip()
    exhaust(demo_envoy, limited)
    r = get(demo_envoy, "/api/items", ip=next_client_ip(), headers={**BROWSER_HEADERS, **JSON})
    assert upstream_saw(r)["x-palisade-action"] == "allow"
    assert get(demo_envoy, "/api/items", ip=limited, headers=BROWSER_HEADERS).status_code == 429


def test_api_public_is_excepted_from_the_api_limit(demo_envoy):
    ip = next_client_ip()
    exhaust(demo_envoy, ip)
    for _ in range(12):
        assert get(demo_envoy, "/api/public/status", ip=ip, headers=BROWSER_HEADERS).status_code == 200


# --- challenges ------------------------------------------------------------

@pytest.mark.parametrize("who", ["browser", "curl", "verified-googlebot"])
def test_login_challenges_everyone(demo_envoy, who):
    headers, ip = {
        "browser": (BROWSER_HEADERS, None),
        "curl": ({"User-Agent": "curl/8.5.0"}, None),
        "verified-googlebot": ({"User-Agent": GOOGLEBOT_UA}, google_crawler_ip()),
    }[who]
    for path in ["/login", "/login/", "/login?next=/account"]:
        assert_challenge(get(demo_envoy, path, ip=ip, headers={**headers, **JSON}))


def test_login_challenge_page_for_browsers(demo_envoy):
    r = get(demo_envoy, "/login", headers=BROWSER_HEADERS)
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html")
    assert 'action="/.palisade/verify"' in r.text
    assert 'data-bits="14"' in r.text
    assert "set-cookie" not in r.headers  # no state until the work is done


TOOL_UAS = {
    "curl": "curl/8.5.0",
    "python-requests": "python-requests/2.32.3",
    "go-http-client": "Go-http-client/1.1",
}


@pytest.mark.parametrize("tool", sorted(TOOL_UAS))
def test_protected_challenges_command_line_tools(demo_envoy, tool):
    # With Accept-Language, so the user agent alone is what gives it away.
    headers = {"User-Agent": TOOL_UAS[tool], "Accept-Language": "en", **JSON}
    assert_challenge(get(demo_envoy, "/protected/report", headers=headers))


def test_protected_challenges_a_browser_without_accept_language(demo_envoy):
    headers = {k: v for k, v in BROWSER_HEADERS.items() if k != "Accept-Language"}
    assert_challenge(get(demo_envoy, "/protected/report", headers={**headers, **JSON}))


def test_protected_challenges_a_script_with_a_browser_user_agent(demo_envoy):
    # Chrome's user agent and languages, but not the Sec-Fetch-* and client
    # hints Chrome sends to a loopback host (rule inconsistent-browser-headers).
    headers = {"User-Agent": BROWSER_UA, "Accept-Language": "en-GB,en;q=0.9", **JSON}
    assert_challenge(get(demo_envoy, "/protected/report", headers=headers))


@pytest.mark.parametrize("ua", [
    "Mozilla/5.0 (compatible; SomeRandomBot/1.0)",
    "NutchCVS/0.7.1 (Nutch; http://lucene.apache.org/nutch/bot.html; nutch-agent@lucene.apache.org)",
    "x" * 60000,
    "",
])
def test_protected_challenges_bots_the_pattern_list_does_not_name(demo_envoy, ua):
    r = get(demo_envoy, "/protected/report", headers={"User-Agent": ua, "Accept-Language": "en", **JSON})
    assert_challenge(r)


def test_protected_challenges_a_user_agent_of_raw_bytes(demo_envoy):
    # Not UTF-8: the filter decodes it lossily and the `malformed` rule fires.
    conn = http.client.HTTPConnection("127.0.0.1", demo_envoy.port, timeout=5)
    try:
        conn.putrequest("GET", "/protected/report")
        conn.putheader("User-Agent", b"Mozilla/5.0 \xff\xfe\xfd bot")
        conn.putheader("Accept", "application/json")
        conn.putheader("Accept-Language", "en")
        conn.putheader("X-Forwarded-For", next_client_ip())
        conn.endheaders()
        r = conn.getresponse()
        body = json.loads(r.read())
        assert r.status == 403, body
        assert body["action"] == "challenge"
    finally:
        conn.close()


def test_protected_allows_a_normal_browser(demo_envoy):
    r = get(demo_envoy, "/protected/report", headers={**BROWSER_HEADERS, **JSON})
    assert upstream_saw(r)["x-palisade-action"] == "allow"


# --- crawlers --------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/public/page", "/protected/report", "/login", "/api/items", "/other"])
def test_fake_googlebot_is_blocked_everywhere(demo_envoy, path):
    r = get(demo_envoy, path, ip=OUTSIDE_GOOGLE,
            headers={"User-Agent": GOOGLEBOT_UA, "Accept-Language": "en", **JSON})
    assert_blocked(r)


def test_fake_googlebot_gets_the_html_block_page(demo_envoy):
    r = get(demo_envoy, "/", ip=OUTSIDE_GOOGLE, headers={"User-Agent": GOOGLEBOT_UA})
    assert r.status_code == 403
    assert DEFAULT_BLOCK_BODY in r.text


@pytest.mark.parametrize("path", ["/", "/public/page", "/protected/report"])
def test_real_googlebot_is_allowed_and_marked_verified(demo_envoy, path):
    r = get(demo_envoy, path, ip=google_crawler_ip(), headers={"User-Agent": GOOGLEBOT_UA, **JSON})
    seen = upstream_saw(r)
    assert seen["x-palisade-action"] == "allow"
    client = [part.strip() for part in seen["x-palisade-client"].split(";")]
    assert client == ["class=search_engine", "name=googlebot", "verified"]


# --- X-Forwarded-For: only the trusted hop counts --------------------------

def test_spoofed_google_address_left_of_the_trusted_hop_is_ignored(demo_envoy):
    headers = {"User-Agent": GOOGLEBOT_UA, **JSON}
    # The client wrote a Google address; the trusted proxy appended the real one.
    r = get(demo_envoy, "/", ip=f"{google_crawler_ip()}, {OUTSIDE_GOOGLE}", headers=headers)
    assert_blocked(r)
    # And the other way round: the rightmost entry is a Google address.
    r = get(demo_envoy, "/", ip=f"{OUTSIDE_GOOGLE}, {google_crawler_ip()}", headers=headers)
    assert "verified" in upstream_saw(r)["x-palisade-client"]


def test_spoofed_entries_do_not_escape_the_rate_limit(demo_envoy):
    client = next_client_ip()
    exhaust(demo_envoy, client)
    for spoofed in ["1.2.3.4", f"{next_client_ip()}, 5.6.7.8", google_crawler_ip()]:
        r = get(demo_envoy, "/api/items", ip=f"{spoofed}, {client}", headers=BROWSER_HEADERS)
        assert r.status_code == 429
    # The limited address written by the client, left of a new real one, is not the client.
    r = get(demo_envoy, "/api/items", ip=f"{client}, {next_client_ip()}", headers=BROWSER_HEADERS)
    assert r.status_code == 200


# --- monitor ---------------------------------------------------------------

def test_suspicious_request_on_the_default_route_is_monitored(demo_envoy):
    ip = next_client_ip()
    r = get(demo_envoy, "/catalogue/item-42", ip=ip, headers={"User-Agent": "curl/8.5.0", **JSON})
    seen = upstream_saw(r)
    assert seen["x-palisade-action"] == "monitor"
    assert seen["x-palisade-score"] == "50"
    line = wait_for_log(demo_envoy, f"client={ip}")
    assert re.search(
        r"palisade: monitor GET /catalogue/item-42 route=default score=50 "
        rf"rules=\[tool-or-no-accept-language\] client={re.escape(ip)}$", line), line


def test_monitor_route_is_a_dry_run(echo_upstream):
    policy = policy_json()
    admin = next(r for r in policy["routes"] if r["name"] == "admin")
    admin["action"] = "monitor"
    with start_envoy(policy, echo_upstream) as envoy:
        ip = next_client_ip()
        r = get(envoy, "/admin/users", ip=ip, headers={**BROWSER_HEADERS, **JSON})
        seen = upstream_saw(r)
        assert seen["x-palisade-action"] == "monitor"
        line = wait_for_log(envoy, f"client={ip}")
        assert "palisade: monitor GET /admin/users route=admin score=0 rules=[]" in line
        # A rule's block still blocks on a monitored route (with the route's block body).
        r = get(envoy, "/admin/users", ip=OUTSIDE_GOOGLE, headers={"User-Agent": GOOGLEBOT_UA, **JSON})
        assert_blocked(r, ADMIN_BODY)
        assert envoy.stats()["wasmcustom.palisade.requests.monitor"] == 1


# --- metrics ---------------------------------------------------------------

def prom_name(stat):
    """wasmcustom.palisade.rule.x-y.fired -> palisade_rule_x_y_fired{} (Envoy's Prometheus form)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", stat.removeprefix("wasmcustom.")) + "{}"


def test_metrics_count_actions_routes_rules_challenges_and_token_rejections(demo_envoy):
    before = demo_envoy.stats()
    browser = {**BROWSER_HEADERS, **JSON}
    get(demo_envoy, "/public/", headers=browser)                                         # allow
    get(demo_envoy, "/admin/x", headers=browser)                                         # block
    get(demo_envoy, "/", ip=OUTSIDE_GOOGLE, headers={"User-Agent": GOOGLEBOT_UA})         # block (rule)
    get(demo_envoy, "/other", headers={"User-Agent": "curl/8.5.0"})                      # monitor
    challenge = get(demo_envoy, "/protected/x", headers={"User-Agent": "curl/8.5.0", **JSON}).json()
    exhaust(demo_envoy, next_client_ip())                                                # rate_limited
    # A failed and a bad-signature token.
    requests.post(demo_envoy.url + "/.palisade/verify", timeout=10,
                  json={"data": challenge["challenge"]["data"] + "x", "nonce": "1"})
    get(demo_envoy, "/protected/x", headers={"User-Agent": "curl/8.5.0", "X-Palisade-Token": "AQEB" + "A" * 86})
    after = demo_envoy.stats()

    def delta(name):
        return after.get(f"wasmcustom.palisade.{name}", 0) - before.get(f"wasmcustom.palisade.{name}", 0)

    assert delta("requests.allow") >= 1
    assert delta("requests.block") >= 2
    assert delta("requests.monitor") >= 1
    assert delta("requests.challenge") >= 2
    assert delta("requests.rate_limited") >= 1
    assert delta("rate_limited") == delta("requests.rate_limited")
    assert delta("challenge.issued") == delta("requests.challenge")
    assert delta("challenge.failed") >= 1
    assert delta("challenge.failed.ticket_invalid") >= 1
    assert delta("route.public.requests") >= 2
    assert delta("route.admin.requests") >= 1
    assert delta("route.protected.requests") >= 2
    assert delta("route.api.requests") >= 2
    assert delta("route.default.requests") >= 1
    assert delta("rule.spoofed-crawler.fired") >= 1
    assert delta("rule.tool-or-no-accept-language.fired") >= 3
    assert delta("token.rejected.malformed") + delta("token.rejected.bad_signature") >= 1
    assert "wasmcustom.palisade.challenge.passed" in after
    assert "wasmcustom.palisade.config_errors" in after

    # The same counters on the Prometheus page (no traffic in between).
    prom = prometheus_stats(demo_envoy)
    names = [n for n in after if n.startswith("wasmcustom.palisade.")]
    assert len(names) > 30
    for name in names:
        assert prom.get(prom_name(name)) == after[name], name
