"""The companion's scoring API through the real companion: /score, /check,
/feedback, /stats and /train on the internal listener, the score in nginx's
/auth check, the records in SQLite, the rules-only fallback when the model
cannot be loaded, the guarded retrain refusing a poisoning attempt, and two
replicas sharing their scoring state through a real Redis.

The model, the training base and the held-out set are made here with
`palisade simulate` and `palisade train` (small, so the suite stays fast)."""
import json
import math
import sqlite3
import struct
import time

import pytest
import requests

from conftest import (BROWSER_HEADERS, cli, next_client_ip, policy_json, policy_without_scoring, redis_command,
                      start_companion, start_redis)

N_FEATURES = 17


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A logistic model trained on simulated traffic, its training base,
    a held-out set (other seed, other actor ranges) and other traffic to
    take labels from."""
    root = tmp_path_factory.mktemp("scoring-data")
    for name, args in [("train", ["--seed", "21"]), ("holdout", ["--seed", "22", "--variant", "holdout"]),
                       ("other", ["--seed", "23"])]:
        cli("simulate", "--clients", "80", "--duration", "10m", "--out", root / name, *args)
    model = root / "model.json"
    cli("train", "--schema", "request-v1", "--kind", "logistic", "--input",
        root / "train" / "features-request.jsonl", "--out", model)
    rows = [json.loads(line) for line in (root / "other" / "features-request.jsonl").read_text().splitlines()]
    return {"model": model, "base": root / "train" / "features-request.jsonl",
            "holdout": root / "holdout" / "features-request.jsonl",
            "bots": [r["features"] for r in rows if r["label"] == 1],
            "people": [r["features"] for r in rows if r["label"] == 0]}


def scoring_policy(data, **training):
    policy = policy_json()
    policy["scoring"] = {
        "enabled": True,
        "model": str(data["model"]),
        "records": {"sample": 1.0},
        "feedback": {"per_client": 3, "sources": {"operator": 400, "challenge": 400}},
        "training": {"base": str(data["base"]), "holdout": str(data["holdout"]), "min_labels": 5,
                     "shadow_scores": 0, "shadow_period": 0, **training},
    }
    return policy


@pytest.fixture(scope="module")
def companion(data):
    with start_companion(scoring_policy(data)) as c:
        yield c


@pytest.fixture(scope="module")
def rules_only():
    with start_companion(policy_without_scoring()) as c:
        yield c


def post(companion, path, body):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(companion.internal + path, data=data, timeout=30,
                         headers={"Content-Type": "application/json"})


def described(path, ip=None, user_agent=None, method="GET", headers=None):
    h = {k: v for k, v in BROWSER_HEADERS.items() if k != "User-Agent"}
    h.update(headers or {})
    return {"ip": ip or next_client_ip(), "path": path, "method": method, "host": "example.test",
            "user_agent": user_agent or BROWSER_HEADERS["User-Agent"], "headers": h}


# /score

def test_score_one_client_ordered_or_named(companion, data):
    r = post(companion, "/score", {"client": "192.0.2.0/24", "features": data["bots"][0]})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert 0 <= answer["score"] <= 100 and answer["client"] == "192.0.2.0/24"
    assert answer["action"] in ("allow", "monitor", "challenge", "block")
    assert answer["model"] and len(answer["top_features"]) == 3
    assert set(answer["top_features"][0]) == {"feature", "value", "points"}
    named = post(companion, "/score", {"features": {"user_agent": 1.0, "rate_short": 0.9}}).json()
    assert named["score"] is not None


def test_a_batch_is_answered_in_order(companion, data):
    batch = [{"client": f"198.51.100.{i}/32", "features": f} for i, f in enumerate(data["people"][:2] + data["bots"][:2])]
    r = post(companion, "/score", {"batch": batch})
    assert r.status_code == 200, r.text
    scores = r.json()["scores"]
    assert [s["client"] for s in scores] == [q["client"] for q in batch]
    single = [post(companion, "/score", q).json()["score"] for q in batch]
    assert [s["score"] for s in scores] == pytest.approx(single)


@pytest.mark.parametrize("body,reason", [
    ({"features": [0.5] * 3}, "3 values given"),
    ({"features": {"rate_shrt": 0.5}}, "unknown feature"),
    ({"features": [2.0] * N_FEATURES}, "outside 0"),
    ({"features": [0.5] * N_FEATURES, "schema": "log-v1"}, "not served here"),
    ({"features": [0.5] * N_FEATURES, "extra": 1}, "unknown field"),
    ({"batch": [{"features": [0.5] * N_FEATURES}] * 1025}, "at most 1024"),
    ({"batch": [{"features": [0.5] * N_FEATURES}, {"features": [0.1]}]}, "batch[1]"),
    ("{not json", "invalid JSON"),
    ({}, "features"),
])
def test_score_bad_input_is_a_400_with_the_reason(companion, body, reason):
    r = post(companion, "/score", body)
    assert r.status_code == 400, r.text
    assert reason in r.json()["error"], r.json()


def test_other_methods_get_a_json_405(companion):
    r = requests.get(companion.internal + "/score", timeout=10)
    assert r.status_code == 405 and "error" in r.json()


# /check

@pytest.mark.parametrize("body,reason", [
    ({"ip": "192.0.2.1"}, "path"),
    ({"ip": "not-an-ip", "path": "/"}, "ip"),
    ({"ip": "192.0.2.1", "path": "relative"}, "must start with /"),
    ({"ip": "192.0.2.1", "path": "/", "method": "GE T"}, "method"),
    ({"ip": "192.0.2.1", "path": "/", "headers": {"bad name": "x"}}, "not a header name"),
    ({"ip": "192.0.2.1", "path": "/", "cookie": "x"}, "unknown field"),
])
def test_check_bad_input_is_a_400_with_the_reason(companion, body, reason):
    r = post(companion, "/check", body)
    assert r.status_code == 400, r.text
    assert reason in r.json()["error"], r.json()


def explain_action(companion, body):
    args = ["explain", "--config", companion.policy_path, "--path", body["path"], "--ip", body["ip"],
            "--json", "--host", body["host"], "--method", body["method"],
            "-H", f"User-Agent: {body['user_agent']}"]
    for name, value in body["headers"].items():
        args += ["-H", f"{name}: {value}"]
    return json.loads(cli(*args).stdout)


@pytest.mark.parametrize("path,ua", [("/", None), ("/admin/", None), ("/login", None),
                                     ("/protected/x", "curl/8.5.0"), ("/demo/audio", None),
                                     ("/public/a", "python-requests/2.31")])
def test_check_decides_as_explain_does(rules_only, path, ua):
    body = described(path, user_agent=ua)
    r = post(rules_only, "/check", body)
    assert r.status_code == 200, r.text
    answer, explained = r.json(), explain_action(rules_only, body)
    assert answer["action"] == explained["action"], (answer, explained)
    assert answer["score"] == explained["score"] and answer["rule_score"] == explained["score"]
    assert answer["model_score"] is None and answer["top_features"] == []
    assert answer["reasons"]["route"] == explained["route"]
    assert [r["name"] for r in answer["reasons"]["rules"]] == [r["name"] for r in explained["rules"]]


def test_check_with_scoring_gives_the_score_its_parts_and_reasons(companion):
    body = described("/protected/x", user_agent="curl/8.5.0")
    answer = post(companion, "/check", body).json()
    # Rules alone challenge it; the learned score may raise that to a block.
    assert explain_action(companion, body)["action"] == "challenge"
    assert 0 <= answer["model_score"] <= 100 and answer["model"] and answer["enforced"]
    assert answer["score"] == max(answer["rule_score"], round(answer["model_score"]))
    assert answer["action"] == ("block" if answer["score"] >= 90 else "challenge")
    assert len(answer["top_features"]) == 3
    assert "tool-or-no-accept-language" in [r["name"] for r in answer["reasons"]["rules"]]
    blocked = post(companion, "/check", described("/admin/x")).json()
    assert blocked["action"] == "block" and blocked["status"] == 403


def test_a_client_checked_like_a_machine_scores_higher_than_a_browsing_person(companion):
    machine, person = next_client_ip(), next_client_ip()
    for i in range(40):
        last_machine = post(companion, "/check", described(f"/items/{i}", ip=machine, user_agent="Go-http-client/1.1",
                                                         headers={"Accept": "*/*"})).json()
    for path in ["/", "/static/app.css", "/static/app.js", "/img/logo.png", "/public/a", "/static/a.css"]:
        last_person = post(companion, "/check", described(path, ip=person,
                                                        headers={"Referer": "http://example.test/"})).json()
    assert last_machine["model_score"] > last_person["model_score"], (last_machine, last_person)


# /auth (nginx's check) with scoring

def test_auth_applies_the_score_from_the_clients_next_request_as_envoy_does(companion):
    ip = next_client_ip()

    def check():
        r = requests.get(companion.internal + "/auth", timeout=10, headers={
            **BROWSER_HEADERS, "X-Original-URI": "/public/x", "X-Original-Method": "GET",
            "X-Real-IP": "127.0.0.1", "X-Forwarded-For": ip, "Host": "example.test"})
        assert r.status_code == 204 and r.content == b""
        return r.headers["x-palisade-score"]

    # The first request is decided on rules alone, as the filter decides a
    # client's first request before any report came back.
    assert check() == "0"
    score = check()
    assert "; rules=" in score and "; model=" in score and "; top=" in score, score


# /feedback

@pytest.mark.parametrize("body,status,reason", [
    ({"client": "192.0.2.0/24", "label": "robot", "source": "operator"}, 400, "label"),
    ({"client": "192.0.2.0/24", "label": "bot"}, 400, "source"),
    ({"client": "192.0.2.0/24", "label": "bot", "source": "anyone"}, 400, "not one of"),
    ({"label": "bot", "source": "operator"}, 400, "one of `client` or `ip`"),
    ({"client": "nonsense", "label": "bot", "source": "operator"}, 400, "not a prefix"),
    ({"client": "192.0.2.0/24", "label": "bot", "source": "operator", "features": [0.5]}, 400, "1 values given"),
    ({"ip": "203.0.113.250", "label": "bot", "source": "operator"}, 404, "give its `features`"),
])
def test_feedback_bad_input_is_a_4xx_with_the_reason(companion, body, status, reason):
    r = post(companion, "/feedback", body)
    assert r.status_code == status, r.text
    assert reason in r.json()["error"], r.json()


def test_feedback_labels_a_clients_current_features_and_is_capped(companion):
    ip = next_client_ip()
    post(companion, "/check", described("/public/a", ip=ip, user_agent="curl/8.5.0"))
    statuses = [post(companion, "/feedback", {"ip": ip, "label": "bot", "source": "operator"}).status_code
                for _ in range(4)]
    assert statuses == [202, 202, 202, 429]
    capped = post(companion, "/feedback", {"ip": ip, "label": "bot", "source": "operator"}).json()
    assert "labelled 3 times" in capped["error"]
    deadline = time.time() + 5
    while True:
        db = sqlite3.connect(companion.data_dir / "scoring.sqlite3")
        try:
            rows = db.execute("SELECT source, bot, features FROM labels WHERE client = ?", (f"{ip}/32",)).fetchall()
            reputation = db.execute("SELECT bot_labels FROM reputation WHERE client = ?", (f"{ip}/32",)).fetchone()
        finally:
            db.close()
        if len(rows) == 3 or time.time() > deadline:
            break
        time.sleep(0.05)
    assert len(rows) == 3 and reputation == (3,)
    assert all(source == "operator" and bot == 1 and len(json.loads(f)) == N_FEATURES for source, bot, f in rows)


# /stats, metrics and records

def test_stats_and_metrics_count_the_scores(companion):
    post(companion, "/check", described("/admin/stats-test"))
    stats = companion.stats()["scoring"]
    assert stats["requests_scored"] > 0 and stats["model"]
    assert stats["by_action"]["block"] >= 1 and 0 <= stats["bot_share"] <= 1
    assert stats["unique_clients"] >= 1 and stats["model_error"] is None
    for key in ("training_examples", "blocked_clients", "shadow_candidate", "promotions", "rejections"):
        assert key in stats, stats
    metrics = companion.metrics()
    for name in ("palisade_companion_scores_bucket", "palisade_companion_scored_total",
                 'palisade_companion_model_loads_total{outcome="ok"}', "palisade_companion_feedback_total"):
        assert name in metrics, name


def test_scored_requests_are_sampled_with_their_features(companion):
    ip = next_client_ip()
    post(companion, "/check", described("/admin/sampled", ip=ip))
    deadline = time.time() + 5
    while True:
        db = sqlite3.connect(companion.data_dir / "scoring.sqlite3")
        try:
            sample = db.execute("SELECT action, score, features FROM samples WHERE client = ?", (f"{ip}/32",)).fetchone()
            blocks = db.execute("SELECT blocks FROM reputation WHERE client = ?", (f"{ip}/32",)).fetchone()
        finally:
            db.close()
        if (sample and blocks) or time.time() > deadline:
            break
        time.sleep(0.05)
    assert sample[0] == "block" and 0 <= sample[1] <= 100 and len(json.loads(sample[2])) == N_FEATURES
    assert blocks == (1,)


# A model that cannot be served

def test_a_bad_model_leaves_the_companion_on_rules_only(tmp_path, data):
    bad = tmp_path / "model.json"
    model = json.loads(data["model"].read_text())
    model["schema"]["name"] = "log-v1"
    bad.write_text(json.dumps(model))
    policy = scoring_policy(data)
    policy["scoring"]["model"] = str(bad)
    with start_companion(policy) as c:
        score = post(c, "/score", {"features": [0.5] * N_FEATURES}).json()
        assert score["score"] is None and score["action"] is None and score["model"] is None
        answer = post(c, "/check", described("/public/x")).json()
        assert answer["action"] == "allow" and answer["model_score"] is None
        stats = c.stats()["scoring"]
        assert 'trained on schema "log-v1"' in stats["model_error"] and stats["unscored"] >= 1
        assert 'palisade_companion_model_loads_total{outcome="failed"} 1' in c.metrics()
        assert any(e.get("fields", {}).get("event") == "model_refused" for e in c.log_events())


# /train: the guarded retrain

def wait_for_job(companion, timeout=120):
    deadline = time.time() + timeout
    while True:
        job = requests.get(companion.internal + "/train", timeout=10).json()
        if job["status"] != "running" or time.time() > deadline:
            return job
        time.sleep(0.2)


def test_train_without_enough_labels_trains_nothing(data):
    with start_companion(scoring_policy(data, min_labels=1000)) as c:
        assert requests.get(c.internal + "/train", timeout=10).status_code == 404
        r = post(c, "/train", b"")
        assert r.status_code == 202 and r.json()["status"] == "running"
        job = wait_for_job(c)
        assert job["status"] == "too_few_labels", job


def test_poisoning_through_feedback_is_refused_and_the_served_score_stays(data):
    """An attacker labels its bots' behaviour as human from many addresses
    (as many as the caps allow): the candidate is refused on the held-out
    set, and the served model scores the attacker's behaviour as before."""
    with start_companion(scoring_policy(data)) as c:
        probe = data["bots"][:50]
        before = post(c, "/score", {"batch": [{"features": f} for f in probe]}).json()["scores"]
        accepted = 0
        for i, features in enumerate(data["bots"][:390]):
            r = post(c, "/feedback", {"client": f"100.64.{i // 3}.0/24", "label": "human",
                                      "source": "challenge", "features": features})
            accepted += r.status_code == 202
        assert accepted == 390
        assert post(c, "/train", b"").status_code == 202
        assert post(c, "/train", b"").status_code in (409, 202)
        job = wait_for_job(c)
        assert job["status"] == "rejected", job
        assert job["evaluation"]["labels_used"] == 390 and job["evaluation"]["label_scale"]["human"] < 1
        after = post(c, "/score", {"batch": [{"features": f} for f in probe]}).json()["scores"]
        assert [a["score"] for a in after] == [b["score"] for b in before]
        stats = c.stats()["scoring"]
        assert stats["rejections"] == 1 and stats["promotions"] == 0 and stats["shadow_candidate"] is None
        db = sqlite3.connect(c.data_dir / "scoring.sqlite3")
        try:
            assert db.execute("SELECT state FROM checkpoints").fetchall() == [("rejected",)]
        finally:
            db.close()


