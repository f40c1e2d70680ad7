"""The companion service (`palisade serve`) on its own: the Challenge API
for every kind, single use, expiry, lockout, bad input, metrics, reloads,
and replicas sharing a real Redis. Answers are read from the store itself
(the SQLite file or Redis), never through an endpoint.

The browser tests through Envoy are in test_companion_browser.py; the
filter's failure modes in test_companion_failover.py.
"""
import json
import os
import signal
import time

import pytest
import requests

from conftest import (BROWSER_UA, ROOT, cli, policy_json, read_context, start_companion, start_redis,
                      write_policy)

STORED_KINDS = ["text", "one_click", "grid", "audio"]
JSON = {"Accept": "application/json", "User-Agent": BROWSER_UA}


def policy(**companion):
    p = policy_json()
    p["companion"] = {**p.get("companion", {}), **companion}
    return p


@pytest.fixture(scope="module")
def companion():
    with start_companion(policy()) as c:
        yield c


def new(companion, kind, difficulty=2, ret="/after?x=1", headers=None, ip="10.1.0.1"):
    r = requests.get(companion.public + "/.palisade/challenge",
                     params={"kind": kind, "difficulty": difficulty, "return": ret},
                     headers={**JSON, "X-Palisade-Client-Ip": ip, **(headers or {})}, timeout=10)
    return r


def answer_of(companion, challenge):
    """The stored answer, in the form the API takes."""
    stored = companion.answer(challenge["id"])
    if challenge["kind"] in ("grid", "one_click"):
        return [int(t) for t in stored.split(",") if t]
    return stored


def submit(companion, challenge, answer, ip="10.1.0.1", form=False, ua=BROWSER_UA):
    headers = {"User-Agent": ua, "X-Palisade-Client-Ip": ip}
    if form:
        if isinstance(answer, list):
            data = [("tile", str(t)) for t in answer]
        else:
            data = {"answer": answer}
        return requests.post(companion.public + challenge["verify"], data=data, headers=headers,
                             allow_redirects=False, timeout=10)
    return requests.post(companion.public + challenge["verify"], json={"answer": answer},
                         headers={**headers, "Accept": "application/json"}, timeout=10)


def wrong(answer):
    if isinstance(answer, list):
        return [t for t in range(16) if t not in answer][:1] or [0]
    return "ZZZZZZZZ" if not answer.isdigit() else "0" * (len(answer) + 3)


