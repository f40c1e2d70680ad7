"""Every companion kind solved in a real browser through real Envoy, as a
person would: the filter sends the browser to the companion's page, the
test reads the answer from the store (never from an endpoint), types or
clicks it, and the form lands on the upstream with the pass cookie. The
pages are checked with axe-core in the browser, in light and dark themes,
and without JavaScript.

axe-core's findings are written to target/e2e/axe-<kind>-<theme>.json, and
a screenshot of each page to target/e2e/companion-<kind>.png.
"""
from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.by import By

from conftest import (BROWSER_HEADERS, CHROMEDRIVER, CHROMIUM, ROOT, assert_accessible, next_client_ip,
                      ordinary_ua, pass_cookie, policy_without_scoring, start_companion, start_envoy,
                      wait_for_upstream)

ARTIFACTS = ROOT / "target" / "e2e"
KINDS = {"text": "/demo/text", "one_click": "/demo/one-click", "grid": "/demo/grid",
         "audio": "/demo/audio", "chart": "/demo/chart"}

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="chromium/chromedriver not installed (scripts/install-system-deps.sh)",
)


@pytest.fixture(scope="module")
def stack(echo_upstream):
    policy = policy_without_scoring()
    with start_companion(policy) as companion, \
            start_envoy(policy, echo_upstream, companion=companion) as envoy:
        yield envoy, companion


def challenge_id(driver):
    action = driver.find_element(By.CSS_SELECTOR, "form[method=post]").get_attribute("action")
    return action.rstrip("/").split("/")[-2]


def answer_page(driver, companion, answer=None):
    """Fills in the page's challenge (the stored answer unless `answer`
    is given) and submits it."""
    cid = challenge_id(driver)
    right = companion.answer(cid)
    given = right if answer is None else answer
    tiles = driver.find_elements(By.CSS_SELECTOR, "input[name=tile]")
    choices = driver.find_elements(By.CSS_SELECTOR, "input[type=radio][name=answer]")
    if choices:
        # A chart: the choice whose text is the answer, clicked by its label.
        chosen = next(c for c in choices if c.get_attribute("value") == given)
        chosen.find_element(By.XPATH, "..").click()
    elif tiles:
        chosen = {int(t) for t in given.split(",") if t}
        for box in tiles:
            if int(box.get_attribute("value")) in chosen:
                # People click the picture; its label toggles the box.
                box.find_element(By.XPATH, "..").find_element(By.TAG_NAME, "img").click()
    else:
        field = driver.find_element(By.ID, "answer")
        field.send_keys(given.lower())
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    return cid


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_person_solves_each_kind_and_lands_on_the_upstream(stack, launch, kind):
    envoy, companion = stack
    driver = launch(user_agent=ordinary_ua())
    target = KINDS[kind] + "?from=browser"
    driver.get(envoy.url + target)
    assert "/.palisade/challenge?kind=" + kind in driver.current_url
    assert driver.find_element(By.TAG_NAME, "h1").text == "Please confirm you are a person"
    # The media load (through Envoy, from the companion).
    if kind in ("text", "one_click", "grid", "chart"):
        loaded = driver.execute_script(
            "return [...document.images].every(i => i.complete && i.naturalWidth > 0)")
        assert loaded
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"companion-{kind}.png"))
    assert_accessible(driver, kind)

    answer_page(driver, companion)
    text = wait_for_upstream(driver)
    assert f"GET {target}" in text
    cookie = pass_cookie(driver)
    assert cookie and cookie["httpOnly"]
    # The pass holds for the other kinds' routes at the same difficulty.
    driver.get(envoy.url + "/demo/pow")
    assert "GET /demo/pow" in wait_for_upstream(driver)


def test_a_wrong_answer_shows_a_new_challenge_and_the_reason(stack, launch):
    envoy, companion = stack
    driver = launch(user_agent=ordinary_ua())
    driver.get(envoy.url + "/demo/text")
    first = answer_page(driver, companion, answer="qqqqqq")
    alert = driver.find_element(By.CSS_SELECTOR, "[role=alert]").text
    assert alert == "That was not right. Please try this new challenge."
    second = challenge_id(driver)
    assert second != first
    answer_page(driver, companion)
    assert "GET /demo/text" in wait_for_upstream(driver)


def test_works_without_javascript_and_in_german(stack, launch):
    envoy, companion = stack
    driver = launch(user_agent=ordinary_ua(), javascript=False, lang="de-DE")
    driver.get(envoy.url + "/demo/grid")
    assert "Wählen Sie alle Bilder mit" in driver.page_source
    answer_page(driver, companion)
    assert "GET /demo/grid" in wait_for_upstream(driver)


def test_the_audio_alternative_is_one_link_away(stack, launch):
    envoy, companion = stack
    driver = launch(user_agent=ordinary_ua())
    driver.get(envoy.url + "/demo/one-click?a=1")
    driver.find_element(By.PARTIAL_LINK_TEXT, "audio challenge instead").click()
    assert "kind=audio" in driver.current_url
    src = driver.find_element(By.TAG_NAME, "audio").get_attribute("src")
    clip = requests.get(src, timeout=10)
    assert clip.status_code == 200 and clip.content[:4] == b"RIFF"
    answer_page(driver, companion)
    assert "GET /demo/one-click?a=1" in wait_for_upstream(driver)


def test_json_clients_are_told_where_to_go(stack):
    envoy, _ = stack
    r = requests.get(envoy.url + "/demo/grid", headers={
        **BROWSER_HEADERS, "Accept": "application/json", "X-Forwarded-For": next_client_ip()},
        allow_redirects=False, timeout=10)
    body = r.json()
    assert r.status_code == 403 and body["challenge"]["kind"] == "grid", body
    assert body["challenge"]["url"].startswith("/.palisade/challenge?kind=grid")