def test_honest_labels_pass_and_are_promoted_after_the_shadow_period(data):
    # Looser on the operating point than the defaults: a small logistic
    # model retrained on this small base moves its thresholds' crossing.
    policy = scoring_policy(data, max_challenged_rise=0.1, max_missed_rise=0.1, shadow_scores=3)
    with start_companion(policy) as c:
        served = c.stats()["scoring"]["model"]
        labelled = [(f, "human") for f in data["people"][:30]] + [(f, "bot") for f in data["bots"][:30]]
        for i, (features, label) in enumerate(labelled):
            r = post(c, "/feedback", {"client": f"100.65.{i // 3}.0/24", "label": label, "source": "operator",
                                      "features": features})
            assert r.status_code == 202, r.text
        post(c, "/train", b"")
        job = wait_for_job(c)
        assert job["status"] == "shadow", job
        stats = c.stats()["scoring"]
        assert stats["shadow_candidate"]["checkpoint"] == job["checkpoint"] and stats["model"] == served
        # In shadow mode: scored alongside, not served.
        checked = post(c, "/check", described("/public/shadow")).json()
        assert checked["shadow_candidate_score"] is not None and checked["model"] == served
        for _ in range(3):
            post(c, "/score", {"features": data["people"][0]})
        stats = c.stats()["scoring"]
        assert stats["promotions"] == 1 and stats["shadow_candidate"] is None
        assert stats["model"] != served and "retrain" in stats["model"]


