"""The second look at a right answer, in a real browser against the real
companion (scoring enabled): a page solved like a script, with the pointer
jumping straight to the answer and no time to read, is asked again with a
harder challenge, and asked again after that; a person using only the
keyboard, or with JavaScript off, gets the pass token.

The people's browsers here do not announce automation (`navigator.webdriver`
is false, the user agent is an ordinary Chrome's). The script's browser is
WebDriver as it comes (`navigator.webdriver` true): its jump to the answer
scores 35 and the flag 60, so it is asked again however long a loaded
machine takes to run it (the 800 ms fast-solve term depends on that).
"""
import random
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from conftest import CHROMEDRIVER, CHROMIUM, ordinary_ua, pass_cookie, policy_json, start_companion, wait_for_pass

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="chromium/chromedriver not installed (scripts/install-system-deps.sh)",
)


@pytest.fixture(scope="module")
def companion():
    policy = policy_json()
    policy.setdefault("scoring", {})["enabled"] = True
    with start_companion(policy) as c:
        yield c


def person_browser(launch, javascript=True):
    return launch(user_agent=ordinary_ua(), javascript=javascript, automation=False)


def open_challenge(driver, companion, kind, difficulty=2):
    driver.get(f"{companion.public}/.palisade/challenge?kind={kind}&difficulty={difficulty}&return=/done")
    return challenge_id(driver)


def challenge_id(driver):
    action = driver.find_element(By.CSS_SELECTOR, "form[method=post]").get_attribute("action")
    return action.rstrip("/").split("/")[-2]


def interaction_count(companion, verdict):
    for line in companion.metrics().splitlines():
        if line.startswith(f'palisade_companion_interactions_total{{verdict="{verdict}"}}'):
            return float(line.split()[-1])
    return 0.0


def jump_and_click(driver, companion):
    """Solves the current tile challenge as a script does: the pointer jumps
    to each right tile, clicks, and the form is sent at once."""
    right = {int(t) for t in companion.answer(challenge_id(driver)).split(",") if t}
    for box in driver.find_elements(By.CSS_SELECTOR, "input[name=tile]"):
        if int(box.get_attribute("value")) in right:
            img = box.find_element(By.XPATH, "..").find_element(By.TAG_NAME, "img")
            ActionChains(driver, duration=0).move_to_element(img).click().perform()
    form = driver.find_element(By.CSS_SELECTOR, "form[method=post]")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    # The answer's page replaces this one; read nothing before it has.
    WebDriverWait(driver, 10).until(expected_conditions.staleness_of(form))


def test_a_pointer_that_jumps_to_the_answer_is_escalated_then_asked_again(companion, launch):
    driver = launch(user_agent=ordinary_ua())
    bots = interaction_count(companion, "bot")
    first = open_challenge(driver, companion, "one_click")
    jump_and_click(driver, companion)
    # The right answer did not pass: a harder challenge, with the reason.
    assert pass_cookie(driver) is None
    alert = driver.find_element(By.CSS_SELECTOR, "[role=alert]").text
    assert "one more challenge" in alert
    tiles = driver.find_elements(By.CSS_SELECTOR, "input[name=tile]")
    assert [t.get_attribute("type") for t in tiles[:1]] == ["checkbox"], "escalated to grid"
    assert len(tiles) == 16, "grid at difficulty 4 is 4×4"
    second = challenge_id(driver)
    assert second != first
    # The same again on the harder one: asked again, never passed.
    jump_and_click(driver, companion)
    assert pass_cookie(driver) is None
    assert "one more challenge" in driver.find_element(By.CSS_SELECTOR, "[role=alert]").text
    assert challenge_id(driver) != second
    assert interaction_count(companion, "bot") == bots + 2
    events = [e for e in companion.log_events() if e.get("fields", e).get("event") == "interaction"]
    assert events, "the second look is logged"


def test_a_keyboard_only_person_passes(companion, launch):
    driver = person_browser(launch)
    persons = interaction_count(companion, "person")
    cid = open_challenge(driver, companion, "text")
    answer = companion.answer(cid).lower()
    time.sleep(1.5)  # reading the picture
    rng = random.Random(7)
    keys = ActionChains(driver)
    for ch in answer:
        keys.send_keys(ch).pause(rng.uniform(0.12, 0.45))
    keys.send_keys(Keys.ENTER).perform()
    assert wait_for_pass(driver, "/done")["value"]
    assert interaction_count(companion, "person") == persons + 1


def test_without_javascript_there_is_no_record_and_no_penalty(companion, launch):
    driver = person_browser(launch, javascript=False)
    nones = interaction_count(companion, "none")
    cid = open_challenge(driver, companion, "text")
    driver.find_element(By.ID, "answer").send_keys(companion.answer(cid).lower())
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert wait_for_pass(driver, "/done")["value"]
    assert interaction_count(companion, "none") == nones + 1
