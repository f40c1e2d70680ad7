"""ALTCHA: the companion's own challenges in ALTCHA's format, solved by the
real widget (npm `altcha`, vendored in datasets/altcha/) in headless
Chromium through Envoy's `/demo/altcha` route, and by a script through the
Challenge API: signature, expiry, single use, tampering.
"""
import base64
import hashlib
import json
from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import (BROWSER_UA, CHROMEDRIVER, CHROMIUM, ROOT, assert_accessible, cli, next_client_ip,
                      pass_cookie, policy_without_scoring, start_companion, start_envoy,
                      wait_for_path, wait_for_upstream)

JSON = {"Accept": "application/json", "User-Agent": BROWSER_UA}
ARTIFACTS = ROOT / "target" / "e2e"


@pytest.fixture(scope="module")
def companion():
    with start_companion(policy_without_scoring()) as c:
        yield c


def issue(companion, ip):
    r = requests.get(companion.public + "/.palisade/challenge",
                     params={"kind": "altcha", "return": "/after"},
                     headers={**JSON, "X-Palisade-Client-Ip": ip}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def solve(challenge):
    """What the widget does: tries numbers until SHA-256(salt + n) matches."""
    c = challenge["challenge"]
    for n in range(c["maxnumber"] + 1):
        if hashlib.sha256(f"{c['salt']}{n}".encode()).hexdigest() == c["challenge"]:
            return {"algorithm": c["algorithm"], "challenge": c["challenge"], "number": n,
                    "salt": c["salt"], "signature": c["signature"], "took": 5}
    raise AssertionError("no number solves the challenge")


def payload(solution):
    return base64.b64encode(json.dumps(solution).encode()).decode()


def submit(companion, challenge, text, ip):
    return requests.post(companion.public + challenge["verify"], json={"response": text},
                         headers={**JSON, "X-Palisade-Client-Ip": ip}, timeout=10)


def test_the_challenge_is_in_altchas_format(companion):
    c = issue(companion, next_client_ip())
    ch = c["challenge"]
    assert ch["algorithm"] == "SHA-256" and c["response_field"] == "altcha"
    assert set(ch) == {"algorithm", "challenge", "maxnumber", "salt", "signature"}
    assert "?expires=" in ch["salt"] and int(ch["salt"].split("?expires=")[1]) == c["expires"]
    assert len(ch["challenge"]) == 64 and len(ch["signature"]) == 64


def test_a_solution_passes_once_and_its_token_verifies(companion):
    ip = next_client_ip()
    c = issue(companion, ip)
    text = payload(solve(c))
    r = submit(companion, c, text, ip)
    assert r.status_code == 200, r.text
    out = cli("token", "verify", "--config", companion.policy_path, r.json()["token"], "--ip", ip,
              "--user-agent", BROWSER_UA, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    again = submit(companion, c, text, ip)
    assert again.status_code == 403 and again.json()["error"] == "used"


@pytest.mark.parametrize("tamper", ["number", "signature", "salt", "challenge", "garbage"])
def test_a_tampered_solution_is_refused(companion, tamper):
    ip = next_client_ip()
    c = issue(companion, ip)
    s = solve(c)
    if tamper == "number":
        s["number"] += 1
    elif tamper == "signature":
        s["signature"] = "00" * 32
    elif tamper == "salt":
        # Moving the number's first digit into the salt: the field splice
        # of ALTCHA's 2025 advisory.
        digits = str(s["number"])
        s["salt"], s["number"] = s["salt"] + digits[0], int(digits[1:] or 0)
    elif tamper == "challenge":
        s["challenge"] = hashlib.sha256(b"other").hexdigest()
    text = "not base64 json" if tamper == "garbage" else payload(s)
    r = submit(companion, c, text, ip)
    assert r.status_code == 403 and r.json()["error"] == "wrong_answer", r.text
    # Refused answers did not burn the challenge.
    assert submit(companion, c, payload(solve(c)), ip).status_code == 200


def test_another_challenges_solution_is_refused(companion):
    ip = next_client_ip()
    first, second = issue(companion, ip), issue(companion, ip)
    r = submit(companion, second, payload(solve(first)), ip)
    assert r.status_code == 403 and r.json()["error"] == "wrong_answer"


def test_the_widget_is_served_with_its_licence_in_the_repo(companion):
    r = requests.get(companion.public + "/.palisade/altcha.js", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.content == (ROOT / "datasets" / "altcha" / "altcha.js").read_bytes()
    assert "MIT" in (ROOT / "datasets" / "altcha" / "LICENSE.txt").read_text()


needs_chromium = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="chromium/chromedriver not installed (scripts/install-system-deps.sh)")


def wait_for_the_widget(driver):
    """Waits for the widget to finish its proof of work."""
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "altcha-widget"))
    # The widget runs the proof of work on load and fills its field.
    WebDriverWait(driver, 60).until(lambda d: d.execute_script(
        "var i=document.querySelector('input[name=altcha]');return i&&i.value;"))


def solve_in_browser(driver, screenshot=None):
    """Waits for the widget to finish its proof of work, then submits."""
    wait_for_the_widget(driver)
    if screenshot:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(screenshot))
    driver.find_element(By.CSS_SELECTOR, "button.primary").click()


def solved_count(companion):
    prefix = 'palisade_companion_challenges_solved_total{kind="altcha"} '
    lines = [line for line in companion.metrics().splitlines() if line.startswith(prefix)]
    return int(float(lines[0][len(prefix):])) if lines else 0


@needs_chromium
def test_the_real_widget_solves_it_in_chromium(companion, launch):
    before = solved_count(companion)
    driver = launch()
    driver.get(companion.public + "/.palisade/challenge?kind=altcha&return=/after")
    solve_in_browser(driver)
    wait_for_path(driver, "/after")
    assert pass_cookie(driver)
    assert solved_count(companion) == before + 1


@needs_chromium
def test_the_page_is_accessible(companion, launch):
    """axe-core on the page with the widget in it, once it has solved."""
    driver = launch()
    driver.get(companion.public + "/.palisade/challenge?kind=altcha&return=/after")
    wait_for_the_widget(driver)
    assert_accessible(driver, "altcha")


@needs_chromium
def test_the_demo_route_through_envoy(echo_upstream, launch):
    policy = policy_without_scoring()
    with start_companion(policy) as companion, \
            start_envoy(policy, echo_upstream, companion=companion) as envoy:
        driver = launch()
        driver.get(envoy.url + "/demo/altcha")
        solve_in_browser(driver, screenshot=ARTIFACTS / "companion-altcha.png")
        assert "GET /demo/altcha" in wait_for_upstream(driver)
        assert pass_cookie(driver)
        assert solved_count(companion) == 1
