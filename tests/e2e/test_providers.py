"""Third-party CAPTCHA kinds (Turnstile, hCaptcha, reCAPTCHA v2 and v3,
Friendly Captcha) through the companion, against the local contract server
(provider_contracts.py), which implements each provider's documented
siteverify request and answers with the docs' example responses. The live
providers are not reachable here and were not exercised.

Each test posts what the provider's widget would put in the form; which
answer the contract server gives is chosen by that token (see
provider_contracts.py). The pages are also opened in headless Chromium,
with the contract server's stand-in for the widgets' scripts, checked with
axe-core (our markup; the providers' own widgets are not loaded) and
submitted.
"""
import contextlib
import os
import subprocess
from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import (BROWSER_UA, CHROMEDRIVER, CHROMIUM, CLI, assert_accessible, cli, next_client_ip,
                      pass_cookie, policy_without_scoring, start_companion, wait_for_path,
                      write_policy)
from provider_contracts import (ERRORS, NOT_THE_VISITOR, SECRET, SITE_KEY, SLOW_S, ContractServer)

PROVIDERS = ["turnstile", "hcaptcha", "recaptcha_v2", "recaptcha_v3", "friendly_captcha"]
FIELDS = {"turnstile": "cf-turnstile-response", "hcaptcha": "h-captcha-response",
          "recaptcha_v2": "g-recaptcha-response", "recaptcha_v3": "g-recaptcha-response",
          "friendly_captcha": "frc-captcha-response"}
SECRET_ENV = "PALISADE_TEST_PROVIDER_SECRET"
TIMEOUT_MS = 1000


def providers_section(server):
    section = {}
    for p in PROVIDERS:
        section[p] = {"site_key": SITE_KEY, "secret_env": SECRET_ENV, "verify_url": server.url(p),
                      "timeout_ms": TIMEOUT_MS, "fallback": "text"}
    section["recaptcha_v3"].update(min_score=0.5, action="palisade")
    return section


@pytest.fixture(scope="module")
def contract():
    with ContractServer() as server:
        yield server


@contextlib.contextmanager
def providers_companion(section):
    """A companion with the providers of `section` besides the demo
    policy's (ALTCHA, which its /demo/altcha route needs)."""
    policy = policy_without_scoring()
    policy.setdefault("companion", {}).setdefault("providers", {}).update(section)
    os.environ[SECRET_ENV] = SECRET
    try:
        with start_companion(policy) as c:
            yield c
    finally:
        os.environ.pop(SECRET_ENV, None)


@pytest.fixture(scope="module")
def companion(contract):
    with providers_companion(providers_section(contract)) as c:
        yield c