# Replicas sharing scoring state through Redis (docs/scoring.md, "Replicas")

def replica_policy(data):
    """Honest labels pass this policy's guard (as in the test above), a
    passing candidate is promoted at once, and replicas look for each
    other's promotions every second."""
    policy = scoring_policy(data, max_challenged_rise=0.1, max_missed_rise=0.1, sync_interval=1)
    policy["scoring"]["feedback"]["sources"]["probe"] = 2
    return policy


@pytest.fixture(scope="module")
def replicas(data):
    """Two companions sharing one real redis-server: (url, a, b)."""
    with start_redis() as url, start_companion(replica_policy(data), redis_url=url) as a, \
            start_companion(replica_policy(data), redis_url=url) as b:
        yield url, a, b


@pytest.fixture
def shared(replicas):
    """The replicas, with Redis emptied first so each test starts afresh."""
    redis_command(replicas[0], "FLUSHALL")
    return replicas


def fnv1a(text):
    h = 0xcbf29ce484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001b3) % (1 << 64)
    return h


def client_record(url, prefix):
    """The client's shared record: its tag, requests seen and cached score
    (src/companion/scoring/shared.rs, `encode`)."""
    raw = redis_command(url, "GET", f"palisade:score:client:{fnv1a(prefix):016x}")
    assert raw is not None, f"no shared record for {prefix}"
    tag, _last_ns, seen = struct.unpack_from("<QQI", raw, 1)
    return {"tag": tag, "seen": seen, "ttl_ms": redis_command(url, "PTTL", f"palisade:score:client:{tag:016x}")}


