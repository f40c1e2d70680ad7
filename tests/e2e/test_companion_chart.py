"""The `chart` kind through the real companion, and through real Envoy:
`/demo/chart` hands a client to the companion's chart challenge, whose
picture is a PNG drawn from the demo table, and whose answer (read from
the store, as every kind's tests read it, never through an endpoint)
passes typed with a typo, chosen by index or as the page's form posts it,
and not after the challenge's timeout.

The page in a browser, with axe-core, is in test_companion_browser.py.
"""
import os
import signal
import time

import pytest
import requests

from conftest import (BROWSER_HEADERS, BROWSER_UA, ROOT, cli, policy_without_scoring, start_companion,
                      start_envoy, write_policy)

JSON = {"Accept": "application/json", "User-Agent": BROWSER_UA}


def demo_policy(**companion):
    """The demo policy (without learned scores), its chart tables named by
    absolute path so the companion finds them from any directory."""
    p = policy_without_scoring()
    for table in p["challenge"]["chart"]["tables"].values():
        table["csv"] = str(ROOT / table["csv"])
    p["companion"] = {**p.get("companion", {}), **companion}
    return p


def new(base, ip, ret="/demo/chart?x=1", difficulty=2):
    r = requests.get(base + "/.palisade/challenge",
                     params={"kind": "chart", "difficulty": difficulty, "return": ret},
                     headers={**JSON, "X-Palisade-Client-Ip": ip}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def submit(base, challenge, answer, ip, form=False):
    headers = {"User-Agent": BROWSER_UA, "X-Palisade-Client-Ip": ip}
    if form:
        return requests.post(base + challenge["verify"], data={"answer": answer}, headers=headers,
                             allow_redirects=False, timeout=10)
    return requests.post(base + challenge["verify"], json={"answer": answer},
                         headers={**headers, "Accept": "application/json"}, timeout=10)


def typo(answer, others):
    """One substituted character that leaves the answer nearer itself than
    any other choice, or None if every such typo is ambiguous."""
    for at in range(len(answer)):
        for c in "qxz":
            t = answer[:at] + c + answer[at + 1:]
            if t.lower() != answer.lower() and not any(distance(t.lower(), o.lower()) <= 1 for o in others):
                return t
    return None


def distance(a, b):
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a):
        diagonal, row[0] = row[0], i + 1
        for j, cb in enumerate(b):
            diagonal, row[j + 1] = row[j + 1], min(diagonal + (ca != cb), row[j] + 1, row[j + 1] + 1)
    return row[len(b)]


@pytest.fixture(scope="module")
def companion():
    # Wrong answers are part of the tests: no lockout.
    with start_companion(demo_policy(typo_tolerance=1, retries=100)) as c:
        yield c


