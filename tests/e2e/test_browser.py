"""A real browser (headless Chromium through chromedriver) against the demo
Envoy: the challenge page's Web Worker solves the proof of work, the form
posts it to /.palisade/verify, and the 303 lands on the page first asked
for, with the pass cookie set.

Headless Chromium says `HeadlessChrome` in its User-Agent, which the demo
policy scores as automation (weight 60: monitor, below the challenge
threshold, but enough for the `challenge` route /protected/* to challenge
it). With a regular Chrome User-Agent and Accept-Language (--lang) the same
browser goes straight into /protected/*.
"""
import time
from pathlib import Path

import pytest
import requests
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import (CHROMEDRIVER, CHROMIUM, ROOT, admin_stats, ordinary_ua, pass_cookie,
                      policy_json, start_envoy, wait_for_upstream)

ARTIFACTS = ROOT / "target" / "e2e"
CHALLENGE_TITLE = "Checking your browser"


pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="chromium/chromedriver not installed (scripts/install-system-deps.sh)",
)


@pytest.fixture
def browser(launch):
    """Headless Chromium as it is (its User-Agent says HeadlessChrome)."""
    return launch()


def challenge_counts(envoy):
    stats = admin_stats(envoy, r"^wasmcustom\.palisade\.challenge\.")
    return {k: stats.get(f"wasmcustom.palisade.challenge.{k}", 0) for k in ("issued", "passed", "failed")}


def delta(before, after):
    return {k: after[k] - before[k] for k in before}


def upstream_annotations(driver):
    """The x-palisade-* request headers the upstream saw (its page lists them)."""
    rows = driver.find_elements(By.CSS_SELECTOR, "table tr")
    return {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text for r in rows}


def test_browser_solves_the_challenge_and_lands_on_the_original_page(demo_envoy, browser):
    before = challenge_counts(demo_envoy)
    target = "/login?next=/account&x=1"
    browser.get(demo_envoy.url + target)
    text = wait_for_upstream(browser)

    # The original path and query, as the upstream saw them.
    assert browser.current_url == demo_envoy.url + target
    assert f"GET {target}" in text
    assert upstream_annotations(browser)["x-palisade-action"] == "allow"
    # One challenge, solved once: no loop.
    assert delta(before, challenge_counts(demo_envoy)) == {"issued": 1, "passed": 1, "failed": 0}

    cookie = pass_cookie(browser)
    assert cookie is not None, browser.get_cookies()
    assert cookie["httpOnly"] is True
    assert cookie["path"] == "/" and cookie["sameSite"] == "Lax" and cookie["secure"] is False
    assert "palisade=" not in browser.execute_script("return document.cookie")

    # The token is reused: another challenged path goes straight through.
    browser.get(demo_envoy.url + "/login/second?a=b")
    wait_for_upstream(browser, timeout=5)
    assert browser.current_url == demo_envoy.url + "/login/second?a=b"
    assert browser.title != CHALLENGE_TITLE
    assert delta(before, challenge_counts(demo_envoy)) == {"issued": 1, "passed": 1, "failed": 0}


def test_headless_chromium_is_challenged_on_protected_and_passes(demo_envoy, browser):
    # `/protected/*` challenges suspicious clients; HeadlessChrome scores 60
    # (automation), which a `challenge` route turns into a challenge (the
    # automation rule's difficulty 4: 18 bits). It solves it and gets in.
    before = challenge_counts(demo_envoy)
    browser.get(demo_envoy.url + "/protected/x?y=2")
    text = wait_for_upstream(browser, timeout=60)
    assert browser.current_url == demo_envoy.url + "/protected/x?y=2"
    assert "GET /protected/x?y=2" in text
    annotations = upstream_annotations(browser)
    assert annotations["x-palisade-action"] == "allow", annotations
    assert "class=automation" in annotations["x-palisade-client"], annotations
    assert pass_cookie(browser)["httpOnly"] is True
    assert delta(before, challenge_counts(demo_envoy)) == {"issued": 1, "passed": 1, "failed": 0}