def shared_labels(url):
    """The labels in the shared stream, oldest first."""
    return [json.loads(dict(zip(fields[::2], fields[1::2]))[b"label"])
            for _, fields in redis_command(url, "XRANGE", "palisade:score:labels", "-", "+")]


def machine(path, ip):
    return described(path, ip=ip, user_agent="Go-http-client/1.1", headers={"Accept": "*/*"})


def test_a_clients_behaviour_counted_on_one_replica_is_scored_on_the_other(shared):
    url, a, b = shared
    ip = next_client_ip()
    for i in range(30):
        assert post(a, "/check", machine(f"/items/{i}", ip)).status_code == 200
    record = client_record(url, f"{ip}/32")
    assert record["seen"] == 30 and 0 < record["ttl_ms"] <= 30 * 60 * 1000
    # B has never seen this client: its 31st request is counted on the
    # shared state, and B can label the client's last features.
    answer = post(b, "/check", machine("/items/30", ip)).json()
    assert answer["model_score"] is not None
    assert client_record(url, f"{ip}/32")["seen"] == 31
    r = post(b, "/feedback", {"ip": ip, "label": "bot", "source": "operator"})
    assert r.status_code == 202, r.text
    [label] = shared_labels(url)
    assert label["client"] == f"{ip}/32" and len(label["features"]) == N_FEATURES
    # `history`, the last feature: ln(1 + requests seen) / ln(1001).
    assert label["features"][-1] == pytest.approx(math.log(32) / math.log(1001), abs=1e-4)
    fresh = post(b, "/check", machine("/items/0", next_client_ip())).json()
    assert fresh["model_score"] != answer["model_score"]


