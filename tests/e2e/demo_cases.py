"""The demo's behaviours as one table of requests, which every front end of
the demo must answer alike: Envoy with the filter, nginx with the check, and
`palisade explain`. test_parity.py runs it through all three and checks that
it touches every route and rule of envoy/demo-policy.yaml, so a behaviour
added to the demo gets a row here, and so reaches both proxies."""
import html
import json
import re
from dataclasses import dataclass, field

import requests

from conftest import BROWSER_HEADERS, GOOGLEBOT_UA, cli, google_crawler_ip

JSON = {"Accept": "application/json"}
CURL = {"User-Agent": "curl/8.5.0", "Accept": "*/*"}
ANNOTATIONS = ("x-palisade-action", "x-palisade-score", "x-palisade-client")


@dataclass
class Case:
    name: str
    path: str
    # The client address, as the demo's pretend load balancer appends it to
    # X-Forwarded-For (client.trusted_hops: 1). "fresh": one unused address.
    client: str = "fresh"
    method: str = "GET"
    headers: dict = field(default_factory=dict)
    # What the client wrote itself in front of the trusted entry.
    forwarded_by_client: str = ""
    # Sent this many times in a row (rate limits); the last answer counts.
    repeat: int = 1
    body: bytes = b""


CASES = [
    Case("allow a browser", "/"),
    Case("allow a public page", "/public/about"),
    Case("health checks pass", "/healthz", headers=CURL),
    Case("HEAD is decided as GET", "/", method="HEAD"),
    Case("block the admin area", "/admin/users"),
    Case("block the admin area, JSON", "/admin/", headers=JSON),
    Case("api within its limit", "/api/items", repeat=10),
    Case("api past 10/minute + burst: 429", "/api/items", repeat=11),
    Case("api past its limit, JSON", "/api/items", repeat=11, headers=JSON),
    Case("public api has no limit", "/api/public/items", repeat=11),
    Case("login: proof of work", "/login"),
    Case("login: proof of work, JSON", "/login?next=/a", headers=JSON),
    Case("login POST: proof of work", "/login", method="POST",
         headers={"Content-Type": "application/x-www-form-urlencoded"}, body=b"user=a"),
    Case("protected: a tool is challenged", "/protected/report", headers=CURL),
    Case("protected: a browser passes", "/protected/report"),
    Case("search with q is limited per route", "/search?q=palisade", repeat=7),
    Case("text challenge: 303 to the companion", "/demo/text"),
    Case("text challenge, JSON", "/demo/text", headers=JSON),
    Case("text challenge on POST: a page", "/demo/text", method="POST",
         headers={"Content-Type": "application/x-www-form-urlencoded"}, body=b"a=b"),
    Case("one-click challenge", "/demo/one-click"),
    Case("grid challenge", "/demo/grid"),
    Case("audio challenge", "/demo/audio"),
    Case("chart challenge", "/demo/chart"),
    Case("pow demo", "/demo/pow"),
    Case("altcha challenge", "/demo/altcha"),
    Case("spoofed Googlebot blocked", "/", headers={"User-Agent": GOOGLEBOT_UA}),
    Case("verified Googlebot allowed", "/", client="google", headers={"User-Agent": GOOGLEBOT_UA}),
    Case("denylisted network blocked", "/", client="198.51.100.7"),
    Case("Google's network in the US is monitored", "/public/x", client="8.8.8.8"),
    Case("office network allowed", "/protected/x", client="192.0.2.44", headers=CURL),
    Case("office uptime monitor", "/", client="192.0.2.45",
         headers={"User-Agent": "AcmeUptime/2.1", "Accept": "*/*"}),
    Case("X-Forwarded-For beyond the trusted hop ignored", "/", forwarded_by_client="198.51.100.7"),
    Case("automation is challenged harder", "/public/x",
         headers={"User-Agent": "Mozilla/5.0 HeadlessChrome/120.0.0.0", "Accept": "*/*"}),
    Case("an unidentified bot", "/public/x",
         headers={"User-Agent": "FooFetcher/0.3 (+https://foo.example/bot)", "Accept": "*/*"}),
    Case("AI training crawler", "/public/x", headers={"User-Agent": "GPTBot/1.1", "Accept": "*/*"}),
    Case("probing for files", "/wp-login.php", headers=CURL),
    Case("debug parameter", "/public/x?debug=1"),
    Case("scripted login", "/login", method="POST",
         headers={"User-Agent": "python-requests/2.31", "Content-Type": "application/json"}, body=b"{}"),
    Case("browser without fetch metadata", "/protected/x",
         headers={"Sec-Fetch-Site": None, "Sec-Fetch-Mode": None, "sec-ch-ua": None}),
]