def test_browser_with_ordinary_user_agent_lands_directly_on_protected(demo_envoy, launch):
    # The same Chromium, presenting a regular Chrome User-Agent, with
    # Accept-Language (--lang): nothing suspicious, so no challenge at all.
    browser = launch(user_agent=ordinary_ua())
    assert browser.execute_script("return navigator.languages")[0] == "en-US"
    before = challenge_counts(demo_envoy)
    browser.get(demo_envoy.url + "/protected/x?y=2")
    text = wait_for_upstream(browser, timeout=5)
    assert browser.current_url == demo_envoy.url + "/protected/x?y=2"
    assert "GET /protected/x?y=2" in text
    annotations = upstream_annotations(browser)
    assert annotations["x-palisade-action"] == "allow", annotations
    assert annotations["x-palisade-score"] == "0", annotations
    assert pass_cookie(browser) is None
    assert delta(before, challenge_counts(demo_envoy)) == {"issued": 0, "passed": 0, "failed": 0}
    # /login challenges everyone, this browser too.
    browser.get(demo_envoy.url + "/login")
    wait_for_upstream(browser)
    assert pass_cookie(browser) is not None
    assert delta(before, challenge_counts(demo_envoy)) == {"issued": 1, "passed": 1, "failed": 0}


def test_parallel_requests_after_passing_do_not_loop(demo_envoy, browser):
    browser.get(demo_envoy.url + "/login")
    wait_for_upstream(browser)
    before = challenge_counts(demo_envoy)
    paths = [f"/login/p{i}?n={i}" for i in range(8)] + [f"/protected/p{i}" for i in range(4)]
    results = browser.execute_async_script(
        """
        const [paths, done] = arguments;
        Promise.all(paths.map(p => fetch(p, {redirect: "manual"}).then(async r =>
            [p, r.status, (await r.text()).includes('id=upstream')])))
          .then(done, e => done(String(e)));
        """,
        paths,
    )
    assert isinstance(results, list), results
    assert [(p, 200, True) for p in paths] == [tuple(r) for r in results]
    # Subresource-style requests: images and a frame, loaded together.
    browser.execute_script(
        """
        for (let i = 0; i < 6; i++) {
          const img = new Image(); img.src = '/login/img' + i + '.png'; document.body.appendChild(img);
        }
        const f = document.createElement('iframe'); f.id = 'frame'; f.src = '/login/frame?f=1';
        document.body.appendChild(f);
        """
    )
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(
        "const f = document.getElementById('frame');"
        "return f.contentDocument && f.contentDocument.getElementById('upstream') !== null"))
    time.sleep(0.5)  # the images finish too
    assert delta(before, challenge_counts(demo_envoy)) == {"issued": 0, "passed": 0, "failed": 0}


@pytest.fixture(scope="module")
def hard_envoy(echo_upstream):
    """The demo policy with the hardest puzzle (difficulty 5: 20 bits, about
    a million hashes) on /login, also for automation (headless Chromium is
    scored as automation, whose rule would otherwise set difficulty 4)."""
    policy = policy_json()
    next(r for r in policy["routes"] if r["name"] == "login")["challenge"]["difficulty"] = 5
    next(r for r in policy["rules"] if r["name"] == "automation")["challenge"]["difficulty"] = 5
    with start_envoy(policy, echo_upstream) as envoy:
        yield envoy


