"""The challenge API end to end through a real Envoy: the challenge JSON, a
proof of work solved in Python, the verify endpoint (JSON and form), pass
tokens in a cookie, a header and a cookie jar, and every way a ticket or a
token is refused.
"""
import base64
import hashlib
import json
import re
import time
import urllib.parse

import pytest
import requests

from conftest import (
    BROWSER_HEADERS,
    GOOGLEBOT_UA,
    cli,
    leading_zero_bits,
    next_client_ip,
    policy_json,
    solve_pow,
    start_envoy,
    write_policy,
)

CURL = "curl/8.5.0"
JSON = {"Accept": "application/json"}
VERIFY = "/.palisade/verify"
PROTECTED = "/protected/report"
DEMO_BITS = 14  # difficulty 2
BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class Client:
    """One client: an address (sent as X-Forwarded-For) and a user agent."""

    def __init__(self, envoy, ua=CURL, ip=None):
        self.envoy, self.ua, self.ip = envoy, ua, ip or next_client_ip()

    def headers(self, extra=None):
        return {"User-Agent": self.ua, "X-Forwarded-For": self.ip, **(extra or {})}

    def get(self, path, extra=None, **kwargs):
        return requests.get(self.envoy.url + path, headers=self.headers(extra),
                            allow_redirects=False, timeout=10, **kwargs)

    def challenge(self, path=PROTECTED, extra=None):
        r = self.get(path, {**JSON, **(extra or {})})
        assert r.status_code == 403, r.text[:300]
        body = r.json()
        assert body["action"] == "challenge", body
        return body["challenge"]["data"], body["challenge"]["difficulty"]

    def verify(self, data, nonce, extra=None):
        return requests.post(self.envoy.url + VERIFY, json={"data": data, "nonce": nonce},
                             headers=self.headers(extra), allow_redirects=False, timeout=10)

    def token(self, path=PROTECTED):
        data, bits = self.challenge(path)
        r = self.verify(data, solve_pow(data, bits))
        assert r.status_code == 200, r.text
        return r.json()["token"]


def stat(envoy, name):
    return envoy.stats().get(f"wasmcustom.palisade.{name}", 0)


def wrong_nonce(data, bits):
    n = 0
    while leading_zero_bits(hashlib.sha256(f"{data}{n}".encode()).digest()) >= bits:
        n += 1
    return str(n)


def tamper(text, at=None):
    """`text` with one base64url character changed (in the middle by default)."""
    i = len(text) // 2 if at is None else at
    return text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1:]


def assert_rejected(response, reason):
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error"] == reason, body
    assert body["message"]
    assert "set-cookie" not in response.headers


def assert_passes(client, token, how):
    extra = {"Cookie": f"palisade={token}"} if how == "cookie" else {"X-Palisade-Token": token}
    r = client.get(PROTECTED, {**JSON, **extra})
    assert r.status_code == 200, r.text[:300]
    assert r.json()["headers"]["x-palisade-action"] == "allow"


def assert_challenged_again(client, token):
    r = client.get(PROTECTED, {**JSON, "X-Palisade-Token": token})
    assert r.status_code == 403, r.text[:300]
    assert r.json()["action"] == "challenge"


# --- the challenge -----------------------------------------------------------

def test_challenge_json_is_exactly_the_documented_shape(demo_envoy):
    r = Client(demo_envoy).get(PROTECTED, JSON)
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    assert "set-cookie" not in r.headers
    body = r.json()
    data = body["challenge"]["data"]
    assert isinstance(data, str) and BASE64URL.fullmatch(data), data
    assert body == {
        "action": "challenge",
        "challenge": {"kind": "pow", "algorithm": "sha256", "data": data, "difficulty": DEMO_BITS},
        "verify": VERIFY,
    }
    # Type-exact too: difficulty is a JSON number, not a string or a float.
    assert type(body["challenge"]["difficulty"]) is int