def issue(companion, kind, ip, json=True):
    headers = {"User-Agent": BROWSER_UA, "X-Palisade-Client-Ip": ip, "Host": "127.0.0.1"}
    if json:
        headers["Accept"] = "application/json"
    r = requests.get(companion.public + "/.palisade/challenge",
                     params={"kind": kind, "return": "/after?x=1"}, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json() if json else r.text


def answer(companion, challenge, token, ip, form=False):
    headers = {"User-Agent": BROWSER_UA, "X-Palisade-Client-Ip": ip, "Host": "127.0.0.1"}
    if form:
        data = {FIELDS[challenge["kind"]]: token}
        return requests.post(companion.public + challenge["verify"], data=data, headers=headers,
                             allow_redirects=False, timeout=10)
    return requests.post(companion.public + challenge["verify"], json={"response": token},
                         headers={**headers, "Accept": "application/json"}, timeout=10)


@pytest.mark.parametrize("kind", PROVIDERS)
def test_the_page_carries_the_widget(companion, kind):
    page = issue(companion, kind, next_client_ip(), json=False)
    if kind == "recaptcha_v3":
        assert "api.js?render=contract-site-key" in page and "grecaptcha.execute" in page
        assert 'name="g-recaptcha-response"' in page
    else:
        assert f'data-sitekey="{SITE_KEY}"' in page
    assert SECRET not in page


@pytest.mark.parametrize("kind", PROVIDERS)
def test_a_good_response_gets_a_pass_token_once(companion, contract, kind):
    ip = next_client_ip()
    c = issue(companion, kind, ip)
    assert c["kind"] == kind and c["response_field"] == FIELDS[kind] and c["site_key"] == SITE_KEY
    before = len(contract.requests)
    r = answer(companion, c, "ok", ip)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    assert f"palisade={token}" in r.headers["set-cookie"]
    out = cli("token", "verify", "--config", companion.policy_path, token, "--ip", ip,
              "--user-agent", BROWSER_UA, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    # The request, exactly as the provider documents it.
    sent = contract.requests[before]
    if kind == "friendly_captcha":
        assert sent["headers"]["x-api-key"] == SECRET
        assert sent["headers"]["content-type"] == "application/json"
        assert sent["json"] == {"response": "ok", "sitekey": SITE_KEY}
    else:
        assert sent["headers"]["content-type"] == "application/x-www-form-urlencoded"
        want = {"secret": SECRET, "response": "ok", "remoteip": ip}
        if kind == "hcaptcha":
            want["sitekey"] = SITE_KEY
        assert sent["fields"] == want
    again = answer(companion, c, "ok", ip)
    assert again.status_code == 403 and again.json()["error"] == "used"


@pytest.mark.parametrize("kind", PROVIDERS)
def test_the_widget_field_in_a_form_redirects_back(companion, kind):
    ip = next_client_ip()
    c = issue(companion, kind, ip)
    r = answer(companion, c, "ok", ip, form=True)
    assert r.status_code == 303 and r.headers["location"] == "/after?x=1"
    assert "palisade=" in r.headers["set-cookie"]


@pytest.mark.parametrize("kind,code", [(k, code) for k in PROVIDERS for code in ERRORS[k]])
def test_every_documented_error_code_is_refused(companion, kind, code):
    ip = next_client_ip()
    c = issue(companion, kind, ip)
    r = answer(companion, c, f"err:{code}", ip)
    assert r.status_code == 403, r.text
    if code in NOT_THE_VISITOR:
        # The site's keys are wrong or the provider failed: no visitor can
        # pass, so the fallback kind is offered.
        assert r.json()["error"] == "provider_unavailable"
        assert "kind=text" in r.json()["retry"]
    else:
        assert r.json()["error"] == "wrong_answer"
        assert f"kind={kind}" in r.json()["retry"]
    assert "set-cookie" not in r.headers


@pytest.mark.parametrize("kind", PROVIDERS)
def test_a_hostname_mismatch_is_refused(companion, kind):
    ip = next_client_ip()
    c = issue(companion, kind, ip)
    r = answer(companion, c, "ok-host:evil.example", ip)
    assert r.status_code == 403 and r.json()["error"] == "wrong_answer"
    failed = [e for e in companion.log_events() if e.get("fields", {}).get("event") == "siteverify"]
    assert any("hostname-mismatch" in str(e) for e in failed)


def test_a_recaptcha_v3_score_below_the_threshold_is_refused(companion):
    ip = next_client_ip()
    c = issue(companion, "recaptcha_v3", ip)
    low = answer(companion, c, "score:0.3", ip)
    assert low.status_code == 403 and low.json()["error"] == "wrong_answer"
    ok = answer(companion, c, "score:0.5", ip)
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("kind", PROVIDERS)
@pytest.mark.parametrize("token", ["slow", "500"])
def test_an_unreachable_provider_serves_the_fallback_kind(companion, kind, token):
    ip = next_client_ip()
    c = issue(companion, kind, ip)
    r = answer(companion, c, token, ip)
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "provider_unavailable" and "kind=text" in r.json()["retry"]
    assert r.elapsed.total_seconds() < SLOW_S
    # A browser gets the fallback's page at once.
    c = issue(companion, kind, ip)
    page = answer(companion, c, token, ip, form=True)
    assert page.status_code == 403 and "/image" in page.text
    metric = (f'palisade_companion_challenges_failed_total{{kind="{kind}",'
              f'reason="provider_unavailable"}}')
    assert any(line.startswith(metric) for line in companion.metrics().splitlines()), \
        companion.metrics()


def test_an_unreachable_endpoint_serves_the_fallback_kind(contract):
    section = providers_section(contract)
    section["turnstile"]["verify_url"] = "http://127.0.0.1:9/siteverify"
    with providers_companion({"turnstile": section["turnstile"]}) as c:
        ip = next_client_ip()
        challenge = issue(c, "turnstile", ip)
        r = answer(c, challenge, "ok", ip)
        assert r.status_code == 403 and r.json()["error"] == "provider_unavailable"


def load_failure(policy, tmp_path):
    """What `check-config` and `serve` say of `policy`, which both refuse
    (without the secret in their environment)."""
    policy.setdefault("companion", {})["data_dir"] = str(tmp_path / "data")
    path = write_policy(policy, tmp_path)
    env = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
    said = []
    for args in (["check-config", str(path)], ["serve", "--config", str(path)]):
        out = subprocess.run([str(CLI), *args], capture_output=True, text=True, env=env,
                             timeout=30)
        assert out.returncode != 0, args
        said.append(out.stdout + out.stderr)
    return said


def test_an_unset_secret_fails_at_load_with_its_path(contract, tmp_path):
    policy = policy_without_scoring()
    policy.setdefault("companion", {}).setdefault("providers", {})["hcaptcha"] = \
        providers_section(contract)["hcaptcha"]
    for text in load_failure(policy, tmp_path):
        assert "companion.providers.hcaptcha.secret_env" in text and SECRET_ENV in text, text


def test_a_route_asking_for_an_unconfigured_provider_fails_at_load(tmp_path):
    """The demo's /demo/altcha route without `companion.providers.altcha`."""
    policy = policy_without_scoring()
    del policy["companion"]["providers"]
    at = next(i for i, r in enumerate(policy["routes"]) if r.get("name") == "demo-altcha")
    for text in load_failure(policy, tmp_path):
        assert f"routes[{at}].challenge.kind: `altcha` is a provider kind" in text, text


def test_an_unconfigured_provider_kind_is_not_issued(companion):
    """Without its block a provider kind falls back to the default kind."""
    policy = policy_without_scoring()
    with start_companion(policy) as c:
        r = requests.get(c.public + "/.palisade/challenge", params={"kind": "turnstile"},
                         headers={"Accept": "application/json", "User-Agent": BROWSER_UA},
                         timeout=10)
        assert r.status_code == 200 and r.json()["kind"] != "turnstile"


@pytest.fixture(scope="module")
def browser_companion(contract):
    """The providers with the contract server's stand-in widget script."""
    section = providers_section(contract)
    for settings in section.values():
        settings["script_url"] = contract.widget_url()
    with providers_companion(section) as c:
        yield c


@pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                    reason="chromium/chromedriver not installed (scripts/install-system-deps.sh)")
@pytest.mark.parametrize("kind", PROVIDERS)
def test_the_page_is_accessible_and_passes_in_chromium(browser_companion, launch, kind):
    driver = launch()
    driver.get(browser_companion.public + f"/.palisade/challenge?kind={kind}&return=/after")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Please confirm you are a person"
    # The stand-in has run: the response field is in the form (v3: on submit).
    if kind != "recaptcha_v3":
        WebDriverWait(driver, 10).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, f"form input[name={FIELDS[kind]}][value=ok]"))
    assert_accessible(driver, kind)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for_path(driver, "/after")
    assert pass_cookie(driver)