def test_challenge_page_shows_progress_while_solving(hard_envoy, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "challenge-page.png"
    # The puzzle is random: a lucky browser can solve it before the
    # screenshot. Then start over without the cookie (a new puzzle).
    for attempt in range(8):
        browser.delete_all_cookies()
        browser.get(hard_envoy.url + "/login?from=screenshot")
        try:
            # The worker's first report ("0 hashes tried") comes at once.
            try:
                WebDriverWait(browser, 2).until(lambda d: "hashes tried" in d.execute_script(
                    "const e = document.getElementById('det'); return e ? e.textContent : 'gone'"))
            except TimeoutException:
                pass
            state = browser.execute_script(
                "const b = document.getElementById('bar'), f = document.getElementById('pv');"
                "return b && {title: document.title, bits: f.getAttribute('data-bits'),"
                " shown: !document.getElementById('js').hidden, value: b.value,"
                " msg: document.getElementById('msg').textContent,"
                " det: document.getElementById('det').textContent}")
            png = browser.get_screenshot_as_png()
            still_solving = browser.title == CHALLENGE_TITLE and not browser.find_elements(By.ID, "upstream")
        except WebDriverException:  # the page navigated away under the script
            continue
        if state and still_solving:
            break
    else:
        pytest.fail("the browser solved a 20-bit puzzle before every one of 8 screenshots")
    shot.write_bytes(png)
    print(f"\n[browser] challenge page screenshot: {shot} (attempt {attempt + 1}, progress {state['value']:.2f}, "
          f"{state['msg']!r}, {state['det']!r})")
    assert state["title"] == CHALLENGE_TITLE
    assert state["bits"] == "20"
    assert state["shown"], "the progress block is shown when JavaScript runs"
    assert "hashes tried" in state["det"], state
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000

    started = time.monotonic()
    text = wait_for_upstream(browser, timeout=120)
    print(f"[browser] 20-bit puzzle solved and verified {time.monotonic() - started:.1f}s after the screenshot")
    assert browser.current_url == hard_envoy.url + "/login?from=screenshot"
    assert "GET /login?from=screenshot" in text
    assert pass_cookie(browser)["httpOnly"] is True


# --- header consistency ------------------------------------------------------

# One rule per header anomaly, each with its own bit as weight, so the score
# the upstream sees says exactly which fired.
ANOMALY_BITS = {
    "no_accept": 1, "no_accept_language": 2, "no_client_hints": 4,
    "client_hints_mismatch": 8, "no_fetch_metadata": 16, "unexpected_client_hints": 32,
}


@pytest.fixture(scope="module")
def consistency_envoy(echo_upstream):
    policy = {
        "tokens": {"keys": ["1:e2e-consistency-secret-0123456789"]},
        "default_route": {"action": "monitor"},
        "rules": [{"name": f"anomaly-{name}", "when": {"header_anomalies": [name]}, "weight": bit}
                  for name, bit in ANOMALY_BITS.items()],
    }
    with start_envoy(policy, echo_upstream) as envoy:
        yield envoy


def fired_anomalies(score):
    return sorted(name for name, bit in ANOMALY_BITS.items() if int(score) & bit)


def test_chromiums_own_requests_have_no_header_anomalies(consistency_envoy, launch):
    # Chromium with headed Chrome's User-Agent (headless says HeadlessChrome,
    # an automation class the checks do not apply to). 127.0.0.1 is a
    # loopback host, so Chromium sends Sec-Fetch-* and client hints and the
    # policy expects them.
    browser = launch(user_agent=ordinary_ua())
    browser.get(consistency_envoy.url + "/page?x=1")
    wait_for_upstream(browser, timeout=10)
    annotations = upstream_annotations(browser)
    assert annotations["x-palisade-client"].startswith("class=browser"), annotations
    assert fired_anomalies(annotations["x-palisade-score"]) == [], annotations
    # Its fetch() calls, same-origin and with other Accept headers, too.
    results = browser.execute_async_script(
        """
        const done = arguments[0];
        Promise.all(['/api/a', '/api/b?c=d'].map(p =>
            fetch(p, {headers: {'Accept': 'application/json'}}).then(r => r.json())))
          .then(bodies => done(bodies.map(b => b.headers)), e => done(String(e)));
        """
    )
    assert isinstance(results, list), results
    for seen in results:
        assert seen["x-palisade-client"].startswith("class=browser"), seen
        assert "sec-fetch-mode" in seen and "sec-ch-ua" in seen, seen
        assert fired_anomalies(seen["x-palisade-score"]) == [], seen


def test_a_script_with_chromes_user_agent_has_anomalies(consistency_envoy):
    # The control: the same User-Agent from a script, without the headers
    # Chromium adds, on the same (secure, loopback) origin.
    r = requests.get(consistency_envoy.url + "/page", timeout=5, headers={
        "User-Agent": ordinary_ua(), "Accept": "application/json", "Accept-Language": "en"})
    assert r.status_code == 200
    score = r.json()["headers"]["x-palisade-score"]
    assert fired_anomalies(score) == ["no_client_hints", "no_fetch_metadata"]