def test_label_caps_hit_on_one_replica_refuse_on_the_other(shared, data):
    _, a, b = shared
    client = "100.66.0.0/24"
    for _ in range(3):
        r = post(a, "/feedback", {"client": client, "label": "bot", "source": "operator",
                                  "features": data["bots"][0]})
        assert r.status_code == 202, r.text
    r = post(b, "/feedback", {"client": client, "label": "bot", "source": "operator", "features": data["bots"][0]})
    assert r.status_code == 429 and "labelled 3 times" in r.json()["error"]
    # The source "probe" may give 2 labels a window, whichever replica takes them.
    for replica, other in ((a, "100.66.1.0/24"), (b, "100.66.2.0/24")):
        r = post(replica, "/feedback", {"client": other, "label": "human", "source": "probe",
                                        "features": data["people"][0]})
        assert r.status_code == 202, r.text
    r = post(a, "/feedback", {"client": "100.66.3.0/24", "label": "human", "source": "probe",
                              "features": data["people"][0]})
    assert r.status_code == 429 and "source \"probe\" has given its 2 labels" in r.json()["error"]


def test_labels_and_reputation_from_one_replica_train_and_count_on_the_other(shared, data):
    """Labels given on A train a candidate on B; B promotes it, and A
    serves it after its next look (every second here)."""
    url, a, b = shared
    served = a.stats()["scoring"]["model"]
    labelled = [(f, "human") for f in data["people"][:30]] + [(f, "bot") for f in data["bots"][:30]]
    for i, (features, label) in enumerate(labelled):
        r = post(a, "/feedback", {"client": f"100.65.{i // 3}.0/24", "label": label, "source": "operator",
                                  "features": features})
        assert r.status_code == 202, r.text
    blocked = next_client_ip()
    assert post(a, "/check", described("/admin/x", ip=blocked)).json()["action"] == "block"
    stats = b.stats()["scoring"]
    assert stats["counts_from"] == "redis" and stats["training_examples"] == 60
    assert stats["blocked_clients"] == 1 and stats["clients_with_reputation"] == 21
    reputation = redis_command(url, "HGETALL", f"palisade:score:reputation:{blocked}/32")
    reputation = dict(zip(reputation[::2], reputation[1::2]))
    assert reputation[b"blocks"] == b"1"

    assert post(b, "/train", b"").status_code == 202
    job = wait_for_job(b)
    assert job["status"] == "shadow", job
    assert job["evaluation"]["labels"] == 60 and job["evaluation"]["labels_from"] == "redis"
    promoted = b.stats()["scoring"]
    assert promoted["promotions"] == 1 and promoted["model"] != served and "retrain" in promoted["model"]
    assert redis_command(url, "KEYS", "palisade:score:promoted:*")
    deadline = time.time() + 10
    while a.stats()["scoring"]["model"] != promoted["model"]:
        assert time.time() < deadline, (a.stats()["scoring"], a.log()[-2000:])
        time.sleep(0.2)
    followed = a.stats()["scoring"]
    assert followed["checkpoint"] is not None and followed["promotions"] == 0
    assert any(e.get("fields", {}).get("event") == "model_followed" for e in a.log_events())
    # A keeps it in its own records, so a restart serves it without Redis.
    db = sqlite3.connect(a.data_dir / "scoring.sqlite3")
    try:
        assert db.execute("SELECT state FROM checkpoints WHERE id = ?", (followed["checkpoint"],)).fetchone() == \
            ("promoted",)
    finally:
        db.close()
    assert post(a, "/check", described("/public/followed")).json()["model"] == promoted["model"]


