"""Crawler hints through real Envoy and the real companion: a challenged
crawler whose address is verified (or a link-preview fetcher) is sent to
the companion's page, which carries the real page's title, description and
preview tags, fetched from the upstream once and cached, and never its
body. A spoofed crawler and a person get the plain challenge."""
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urljoin

import pytest
import requests

from conftest import GOOGLEBOT_UA, google_crawler_ip, start_companion, start_envoy

ARTICLE = b"""<!doctype html><html><head><meta charset="utf-8">
<title>Spring sale</title>
<meta name="description" content="Everything half price until Sunday.">
<meta property="og:title" content="Spring sale">
<meta name="twitter:card" content="summary">
</head><body><h1>Members-only price list</h1><p>SECRET-BODY</p></body></html>"""

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
PREVIEW_UA = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"


class Pages(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fetched_by_companion = 0

    def do_GET(self):
        if self.headers.get("user-agent") == "Palisade-crawler-hints":
            type(self).fetched_by_companion += 1
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(ARTICLE)))
        self.end_headers()
        self.wfile.write(ARTICLE)

    def log_message(self, fmt, *args):
        pass


@pytest.fixture(scope="module")
def stack():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    policy = {
        "client": {"source": "x_forwarded_for", "trusted_hops": 1},
        "tokens": {"keys": ["1:hints-e2e-secret-0123456789abcdef01"]},
        "companion": {"health_interval": "1s"},
        "crawlers": {"hints": {"upstream": f"http://127.0.0.1:{port}"}},
        "routes": [{"name": "articles", "match": {"path": "/article/*"}, "action": "challenge_all",
                    "challenge": {"kind": "pow", "difficulty": 1}}],
    }
    try:
        with start_companion(policy) as companion, \
                start_envoy(policy, port, companion=companion) as envoy:
            yield envoy
    finally:
        server.shutdown()
        server.server_close()


def challenge_page(envoy, user_agent, ip, path="/article/1"):
    """What a client gets for `path`: the filter's answer, or the page its
    redirect leads to."""
    headers = {"User-Agent": user_agent, "Accept": "text/html", "X-Forwarded-For": ip}
    r = requests.get(envoy.url + path, headers=headers, allow_redirects=False, timeout=10)
    if r.status_code == 303:
        r = requests.get(urljoin(envoy.url, r.headers["location"]), headers=headers, timeout=10)
    return r


def assert_plain(r):
    assert "og:title" not in r.text and "half price" not in r.text
    assert "SECRET-BODY" not in r.text and "Members-only" not in r.text
    assert 'name="robots" content="noindex"' in r.text


def test_a_verified_crawler_gets_the_pages_head_and_never_its_body(stack):
    r = None
    for _ in range(50):  # until the filter has seen the companion up
        r = challenge_page(stack, GOOGLEBOT_UA, google_crawler_ip())
        if "og:title" in r.text:
            break
        time.sleep(0.1)
    assert r.status_code == 200, r.text
    assert "<title>Spring sale</title>" in r.text
    assert '<meta property="og:title" content="Spring sale">' in r.text
    assert '<meta name="description" content="Everything half price until Sunday.">' in r.text
    assert '<meta name="twitter:card" content="summary">' in r.text
    assert "noindex" not in r.text, "the page stands in for one to index"
    assert "SECRET-BODY" not in r.text and "Members-only" not in r.text
    assert "<h1>Checking your browser" in r.text and 'name="nonce"' in r.text, "still the challenge"


def test_a_link_preview_fetcher_gets_them_from_the_cache(stack):
    before = Pages.fetched_by_companion
    r = challenge_page(stack, PREVIEW_UA, "198.51.100.23")
    assert '<meta property="og:title" content="Spring sale">' in r.text
    assert "SECRET-BODY" not in r.text
    assert Pages.fetched_by_companion == before, "the head was cached"


def test_a_spoofed_crawler_and_a_person_get_the_plain_challenge(stack):
    spoofed = challenge_page(stack, GOOGLEBOT_UA, "203.0.113.7", "/article/2")
    assert spoofed.status_code == 403
    assert_plain(spoofed)
    person = challenge_page(stack, BROWSER_UA, "203.0.113.8", "/article/2")
    assert person.status_code == 403
    assert_plain(person)
