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
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import ROOT, admin_stats, policy_json, start_envoy

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = ROOT / "target" / "e2e"
CHALLENGE_TITLE = "Checking your browser"
ORDINARY_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/156.0.0.0 Safari/537.36")

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="chromium/chromedriver not installed (scripts/install-system-deps.sh)",
)


@pytest.fixture
def launch():
    """Starts headless Chromium (optionally with another User-Agent), each
    with a fresh profile; quits them and removes the profiles afterwards."""
    started = []

    def start(user_agent=None):
        profile = tempfile.mkdtemp(prefix="palisade-chromium-")
        started.append((None, profile))
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", "--lang=en-US",
                    "--window-size=1024,768", f"--user-data-dir={profile}"):
            options.add_argument(arg)
        if user_agent:
            options.add_argument(f"--user-agent={user_agent}")
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        started[-1] = (driver, profile)
        driver.set_page_load_timeout(30)
        driver.set_script_timeout(30)
        return driver

    try:
        yield start
    finally:
        for driver, profile in started:
            try:
                if driver is not None:
                    driver.quit()
            finally:
                shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(launch):
    """Headless Chromium as it is (its User-Agent says HeadlessChrome)."""
    return launch()


def challenge_counts(envoy):
    stats = admin_stats(envoy, r"^wasmcustom\.palisade\.challenge\.")
    return {k: stats.get(f"wasmcustom.palisade.challenge.{k}", 0) for k in ("issued", "passed", "failed")}


def delta(before, after):
    return {k: after[k] - before[k] for k in before}


def wait_for_upstream(driver, timeout=30):
    """Waits until the upstream's page is shown (the challenge solved)."""
    try:
        WebDriverWait(driver, timeout).until(lambda d: d.find_elements(By.ID, "upstream"))
    except TimeoutException:
        raise AssertionError(f"still at {driver.current_url} ({driver.title!r}) after {timeout}s:\n"
                             f"{driver.page_source[:2000]}")
    return driver.find_element(By.TAG_NAME, "body").text


def upstream_annotations(driver):
    """The x-palisade-* request headers the upstream saw (its page lists them)."""
    rows = driver.find_elements(By.CSS_SELECTOR, "table tr")
    return {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text for r in rows}


def pass_cookie(driver):
    return next((c for c in driver.get_cookies() if c["name"] == "palisade"), None)


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
    browser = launch(user_agent=ORDINARY_UA)
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