def test_with_redis_gone_checks_count_locally_and_the_fallback_is_counted(data):
    redis = start_redis()
    url = redis.__enter__()
    try:
        with start_companion(replica_policy(data), redis_url=url) as a:
            ip = next_client_ip()
            assert post(a, "/check", machine("/items/0", ip)).status_code == 200
            assert client_record(url, f"{ip}/32")["seen"] == 1
            redis.__exit__(None, None, None)
            redis = None
            for i in range(1, 4):
                r = post(a, "/check", machine(f"/items/{i}", ip))
                assert r.status_code == 200 and r.json()["model_score"] is not None, r.text
            r = post(a, "/feedback", {"ip": ip, "label": "bot", "source": "operator"})
            assert r.status_code == 202, r.text
            assert a.stats()["scoring"]["counts_from"] == "local"
            metrics = a.metrics()
            for part in ("clients", "caps", "labels"):
                assert f'palisade_companion_scoring_fallbacks_total{{part="{part}"}}' in metrics, part
            assert any(e.get("fields", {}).get("event") == "scoring_redis_failing" for e in a.log_events())
            # The label is kept in this replica's records.
            deadline = time.time() + 5
            while True:
                db = sqlite3.connect(a.data_dir / "scoring.sqlite3")
                try:
                    n = db.execute("SELECT COUNT(*) FROM labels WHERE client = ?", (f"{ip}/32",)).fetchone()[0]
                finally:
                    db.close()
                if n == 1 or time.time() > deadline:
                    break
                time.sleep(0.05)
            assert n == 1
    finally:
        if redis is not None:
            redis.__exit__(None, None, None)