@pytest.mark.parametrize("kind", STORED_KINDS)
def test_each_kind_is_issued_rendered_and_solved(companion, kind):
    r = new(companion, kind)
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["kind"] == kind and c["difficulty"] == 2 and len(c["id"]) == 22
    assert c["expires"] > time.time() + 60 and c["verify"].endswith(f"/{c['id']}/verify")
    assert c["prompt"]
    if kind == "text":
        media = [c["media"]["image"]]
    elif kind == "audio":
        media = [c["media"]["audio"]]
    else:
        media = [choice["image"] for choice in c["choices"]]
        assert c["multiple"] == (kind == "grid")
    if kind != "audio":
        assert "kind=audio" in c["audio_alternative"]
    types = {"text": "image/png", "audio": "audio/wav"}
    for url in media:
        m = requests.get(companion.public + url, timeout=10)
        assert m.status_code == 200 and m.headers["content-type"] == types.get(kind, "image/jpeg")
        assert len(m.content) > 500
    stored = read_context(companion.stored_context(c["id"]))
    assert stored["return"] == "/after?x=1" and stored["difficulty"] == 2
    ok = submit(companion, c, answer_of(companion, c))
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["return"] == "/after?x=1" and body["expires"] > time.time()
    assert f"palisade={body['token']}" in ok.headers["set-cookie"]
    # The token verifies with the same policy the filter runs.
    out = cli("token", "verify", "--config", companion.policy_path, body["token"], "--ip", "10.1.0.1",
              "--user-agent", BROWSER_UA, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_render_is_fresh(companion):
    """The same challenge's picture is one rendering, but no two challenges
    share one, and no tile is a byte copy of the shipped picture."""
    seen = set()
    for _ in range(5):
        c = new(companion, "text").json()
        png = requests.get(companion.public + c["media"]["image"], timeout=10).content
        assert png not in seen
        seen.add(png)
    c = new(companion, "grid").json()
    tiles = [requests.get(companion.public + t["image"], timeout=10).content for t in c["choices"]]
    assert len(set(tiles)) == len(tiles)
    shipped = {p.read_bytes() for p in (ROOT / "datasets" / "images").rglob("*.png")}
    assert shipped and not shipped & set(tiles)


def test_a_form_answer_redirects_to_the_return_path(companion):
    c = new(companion, "text", ret="/back/here?q=1").json()
    r = submit(companion, c, companion.answer(c["id"]).lower(), form=True)
    assert r.status_code == 303 and r.headers["location"] == "/back/here?q=1"
    assert "palisade=" in r.headers["set-cookie"]


def test_single_use_and_garbage_does_not_burn(companion):
    c = new(companion, "text", ip="10.1.1.1").json()
    right = companion.answer(c["id"])
    # A wrong answer first: the challenge still works afterwards.
    bad = submit(companion, c, wrong(right), ip="10.1.1.1")
    assert bad.status_code == 403 and bad.json()["error"] == "wrong_answer"
    assert "kind=text" in bad.json()["retry"]
    assert submit(companion, c, right, ip="10.1.1.1").status_code == 200
    again = submit(companion, c, right, ip="10.1.1.1")
    assert again.status_code == 403 and again.json()["error"] == "used"


def test_another_client_cannot_answer(companion):
    c = new(companion, "text", ip="10.1.2.1").json()
    right = companion.answer(c["id"])
    r = submit(companion, c, right, ip="10.1.2.2")
    assert r.status_code == 403 and r.json()["error"] == "unknown"
    r = submit(companion, c, right, ip="10.1.2.1", ua="curl/8.0")
    assert r.status_code == 403 and r.json()["error"] == "unknown"
    assert submit(companion, c, right, ip="10.1.2.1").status_code == 200


def test_unknown_ids(companion):
    fake = {"verify": "/.palisade/challenge/AAAAAAAAAAAAAAAAAAAAAA/verify", "kind": "text"}
    r = submit(companion, fake, "abc", ip="10.1.3.1")
    assert r.status_code == 403 and r.json()["error"] == "unknown"
    for url in ["/.palisade/challenge/AAAAAAAAAAAAAAAAAAAAAA/image", "/.palisade/challenge/x/image",
                "/.palisade/challenge/AAAAAAAAAAAAAAAAAAAAAA/tile/99999"]:
        r = requests.get(companion.public + url, timeout=5)
        assert r.status_code == 404 and r.json()["error"] in ("unknown", "not_found")


def test_typo_tolerance():
    with start_companion(policy(typo_tolerance=1)) as c:
        ch = new(c, "text", difficulty=1).json()
        right = c.answer(ch["id"])
        typo = ("X" if right[0] != "X" else "Y") + right[1:]
        assert submit(c, ch, typo).status_code == 200
    with start_companion(policy()) as c:
        # Default: 0 below six characters (difficulty 1 has four).
        ch = new(c, "text", difficulty=1).json()
        right = c.answer(ch["id"])
        typo = ("X" if right[0] != "X" else "Y") + right[1:]
        assert submit(c, ch, typo).json()["error"] == "wrong_answer"


def test_expiry_and_lockout():
    with start_companion(policy(ttl="2s", retries=2, lockout="10m")) as c:
        ch = new(c, "text", ip="10.2.0.1").json()
        right = c.answer(ch["id"])
        time.sleep(2.2)
        r = submit(c, ch, right, ip="10.2.0.1")
        assert r.status_code == 403 and r.json()["error"] == "expired"
        assert requests.get(c.public + ch["media"]["image"], timeout=5).status_code == 410
        # Two wrong answers lock the client out; the right answer then fails
        # too, and so do new challenges (the block response).
        ch = new(c, "text", ip="10.2.0.2").json()
        right = c.answer(ch["id"])
        assert submit(c, ch, wrong(right), ip="10.2.0.2").json()["error"] == "wrong_answer"
        assert submit(c, ch, wrong(right), ip="10.2.0.2").json()["error"] == "locked"
        assert submit(c, ch, right, ip="10.2.0.2").json()["error"] == "locked"
        r = new(c, "text", ip="10.2.0.2")
        assert r.status_code == 403 and r.json()["error"] == "locked"
        page = requests.get(c.public + "/.palisade/challenge?kind=grid",
                            headers={"X-Palisade-Client-Ip": "10.2.0.2", "User-Agent": BROWSER_UA},
                            timeout=5)
        assert page.status_code == 403 and "Too many wrong answers" in page.text
        # Others are not affected.
        assert new(c, "text", ip="10.2.0.3").status_code == 200
        stats = c.stats()
        assert stats["lockouts"] == 1 and stats["expired"] == 1 and stats["locked_requests"] >= 3
        metrics = c.metrics()
        assert "palisade_companion_lockouts_total 1" in metrics
        assert 'palisade_companion_challenges_expired_total{kind="text"} 1' in metrics
        events = [e for e in c.log_events() if e.get("fields", {}).get("event") == "lockout"]
        assert len(events) == 1


@pytest.mark.parametrize("method,path,headers,body,status", [
    ("GET", "/.palisade/challenge?kind=image", {}, None, 400),
    ("GET", "/.palisade/challenge?difficulty=0", {}, None, 400),
    ("GET", "/.palisade/challenge?difficulty=" + "9" * 50, {}, None, 400),
    ("GET", "/.palisade/challenge?lang=xx", {}, None, 400),
    ("GET", "/.palisade/nothing", {}, None, 404),
    ("GET", "/elsewhere", {}, None, 404),
    ("DELETE", "/.palisade/challenge", {}, None, 405),
    ("GET", "/.palisade/verify", {}, None, 400),
    ("PUT", "/.palisade/verify", {}, None, 405),
    ("POST", "/.palisade/challenge/AAAAAAAAAAAAAAAAAAAAAA/verify",
     {"Content-Type": "text/plain"}, b"answer", 415),
    ("POST", "/.palisade/challenge/AAAAAAAAAAAAAAAAAAAAAA/verify",
     {"Content-Type": "application/json"}, b"{not json", 400),
    ("POST", "/.palisade/challenge/AAAAAAAAAAAAAAAAAAAAAA/verify",
     {"Content-Type": "application/json"}, b'{"answer": [1, 999]}', 400),
    ("POST", "/.palisade/challenge/AAAAAAAAAAAAAAAAAAAAAA/verify",
     {"Content-Type": "application/x-www-form-urlencoded"}, b"answer=\xff\xfe", 400),
    ("POST", "/.palisade/challenge/AAAAAAAAAAAAAAAAAAAAAA/verify",
     {"Content-Type": "application/json"}, b'{"answer": "' + b"a" * 20000 + b'"}', 413),
    ("POST", "/.palisade/verify", {"Content-Type": "application/json"}, b"[]", 400),
])
def test_bad_input_gets_a_4xx_with_a_reason(companion, method, path, headers, body, status):
    r = requests.request(method, companion.public + path, headers=headers, data=body, timeout=10)
    assert r.status_code == status, r.text
    assert r.json()["error"]
    assert companion.process.poll() is None


def test_pages_in_four_languages_without_javascript(companion):
    for lang, word in [("de-DE,de;q=0.9", "Weiter"), ("fr", "Continuer"), ("es", "Continuar"),
                       ("ja, en;q=0.5", "Continue")]:
        for kind in STORED_KINDS:
            r = requests.get(companion.public + "/.palisade/challenge", params={"kind": kind},
                             headers={"Accept-Language": lang, "User-Agent": BROWSER_UA}, timeout=10)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            assert word in r.text
            # The one script only records how the page is used; the form
            # is a plain POST that needs no script (the browser tests solve
            # each kind with JavaScript off).
            assert r.text.count("<script") == 1 and "how this page is solved" in r.text
            assert '<form method="post"' in r.text and " on" + "submit=" not in r.text
            if kind != "audio":
                assert "kind=audio" in r.text


def test_pow_through_the_companion(companion):
    """The companion's proof of work is the filter's: same Challenge API,
    and the companion verifies tickets either side issued."""
    from conftest import solve_pow

    r = new(companion, "pow")
    assert r.status_code == 200
    ch = r.json()["challenge"]
    assert ch["algorithm"] == "sha256" and r.json()["verify"] == "/.palisade/verify"
    nonce = solve_pow(ch["data"], ch["difficulty"])
    ok = requests.post(companion.public + "/.palisade/verify", json={"data": ch["data"], "nonce": nonce},
                       headers={"User-Agent": BROWSER_UA, "X-Palisade-Client-Ip": "10.1.0.1"}, timeout=10)
    assert ok.status_code == 200 and ok.json()["token"], ok.text


def test_sighup_reloads_and_refuses_a_bad_policy():
    p = policy()
    with start_companion(p) as c:
        text = json.loads(c.policy_path.read_text())
        text["challenge"]["difficulty"] = 4
        c.policy_path.write_text(json.dumps(text))
        os.kill(c.process.pid, signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline:
            r = requests.get(c.public + "/.palisade/challenge?kind=text", headers=JSON, timeout=5)
            if r.json()["difficulty"] == 4:
                break
            time.sleep(0.1)
        assert r.json()["difficulty"] == 4
        text["challenge"]["difficulty"] = 9
        c.policy_path.write_text(json.dumps(text))
        os.kill(c.process.pid, signal.SIGHUP)
        deadline = time.time() + 10
        while "reload refused" not in c.log() and time.time() < deadline:
            time.sleep(0.1)
        assert "challenge.difficulty: difficulty 9 is out of range 1-5" in c.log()
        r = requests.get(c.public + "/.palisade/challenge?kind=text", headers=JSON, timeout=5)
        assert r.json()["difficulty"] == 4 and c.process.poll() is None


def test_a_bad_policy_is_refused_at_start(tmp_path):
    p = policy()
    p["companion"]["retries"] = 0
    path = write_policy(p, tmp_path)
    out = cli("serve", "--config", path, check=False)
    assert out.returncode == 1
    assert "companion.retries: must be at least 1" in out.stderr


def test_replicas_share_one_redis():
    with start_redis() as url, start_companion(policy(), redis_url=url) as a, \
            start_companion(policy(), redis_url=url) as b:
        c = new(a, "grid", ip="10.3.0.1").json()
        right = answer_of(a, c)
        # Issued by A, answered at B, replayed at A.
        assert submit(b, c, right, ip="10.3.0.1").status_code == 200
        r = submit(a, c, right, ip="10.3.0.1")
        assert r.status_code == 403 and r.json()["error"] == "used"
        # Failures count across replicas: one at each locks out (retries 3: a third at A).
        c = new(a, "text", ip="10.3.0.2").json()
        w = wrong(a.answer(c["id"]))
        assert submit(a, c, w, ip="10.3.0.2").json()["error"] == "wrong_answer"
        assert submit(b, c, w, ip="10.3.0.2").json()["error"] == "wrong_answer"
        assert submit(a, c, w, ip="10.3.0.2").json()["error"] == "locked"
        assert new(b, "text", ip="10.3.0.2").json()["error"] == "locked"


def test_redis_down_means_503_and_no_unverifiable_answer():
    with start_redis() as url:
        companion_ctx = start_companion(policy(), redis_url=url)
        c = companion_ctx.__enter__()
        try:
            ch = new(c, "text", ip="10.4.0.1").json()
            right = c.answer(ch["id"])
        except Exception:
            companion_ctx.__exit__(None, None, None)
            raise
    # The `with` above stopped Redis; the companion is still up.
    try:
        r = new(c, "text", ip="10.4.0.1")
        assert r.status_code == 503 and r.headers["retry-after"] and r.json()["error"] == "unavailable"
        r = submit(c, ch, right, ip="10.4.0.1")
        assert r.status_code == 503 and "token" not in r.text
        h = requests.get(c.internal + "/healthz", timeout=5)
        assert h.status_code == 503 and "redis" in h.text.lower()
        assert 'palisade_companion_store_errors_total{store="redis"}' in c.metrics()
    finally:
        companion_ctx.__exit__(None, None, None)


def test_redis_down_with_pow_fallback():
    with start_redis() as url:
        ctx = start_companion(policy(store_unavailable="pow"), redis_url=url)
        c = ctx.__enter__()
    try:
        r = new(c, "grid", ip="10.4.1.1")
        assert r.status_code == 200 and r.json()["kind"] == "pow"
    finally:
        ctx.__exit__(None, None, None)


def test_redis_restarted_under_load_degrades_then_reconnects():
    """Challenges are issued in a loop while Redis goes away and comes back
    (empty: no persistence) on the same port. While it is away the
    companion answers 503 with Retry-After (`store_unavailable: unavailable`), never
    another error and never a challenge it could not check; once it is back
    the companion reconnects by itself, and an answer to a challenge Redis
    lost is refused, so no single-use promise is broken."""
    import threading
    import urllib.parse

    from conftest import free_port

    port = free_port()
    seen = []  # (time, status)
    stop_load = threading.Event()

    def load(companion):
        session = requests.Session()
        while not stop_load.is_set():
            try:
                r = session.get(companion.public + "/.palisade/challenge", params={"kind": "text"},
                                headers={**JSON, "X-Palisade-Client-Ip": "10.4.2.9"}, timeout=5)
                seen.append((time.monotonic(), r.status_code, r.headers.get("retry-after")))
            except requests.RequestException as e:
                seen.append((time.monotonic(), type(e).__name__, None))
            time.sleep(0.01)

    first = start_redis(port)
    url = first.__enter__()
    assert urllib.parse.urlparse(url).port == port
    try:
        with start_companion(policy(), redis_url=url) as c:
            before = new(c, "text", ip="10.4.2.1").json()
            right = c.answer(before["id"])
            worker = threading.Thread(target=load, args=(c,), daemon=True)
            worker.start()
            try:
                time.sleep(1)
                first.__exit__(None, None, None)
                first = None
                down_at = time.monotonic()
                time.sleep(2)
                restart_at = time.monotonic()
                with start_redis(port):
                    up_at = time.monotonic()
                    deadline = up_at + 15
                    while not any(t > up_at and s == 200 for t, s, _ in seen):
                        assert time.monotonic() < deadline, "no challenge issued 15 s after Redis came back"
                        time.sleep(0.1)
                    recovered = min(t for t, s, _ in seen if t > up_at and s == 200) - up_at
                    time.sleep(1)
                    stop_load.set()
                    worker.join(10)
                    # The challenge issued before the restart is gone with Redis.
                    r = submit(c, before, right, ip="10.4.2.1")
                    assert r.status_code in (403, 404, 410) and "token" not in r.text, r.text
                    assert r.json()["error"] in ("unknown", "expired"), r.text
            finally:
                stop_load.set()
    finally:
        if first is not None:
            first.__exit__(None, None, None)
    statuses = {s for _, s, _ in seen}
    assert statuses <= {200, 503}, statuses
    during = [(s, ra) for t, s, ra in seen if down_at + 0.5 < t < restart_at]
    assert during and all(s == 503 and ra for s, ra in during), [d for d in during if d[0] != 503 or not d[1]][:5]
    assert all(s == 200 for t, s, _ in seen if t > up_at + recovered + 0.5)
    print(f"redis restart: {len(seen)} requests, {len(during)} answered 503 while it was down, "
          f"challenges again {recovered:.2f} s after it came back")
