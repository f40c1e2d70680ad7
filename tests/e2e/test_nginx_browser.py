"""Challenges solved in real headless Chromium through real nginx: the
companion's page for a text challenge, and the proof-of-work page, which
solves itself; both land on the upstream with the pass cookie, which then
holds for the next request."""
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from conftest import (CHROMEDRIVER, CHROMIUM, ordinary_ua, pass_cookie, policy_without_scoring, start_companion,
                      start_nginx, wait_for_upstream)
from test_companion_browser import answer_page

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="chromium/chromedriver not installed (scripts/install-system-deps.sh)",
)


@pytest.fixture(scope="module")
def stack(echo_upstream):
    with start_companion(policy_without_scoring()) as companion, start_nginx(companion, echo_upstream) as nginx:
        yield nginx, companion


def test_a_person_solves_a_text_challenge_through_nginx(stack, launch):
    nginx, companion = stack
    driver = launch(user_agent=ordinary_ua())
    driver.get(nginx.url + "/demo/text?via=nginx")
    assert "/.palisade/challenge?kind=text" in driver.current_url
    assert driver.execute_script("return [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    answer_page(driver, companion)
    assert "GET /demo/text?via=nginx" in wait_for_upstream(driver)
    assert pass_cookie(driver)["httpOnly"]
    driver.get(nginx.url + "/demo/grid")
    assert "GET /demo/grid" in wait_for_upstream(driver)


def test_the_proof_of_work_page_solves_itself_through_nginx(stack, launch):
    nginx, _ = stack
    driver = launch(user_agent=ordinary_ua())
    driver.get(nginx.url + "/login?next=/home")
    assert "GET /login?next=/home" in wait_for_upstream(driver)
    assert pass_cookie(driver)
    driver.get(nginx.url + "/login")
    assert driver.find_element(By.ID, "upstream").text == "Hello from the upstream"