def test_a_rule_can_raise_the_difficulty(demo_envoy):
    # The demo's `automation` rule asks headless browsers for difficulty 4.
    ua = BROWSER_HEADERS["User-Agent"].replace("Chrome/", "HeadlessChrome/")
    client = Client(demo_envoy, ua=ua)
    data, bits = client.challenge("/login", {"Accept-Language": "en"})
    assert bits == 18


def test_challenge_page_for_browsers_solves_like_the_api(demo_envoy):
    """The page's hidden form carries the ticket; submitting it as the page's
    script does (a GET: no request body, so it works where the filter cannot
    read one, as under Istio's WasmPlugin) lands on the original page with a
    pass cookie."""
    client = Client(demo_envoy, ua=BROWSER_HEADERS["User-Agent"])
    r = client.get("/login?next=%2Faccount", {**BROWSER_HEADERS, "Accept": "text/html"})
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html")
    data = re.search(r'name="data" value="([^"]+)"', r.text).group(1)
    bits = int(re.search(r'data-bits="(\d+)"', r.text).group(1))
    assert 'action="/.palisade/verify"' in r.text and 'method="GET"' in r.text
    assert bits == DEMO_BITS
    r = requests.get(demo_envoy.url + VERIFY, params={"data": data, "nonce": solve_pow(data, bits)},
                     headers=client.headers(), allow_redirects=False, timeout=10)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Faccount"
    assert r.headers["set-cookie"].startswith("palisade=")


# --- solving and passing -------------------------------------------------------

def test_solution_gives_a_token_that_passes_by_cookie_and_by_header(demo_envoy):
    client = Client(demo_envoy)
    passed = stat(demo_envoy, "challenge.passed")
    data, bits = client.challenge()
    nonce = solve_pow(data, bits)
    assert leading_zero_bits(hashlib.sha256((data + nonce).encode()).digest()) >= bits
    now = time.time()
    r = client.verify(data, nonce)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"token", "expires"}
    token = body["token"]
    assert BASE64URL.fullmatch(token)
    assert abs(body["expires"] - (now + 3600)) <= 5  # tokens.ttl: 1h
    cookie = r.headers["set-cookie"]
    assert cookie == f"palisade={token}; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax"
    assert stat(demo_envoy, "challenge.passed") == passed + 1

    assert_passes(client, token, "cookie")
    assert_passes(client, token, "header")
    # The same token also satisfies the (equally difficult) login challenge.
    r = client.get("/login", {**JSON, "X-Palisade-Token": token})
    assert r.status_code == 200


def test_a_cookie_jar_session_passes_after_solving(demo_envoy):
    client = Client(demo_envoy)
    with requests.Session() as s:
        s.headers.update(client.headers(JSON))
        r = s.get(demo_envoy.url + PROTECTED, timeout=10)
        assert r.status_code == 403
        challenge = r.json()["challenge"]
        nonce = solve_pow(challenge["data"], challenge["difficulty"])
        r = s.post(demo_envoy.url + r.json()["verify"], json={"data": challenge["data"], "nonce": nonce},
                   timeout=10)
        assert r.status_code == 200
        assert s.cookies.get("palisade") == r.json()["token"]
        r = s.get(demo_envoy.url + PROTECTED, timeout=10)
        assert r.status_code == 200
        assert r.json()["headers"]["x-palisade-action"] == "allow"
        assert "palisade=" in r.json()["headers"]["cookie"]