def test_a_chart_challenge_is_issued_drawn_and_solved(companion):
    base, ip = companion.public, "10.5.0.1"
    c = new(base, ip)
    assert c["kind"] == "chart" and c["difficulty"] == 2 and len(c["id"]) == 22
    assert c["prompt"].endswith("?") and c["multiple"] is False
    assert "kind=audio" in c["audio_alternative"]
    choices = [choice["text"] for choice in c["choices"]]
    assert [choice["index"] for choice in c["choices"]] == list(range(len(choices)))
    assert len(choices) >= 2
    png = requests.get(base + c["media"]["image"], timeout=10)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n" and len(png.content) > 5000
    # The same challenge draws the same picture; another draws another.
    assert requests.get(base + c["media"]["image"], timeout=10).content == png.content
    other = new(base, ip)
    assert requests.get(base + other["media"]["image"], timeout=10).content != png.content

    right = companion.answer(c["id"])
    assert right in choices
    wrong = next(x for x in choices if x != right)
    r = submit(base, c, wrong, ip)
    assert r.status_code == 403 and r.json()["error"] == "wrong_answer"
    assert "kind=chart" in r.json()["retry"]
    ok = submit(base, c, right.upper(), ip)
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["return"] == "/demo/chart?x=1"
    assert submit(base, c, right, ip).json()["error"] == "used"
    out = cli("token", "verify", "--config", companion.policy_path, body["token"], "--ip", ip,
              "--user-agent", BROWSER_UA, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_typos_within_the_tolerance_pass_and_beyond_it_do_not(companion):
    base, ip = companion.public, "10.5.0.2"
    passed = refused = 0
    for _ in range(12):
        c = new(base, ip)
        right = companion.answer(c["id"])
        others = [x["text"] for x in c["choices"] if x["text"] != right]
        one = typo(right, others)
        if one is None:
            continue
        if len(right) >= 4:
            # A second substitution, two characters on from the first.
            at = next(i for i in range(len(right)) if one[i] != right[i])
            at = (at + 2) % len(right)
            two = one[:at] + ("z" if one[at].lower() != "z" else "x") + one[at + 1:]
            assert distance(two.lower(), right.lower()) == 2
            assert submit(base, c, two, ip).json()["error"] == "wrong_answer"
            refused += 1
        r = submit(base, c, one, ip)
        assert r.status_code == 200, (right, one, r.text)
        passed += 1
    assert passed >= 3 and refused >= 1


def test_chosen_by_index_or_by_the_pages_form(companion):
    base, ip = companion.public, "10.5.0.3"
    c = new(base, ip)
    right = companion.answer(c["id"])
    index = next(x["index"] for x in c["choices"] if x["text"] == right)
    assert submit(base, c, index, ip).status_code == 200
    # The page: the question as the legend of one radio button per choice.
    page = requests.get(base + "/.palisade/challenge?kind=chart&return=/demo/chart",
                        headers={"User-Agent": BROWSER_UA, "X-Palisade-Client-Ip": ip}, timeout=10)
    assert page.status_code == 200 and "<legend>" in page.text and 'type="radio" name="answer"' in page.text
    assert 'alt="A chart; the question below is about it"' in page.text
    cid = page.text.split("/challenge/")[1].split("/")[0]
    form = {"verify": f"/.palisade/challenge/{cid}/verify"}
    r = submit(base, form, companion.answer(cid), ip, form=True)
    assert r.status_code == 303 and r.headers["location"] == "/demo/chart"


def test_an_answer_after_the_timeout_is_refused():
    with start_companion(demo_policy(ttl="2s")) as c:
        ch = new(c.public, "10.5.0.4")
        right = c.answer(ch["id"])
        time.sleep(2.2)
        r = submit(c.public, ch, right, "10.5.0.4")
        assert r.status_code == 403 and r.json()["error"] == "expired"
        assert requests.get(c.public + ch["media"]["image"], timeout=5).status_code == 410


def test_a_template_without_its_column_is_refused_at_start_with_its_path(tmp_path):
    p = demo_policy()
    p["challenge"]["chart"]["templates"][2]["value"] = "active"
    path = write_policy(p, tmp_path)
    out = cli("check-config", path, check=False)
    assert out.returncode == 1
    assert ('challenge.chart.templates[2].value: table "fruit" has no column "active"'
            in out.stderr), out.stderr
    with pytest.raises(RuntimeError, match=r'templates\[2\]\.value: table "fruit" has no column "active"'):
        with start_companion(p, timeout=10):
            pass


def test_demo_chart_through_envoy(echo_upstream):
    """`/demo/chart` as a program meets it: the filter hands it to the
    companion's chart challenge, and the pass token opens the route."""
    policy = demo_policy()
    with start_companion(policy) as companion, \
            start_envoy(policy, echo_upstream, companion=companion) as envoy:
        headers = {**BROWSER_HEADERS, "Accept": "application/json"}
        deadline = time.time() + 10
        while True:
            r = requests.get(envoy.url + "/demo/chart", headers=headers, timeout=10)
            handed = r.json().get("challenge", {})
            if "url" in handed or time.time() > deadline:
                break
            time.sleep(0.2)  # the filter has not yet seen its companion up
        assert r.status_code == 403 and handed["kind"] == "chart", r.text
        c = requests.get(envoy.url + handed["url"], headers=headers, timeout=10).json()
        assert c["kind"] == "chart"
        png = requests.get(envoy.url + c["media"]["image"], headers=BROWSER_HEADERS, timeout=10)
        assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
        answer = companion.answer(c["id"])
        ok = requests.post(envoy.url + c["verify"], json={"answer": answer},
                           headers={**headers, "Content-Type": "application/json"}, timeout=10)
        assert ok.status_code == 200, ok.text
        assert ok.json()["return"] == "/demo/chart"
        page = requests.get(envoy.url + "/demo/chart", timeout=10,
                            headers={**headers, "X-Palisade-Token": ok.json()["token"]})
        assert page.status_code == 200, page.text
        echo = page.json()
        assert echo["path"] == "/demo/chart" and echo["headers"]["x-palisade-action"] == "allow"


def test_a_reload_reads_the_tables_afresh_and_refuses_a_broken_one(tmp_path):
    table = tmp_path / "fruit.csv"
    table.write_text((ROOT / "datasets" / "charts" / "fruit.csv").read_text())
    p = demo_policy(retries=100)
    p["challenge"]["chart"]["tables"]["fruit"]["csv"] = str(table)
    # Only the fruit templates: every challenge shows the fruit table.
    p["challenge"]["chart"]["templates"] = [
        t for t in p["challenge"]["chart"]["templates"] if t["table"] == "fruit"]
    with start_companion(p) as c:
        seen = {x["text"] for _ in range(5) for x in new(c.public, "10.5.1.1")["choices"]}
        assert not any(s.startswith("Veg") for s in seen)
        table.write_text("fruit,crates_sold,price_per_kg\n" + "".join(
            f"Veg{i},{100 * i},{i}.5\n" for i in range(1, 11)))
        os.kill(c.process.pid, signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline:
            choices = [x["text"] for x in new(c.public, "10.5.1.1")["choices"]]
            if all(x.startswith("Veg") for x in choices):
                break
            time.sleep(0.1)
        assert all(x.startswith("Veg") for x in choices), choices
        # A table that lost its column: the reload is refused, the data in
        # force keeps serving.
        table.write_text("fruit,price_per_kg\nApples,2\nPears,3\n")
        os.kill(c.process.pid, signal.SIGHUP)
        deadline = time.time() + 10
        while "reload refused" not in c.log() and time.time() < deadline:
            time.sleep(0.1)
        assert 'table \\"fruit\\" has no column \\"crates_sold\\"' in c.log(), c.log()[-2000:]
        choices = [x["text"] for x in new(c.public, "10.5.1.1")["choices"]]
        assert all(x.startswith("Veg") for x in choices) and c.process.poll() is None
