"""The demo policy's basic actions through a real Envoy."""
import requests

BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Accept-Language": "en-GB,en;q=0.9",
}


def test_browser_reaches_the_upstream(demo_envoy):
    r = requests.get(demo_envoy.url + "/", headers=BROWSER)
    assert r.status_code == 200
    assert "Hello from the upstream" in r.text


def test_admin_is_blocked(demo_envoy):
    r = requests.get(demo_envoy.url + "/admin/users", headers=BROWSER)
    assert r.status_code == 403