def test_numeric_nonce_in_json_is_accepted(demo_envoy):
    client = Client(demo_envoy)
    data, bits = client.challenge()
    r = requests.post(demo_envoy.url + VERIFY, timeout=10, headers=client.headers(),
                      data=json.dumps({"data": data, "nonce": int(solve_pow(data, bits))}))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("extra", [
    {"return": "https://evil.example/"},
    {"next": "//evil.example/steal"},
    {"return": "https://evil.example/", "next": "/\\evil.example", "redirect": "javascript:alert(1)"},
])
def test_form_post_redirects_to_the_original_path_only(demo_envoy, extra):
    client = Client(demo_envoy)
    path = "/protected/report?x=1&next=https%3A%2F%2Fevil.example"
    data, bits = client.challenge(path)
    form = {"data": data, "nonce": solve_pow(data, bits), **extra}
    r = requests.post(demo_envoy.url + VERIFY, data=form, headers=client.headers(),
                      allow_redirects=False, timeout=10)
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location == path
    assert urllib.parse.urlsplit(location).netloc == ""
    token = re.match(r"palisade=([^;]+);", r.headers["set-cookie"]).group(1)
    # Following the redirect with the cookie reaches the upstream.
    r = client.get(location, {**JSON, "Cookie": f"palisade={token}"})
    assert r.status_code == 200
    assert r.json()["path"] == path