def client_address(case, fresh):
    if case.client == "fresh":
        return fresh()
    if case.client == "google":
        return google_crawler_ip()
    return case.client


def headers_of(case, address):
    headers = {**BROWSER_HEADERS, **case.headers}
    headers = {k: v for k, v in headers.items() if v is not None}
    forwarded = f"{case.forwarded_by_client}, {address}" if case.forwarded_by_client else address
    headers["X-Forwarded-For"] = forwarded
    return headers


def send(base_url, case, address):
    """Sends `case` (repeated as it says) to a proxy; returns the last response."""
    headers = headers_of(case, address)
    with requests.Session() as s:
        for _ in range(case.repeat):
            r = s.request(case.method, base_url + case.path, headers=headers, data=case.body or None,
                          allow_redirects=False, timeout=10)
    return r


def outcome(r):
    """What parity compares: the status, the action and the annotations the
    upstream saw, or the refusal's shape (JSON fields, redirect target,
    content type), without what differs per response (tickets, ids)."""
    seen = {"status": r.status_code}
    if r.status_code == 200 and r.request.method == "HEAD":
        seen["upstream"] = True
        return seen
    if r.status_code == 200 and r.headers.get("content-type", "").startswith("application/json"):
        echo = r.json()
        seen.update({k: echo["headers"].get(k) for k in ANNOTATIONS})
        seen["body"] = echo["body"]
        return seen
    if r.status_code == 200 and "Hello from the upstream" in r.text:
        rows = dict(re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td></tr>", r.text))
        seen.update({k: html.unescape(rows[k]) if k in rows else None for k in ANNOTATIONS})
        return seen
    for name in ("location", "retry-after", "ratelimit-policy", "cache-control"):
        if name in r.headers:
            seen[name] = r.headers[name]
    if r.content:
        seen["content-type"] = r.headers.get("content-type", "").split(";")[0]
    if seen.get("content-type") == "application/json":
        body = r.json()
        seen["action"] = body.get("action")
        challenge = body.get("challenge") or {}
        seen["challenge"] = {k: challenge.get(k) for k in ("kind", "difficulty", "url", "algorithm")}
        seen["message"] = body.get("message")
    elif r.request.method != "HEAD":
        for marker in ("Checking your browser", "One more step", "Access denied", "Too many requests",
                       "admin area"):
            if marker in r.text:
                seen.setdefault("markers", []).append(marker)
    return seen


def explain(policy_path, case, address):
    """`palisade explain --json` for `case` (its last repetition is not
    counted: explain keeps no limits)."""
    args = ["explain", "--config", policy_path, "--method", case.method, "--path", case.path,
            "--ip", "127.0.0.1", "--host", "127.0.0.1", "--json"]
    for name, value in headers_of(case, address).items():
        args += ["-H", f"{name}: {value}"]
    return json.loads(cli(*args).stdout)


def action_of(seen):
    """The decision's action, read back from an outcome."""
    if seen["status"] == 200:
        return seen.get("x-palisade-action", "allow") if not seen.get("upstream") else "allow"
    if seen.get("action"):
        return seen["action"]
    if seen["status"] == 429:
        return "rate_limited"
    markers = seen.get("markers", [])
    if seen["status"] == 303 or {"Checking your browser", "One more step"} & set(markers):
        return "challenge"
    if seen["status"] == 403 and seen.get("markers") and "Access denied" in seen["markers"][0]:
        return "block"
    return f"status {seen['status']}"