def test_form_post_with_fields_in_any_order_and_encoding(demo_envoy):
    client = Client(demo_envoy)
    data, bits = client.challenge("/login")
    body = f"next=%2F%2Fevil.example&nonce={solve_pow(data, bits)}&data={urllib.parse.quote(data)}"
    r = requests.post(demo_envoy.url + VERIFY, data=body, allow_redirects=False, timeout=10,
                      headers=client.headers({"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}))
    assert r.status_code == 303
    assert r.headers["location"] == "/login"


# --- the verify endpoint refusing ----------------------------------------------

def test_wrong_nonce_is_refused(demo_envoy):
    client = Client(demo_envoy)
    failed = stat(demo_envoy, "challenge.failed.wrong_solution")
    data, bits = client.challenge()
    assert_rejected(client.verify(data, wrong_nonce(data, bits)), "wrong_solution")
    assert_rejected(client.verify(data, "12ab"), "bad_nonce")
    assert_rejected(client.verify(data, "1" * 21), "bad_nonce")
    assert stat(demo_envoy, "challenge.failed.wrong_solution") == failed + 1
    # The ticket is still good for the right answer.
    assert client.verify(data, solve_pow(data, bits)).status_code == 200


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_tampered_ticket_is_refused(demo_envoy, where):
    client = Client(demo_envoy)
    data, bits = client.challenge()
    at = {"start": 3, "middle": None, "end": len(data) - 2}[where]
    bad = tamper(data, at)
    assert_rejected(client.verify(bad, solve_pow(bad, bits)), "ticket_invalid")


def test_ticket_with_a_forged_path_is_refused(demo_envoy):
    """Rewriting the return path inside the ticket breaks its MAC."""
    client = Client(demo_envoy)
    data, bits = client.challenge("/protected/aaaa")
    raw = bytearray(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    at = raw.find(b"/protected/aaaa")
    assert at > 0
    raw[at:at + 15] = b"//evil.example/"
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    assert_rejected(client.verify(forged, solve_pow(forged, bits)), "ticket_invalid")


@pytest.mark.parametrize("other", ["address", "user_agent"])
def test_ticket_solved_by_another_client_is_refused(demo_envoy, other):
    client = Client(demo_envoy)
    data, bits = client.challenge()
    nonce = solve_pow(data, bits)
    thief = Client(demo_envoy, ip=next_client_ip()) if other == "address" else \
        Client(demo_envoy, ua="curl/8.6.0", ip=client.ip)
    assert_rejected(thief.verify(data, nonce), "ticket_other_client")
    assert client.verify(data, nonce).status_code == 200


def test_a_pass_token_is_not_a_ticket(demo_envoy):
    client = Client(demo_envoy)
    token = client.token()
    assert_rejected(client.verify(token, solve_pow(token, DEMO_BITS)), "ticket_invalid")


@pytest.mark.parametrize("method,body,headers,status,error", [
    ("POST", b"not json", {"Content-Type": "application/json"}, 400, "bad_request"),
    ("POST", b'{"data": "x"}', {"Content-Type": "application/json"}, 400, "bad_request"),
    ("POST", b"data=x", {"Content-Type": "application/x-www-form-urlencoded"}, 400, "bad_request"),
    ("POST", b'{"data":"' + b"A" * 9000 + b'","nonce":"1"}', {"Content-Type": "application/json"}, 413, "too_large"),
    ("GET", None, {}, 400, "bad_request"),
    ("GET?data=x", None, {}, 400, "bad_request"),
    ("PUT", b"data=x", {}, 405, "method_not_allowed"),
])
def test_malformed_verify_requests(demo_envoy, method, body, headers, status, error):
    method, _, query = method.partition("?")
    r = requests.request(method, demo_envoy.url + VERIFY + (f"?{query}" if query else ""),
                         data=body, timeout=10,
                         headers={"User-Agent": CURL, "X-Forwarded-For": next_client_ip(), **headers})
    assert r.status_code == status, r.text[:300]
    assert r.json()["error"] == error
    if status == 405:
        assert r.headers["allow"] == "GET, POST"


def test_other_paths_under_the_prefix_wait_for_the_companion(demo_envoy):
    """With the companion down (none runs here), the filter answers the
    prefix itself: nothing under it reaches the upstream."""
    r = requests.get(demo_envoy.url + "/.palisade/anything", timeout=10,
                     headers={**BROWSER_HEADERS, "X-Forwarded-For": next_client_ip()})
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"] == "companion_unavailable"


# --- pass tokens refused -------------------------------------------------------

def demo_policy_with_key(tmp_path, key):
    policy = policy_json()
    policy["tokens"]["keys"] = [key]
    policy["tokens"].pop("keys_env", None)
    return write_policy(policy, tmp_path)


def cli_token(config, client, env=None, level=5):
    return cli("token", "sign", "--config", config, "--ip", client.ip, "--user-agent", client.ua,
               "--level", level, env=env).stdout.strip()


def check_rejection(envoy, client, token, reason):
    before = stat(envoy, f"token.rejected.{reason}")
    assert_challenged_again(client, token)
    r = client.get(PROTECTED, {**JSON, "Cookie": f"palisade={token}"})
    assert r.status_code == 403
    assert stat(envoy, f"token.rejected.{reason}") == before + 2


def test_cli_token_with_the_demo_key_passes(demo_envoy, tmp_path):
    client = Client(demo_envoy)
    token = cli_token(write_policy(policy_json(), tmp_path), client, env={"PALISADE_KEYS": None})
    assert_passes(client, token, "header")


def test_tampered_token_is_refused(demo_envoy):
    client = Client(demo_envoy)
    token = client.token()
    check_rejection(demo_envoy, client, tamper(token), "bad_signature")
    check_rejection(demo_envoy, client, token[:-4], "bad_signature")  # the tag no longer fits
    check_rejection(demo_envoy, client, "not.a.token", "malformed")
    assert_passes(client, token, "header")


def test_token_signed_with_another_key_is_refused(demo_envoy, tmp_path):
    client = Client(demo_envoy)
    same_id = cli_token(demo_policy_with_key(tmp_path, "1:another-secret-of-enough-length"), client)
    check_rejection(demo_envoy, client, same_id, "bad_signature")
    other_id = cli_token(demo_policy_with_key(tmp_path, "2:demo-only-secret-change-me-0123456789"), client)
    check_rejection(demo_envoy, client, other_id, "unknown_key")


def test_token_from_another_address_is_refused(demo_envoy):
    owner = Client(demo_envoy)
    token = owner.token()
    check_rejection(demo_envoy, Client(demo_envoy, ip=next_client_ip()), token, "wrong_client_ip")


def test_token_from_another_user_agent_is_refused(demo_envoy):
    owner = Client(demo_envoy)
    token = owner.token()
    check_rejection(demo_envoy, Client(demo_envoy, ua="Wget/1.21.4", ip=owner.ip), token, "wrong_user_agent")


def test_token_below_the_required_level_does_not_pass(demo_envoy, tmp_path):
    client = Client(demo_envoy)
    token = cli_token(write_policy(policy_json(), tmp_path), client, env={"PALISADE_KEYS": None}, level=1)
    assert_challenged_again(client, token)


def test_a_valid_token_never_lifts_a_block(demo_envoy, tmp_path):
    client = Client(demo_envoy)
    token = client.token()
    for extra in [{"X-Palisade-Token": token}, {"Cookie": f"palisade={token}"}]:
        r = client.get("/admin/", {**JSON, **extra})
        assert r.status_code == 403
        assert r.json()["action"] == "block"
    # Nor for a fake Googlebot holding a token bound to it (level 5).
    fake = Client(demo_envoy, ua=GOOGLEBOT_UA, ip="203.0.113.80")
    token = cli_token(write_policy(policy_json(), tmp_path), fake, env={"PALISADE_KEYS": None})
    r = fake.get("/protected/x", {**JSON, "X-Palisade-Token": token})
    assert r.status_code == 403
    assert r.json()["action"] == "block"


# --- expiry (a policy with one-second lifetimes) -------------------------------

@pytest.fixture(scope="module")
def expired(echo_upstream):
    """Envoy with `challenge.ticket_ttl: 1` and `tokens.ttl: 1`; a solved
    ticket and a token, checked fresh, then left to expire."""
    policy = policy_json()
    policy["challenge"]["ticket_ttl"] = 1
    policy["tokens"]["ttl"] = 1
    with start_envoy(policy, echo_upstream) as envoy:
        # Start early in a second, so "fresh" checks happen in the same second.
        time.sleep(1.02 - time.time() % 1)
        client = Client(envoy)
        token = client.token()
        assert_passes(client, token, "header")
        data, bits = client.challenge()
        nonce = solve_pow(data, bits)
        time.sleep(2.2)
        yield envoy, client, token, data, nonce


def test_expired_ticket_is_refused(expired):
    envoy, client, _, data, nonce = expired
    assert_rejected(client.verify(data, nonce), "ticket_expired")
    assert stat(envoy, "challenge.failed.ticket_expired") >= 1


def test_expired_token_is_refused(expired):
    envoy, client, token, _, _ = expired
    check_rejection(envoy, client, token, "expired")


# --- keys from the VM's environment --------------------------------------------

ENV_KEY = "7:key-from-the-environment-0123456789"


@pytest.fixture(scope="module")
def env_keys(echo_upstream, tmp_path_factory):
    policy = policy_json()
    policy["tokens"].pop("keys")
    policy["tokens"]["keys_env"] = "PALISADE_KEYS"
    path = write_policy(policy, tmp_path_factory.mktemp("env-keys"))
    with start_envoy(policy, echo_upstream, env={"PALISADE_KEYS": ENV_KEY}) as envoy:
        yield envoy, path


def test_keys_from_the_environment_sign_and_verify(env_keys):
    envoy, _ = env_keys
    client = Client(envoy)
    token = client.token()
    assert_passes(client, token, "cookie")


def test_cli_token_with_the_same_environment_key_verifies(env_keys):
    envoy, path = env_keys
    client = Client(envoy)
    token = cli_token(path, client, env={"PALISADE_KEYS": ENV_KEY})
    assert_passes(client, token, "header")
    other = cli_token(path, client, env={"PALISADE_KEYS": "7:a-different-environment-secret"})
    check_rejection(envoy, client, other, "bad_signature")


def test_demo_key_does_not_verify_when_keys_come_from_the_environment(env_keys, tmp_path):
    envoy, _ = env_keys
    client = Client(envoy)
    token = cli_token(write_policy(policy_json(), tmp_path), client, env={"PALISADE_KEYS": None})
    check_rejection(envoy, client, token, "unknown_key")
