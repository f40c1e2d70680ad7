"""Learned scores in a real Envoy (two workers): the filter's asynchronous
reports, its per-client score cache, the blocking path on a login route,
and the rules-only fallback.

The companion's internal listener is played by a stand-in HTTP server in
this process (`ScoreStandIn`): `/healthz` answers 200 and `POST /score`
answers the wire format of src/scoring/wire.rs with scores the test
chooses per client, so every outcome is deterministic. The stand-in also
records every batch it receives, which is what the report-rate test counts.
"""
import json
import math
import re
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import admin_stats, free_port, next_client_ip, start_envoy, worker_connections

INTERVAL_MS = 500
BLOCKING_TIMEOUT_MS = 300

# No rules: the learned score alone decides (thresholds 50/70/90).
POLICY = {
    "client": {"source": "x_forwarded_for", "trusted_hops": 1},
    "tokens": {"keys": ["1:scoring-e2e-secret-0123456789abcdef"]},
    "companion": {"health_interval": "1s"},
    "annotate": {"upstream_headers": True},
    "scoring": {
        "enabled": True,
        "cache_ttl": "60s",
        "report_interval_ms": INTERVAL_MS,
        "report_batch": 16,
        "blocking_timeout_ms": BLOCKING_TIMEOUT_MS,
    },
    "routes": [
        {"name": "login", "match": {"path": "/login*"}, "score": "blocking", "login": True},
        {"name": "open", "match": {"path": "/open/*"}, "action": "allow"},
        {"name": "rules-only", "match": {"path": "/plain/*"}, "score": "off"},
    ],
}

HEADERS = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0", "Accept": "application/json"}


class ScoreStandIn:
    """The companion's internal listener, as far as the filter uses it."""

    def __init__(self):
        self.scores = {}       # client prefix -> score (None: no model)
        self.default = 10.0
        self.hang = set()      # clients whose /score answer comes after 2 s
        self.garbage = set()   # clients whose /score answer is not JSON
        self.batches = []      # (monotonic time, [client, ...])
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def gone(self):
                # After stop(): kept-alive connections outlive the listener,
                # so close them unanswered, as a dead process would.
                if not stand_in.running:
                    self.close_connection = True
                    return True
                return False

            def do_GET(self):
                if not self.gone():
                    self.reply(200 if self.path == "/healthz" else 404, b"ok")

            def do_POST(self):
                if self.gone():
                    return
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path != "/score":
                    return self.reply(404, b"{}")
                batch = json.loads(body)["batch"]
                clients = [q["client"] for q in batch]
                with stand_in.lock:
                    stand_in.batches.append((time.monotonic(), clients, batch))
                if any(c in stand_in.hang for c in clients):
                    time.sleep(2)
                if any(c in stand_in.garbage for c in clients):
                    return self.reply(200, b"<html>not a score</html>")
                scores = []
                for c in clients:
                    score = stand_in.scores.get(c, stand_in.default)
                    scores.append({"client": c, "score": score, "action": None, "model": "stand-in",
                                   "top_features": [{"feature": "rate_short", "value": 1.0, "points": 40.0}]})
                self.reply(200, json.dumps({"scores": scores}).encode())

            def reply(self, status, payload):
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except BrokenPipeError:
                    pass  # Envoy gave up waiting (the hanging client)

            def log_message(self, fmt, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # What render_config wants of a companion: its two ports.
        self.public_port = free_port()
        self.internal_port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.running = True

    def stop(self):
        if self.running:
            self.running = False
            self.server.shutdown()
            self.server.server_close()

    def clients_reported(self):
        with self.lock:
            return [c for _, clients, _ in self.batches for c in clients]

    def reports_of(self, ip):
        """The feature vectors reported for `ip`'s /32, oldest first."""
        with self.lock:
            return [q["features"] for _, _, batch in self.batches for q in batch
                    if q["client"] == f"{ip}/32"]


@pytest.fixture
def stand_in():
    s = ScoreStandIn()
    try:
        yield s
    finally:
        s.stop()


@contextmanager
def envoy_with(policy, echo_upstream, companion):
    """Envoy (two workers) with `policy`, once it has seen `companion` up."""
    with start_envoy(policy, echo_upstream, concurrency=2, companion=companion) as envoy:
        wait_until(lambda: score_stats(envoy).get("companion.up") == 1, 10, "the companion up")
        yield envoy


@pytest.fixture
def envoy(echo_upstream, stand_in):
    with envoy_with(POLICY, echo_upstream, stand_in) as envoy:
        yield envoy


def score_stats(envoy):
    """Palisade's stats without the `wasmcustom.palisade.` prefix."""
    return {k.split("palisade.", 1)[1]: v for k, v in admin_stats(envoy, r"palisade\.").items()}


def wait_until(check, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not {what} within {timeout}s")


def get(envoy, path, ip, **kwargs):
    return requests.get(envoy.url + path, headers={**HEADERS, "X-Forwarded-For": ip}, timeout=10, **kwargs)


def test_at_most_one_report_batch_per_interval(envoy, stand_in):
    """Many new clients on many connections (both workers): every one of
    them wants a report, yet batches arrive at most once per interval, each
    at most report_batch clients, and the rest are counted as dropped."""
    stop = time.time() + 4
    sent = []

    def traffic():
        with requests.Session() as session:
            while time.time() < stop:
                r = session.get(envoy.url + "/page", headers={**HEADERS, "X-Forwarded-For": next_client_ip()})
                sent.append(r.status_code)

    threads = [threading.Thread(target=traffic) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(INTERVAL_MS / 1000 * 2)
    times = [t for t, _, _ in stand_in.batches]
    assert len(times) >= 4, f"only {len(times)} batches"
    gaps = [b - a for a, b in zip(times, times[1:])]
    # The claim is by the filter's clock, the arrival by ours: allow a little jitter.
    assert min(gaps) >= INTERVAL_MS / 1000 * 0.8, gaps
    assert all(len(clients) <= 16 for _, clients, _ in stand_in.batches)
    assert set(sent) == {200}
    stats = score_stats(envoy)
    connections = worker_connections(envoy)
    assert len(connections) == 2 and all(connections.values()), connections
    assert stats["score.reports.sent"] == len(times)
    assert stats["score.reports.clients"] == sum(len(c) for _, c, _ in stand_in.batches)
    assert stats["score.reports.dropped"] > 0, "more clients than batches can carry"
    assert stats["score.reports.failed"] == 0
    # Each report is the request schema, in order.
    query = stand_in.batches[0][2][0]
    assert query["schema"] == "request-v1" and len(query["features"]) == 17


def test_a_cached_score_applies_from_the_next_request(envoy, stand_in):
    bot, person = next_client_ip(), next_client_ip()
    stand_in.scores[f"{bot}/32"] = 95.0
    stand_in.scores[f"{person}/32"] = 60.0
    # The first requests are decided on rules only (nothing cached yet).
    assert get(envoy, "/page", bot).status_code == 200
    assert get(envoy, "/page", person).status_code == 200
    wait_until(lambda: {f"{bot}/32", f"{person}/32"} <= set(stand_in.clients_reported()), 10, "reported")
    blocked = wait_until(lambda: get(envoy, "/page", bot).status_code == 403, 5, "blocked by its score")
    assert blocked
    # Monitored (60) requests pass, and the upstream sees the learned part.
    echo = get(envoy, "/page", person).json()["headers"]
    assert echo["x-palisade-action"] == "monitor"
    assert echo["x-palisade-score"] == "60; rules=0; model=60; top=rate_short"
    # On an `allow` route a 95 is only monitored, so the upstream sees it too.
    echo = get(envoy, "/open/x", bot).json()["headers"]
    assert echo["x-palisade-score"].startswith("95; rules=0; model=95")
    # A route with `score: off` ignores it.
    assert get(envoy, "/plain/x", bot).json()["headers"]["x-palisade-score"] == "0"
    # The score is not reported again while it is fresh.
    before = stand_in.clients_reported().count(f"{bot}/32")
    for _ in range(5):
        get(envoy, "/page", bot)
    time.sleep(INTERVAL_MS / 1000 * 3)
    assert stand_in.clients_reported().count(f"{bot}/32") == before
    stats = score_stats(envoy)
    assert stats.get("score.fallback.companion_down", 0) == 0


def test_rules_only_when_the_companion_is_down(envoy, stand_in):
    stand_in.stop()
    wait_until(lambda: score_stats(envoy).get("companion.up") == 0, 10, "the companion down")
    before = score_stats(envoy)
    ip = next_client_ip()
    for _ in range(5):
        r = get(envoy, "/page", ip)
        assert r.status_code == 200
        assert r.json()["headers"]["x-palisade-score"] == "0"
    # The blocking route does not wait for a companion known to be down.
    started = time.monotonic()
    assert get(envoy, "/login", ip).status_code == 200
    assert time.monotonic() - started < BLOCKING_TIMEOUT_MS / 1000
    time.sleep(INTERVAL_MS / 1000 * 3)
    after = score_stats(envoy)
    assert after["score.fallback.companion_down"] - before.get("score.fallback.companion_down", 0) == 6
    assert after["score.reports.sent"] == before["score.reports.sent"], "nothing sent while down"
    assert after["score.reports.dropped"] > before.get("score.reports.dropped", 0)


def test_the_blocking_path_on_a_login_route(envoy, stand_in):
    stuffer, slow, broken = next_client_ip(), next_client_ip(), next_client_ip()
    stand_in.scores[f"{stuffer}/32"] = 95.0
    # The first request waits for its score and gets the action at once.
    assert get(envoy, "/login", stuffer).status_code == 403
    asked = [clients for _, clients, _ in stand_in.batches if f"{stuffer}/32" in clients]
    assert asked == [[f"{stuffer}/32"]], "one single-client call"
    # The score is cached: the next request does not ask again.
    assert get(envoy, "/login", stuffer).status_code == 403
    assert stand_in.clients_reported().count(f"{stuffer}/32") == 1

    # A companion that does not answer in time: rules only, after about the timeout.
    stand_in.hang.add(f"{slow}/32")
    started = time.monotonic()
    r = get(envoy, "/login", slow)
    waited = time.monotonic() - started
    assert r.status_code == 200 and r.json()["headers"]["x-palisade-score"] == "0"
    assert BLOCKING_TIMEOUT_MS / 1000 * 0.9 <= waited < BLOCKING_TIMEOUT_MS / 1000 + 0.5, waited

    # An answer that is not the wire format: rules only, at once.
    stand_in.garbage.add(f"{broken}/32")
    assert get(envoy, "/login", broken).status_code == 200

    stats = score_stats(envoy)
    assert stats["score.fallback.timeout"] == 1
    assert stats["score.fallback.bad_answer"] == 1


def test_4xx_answers_and_failed_logins_reach_the_features(echo_upstream, stand_in):
    """A client blocked on the login route gets 403s there: its next report
    (due quickly with a one-second TTL) shows them as errors and failed
    logins. Palisade's own answers pass the response hook like the upstream's."""
    policy = json.loads(json.dumps(POLICY))
    policy["scoring"]["cache_ttl"] = "1s"
    names = ["rate_short", "rate_long", "burstiness", "timing_cv", "path_entropy", "asset_share",
             "error_share", "failed_logins"]
    ip = next_client_ip()
    stand_in.scores[f"{ip}/32"] = 95.0
    with envoy_with(policy, echo_upstream, stand_in) as envoy:
        for _ in range(3):
            assert get(envoy, "/login", ip).status_code == 403
        # Reports go out on requests: keep asking until the half-stale score is reported again.
        wait_until(lambda: get(envoy, "/login", ip).status_code == 403
                   and len(stand_in.reports_of(ip)) >= 2, 5, "reported again")
        first, later = stand_in.reports_of(ip)[0], stand_in.reports_of(ip)[-1]
        error_share, failed_logins = names.index("error_share"), names.index("failed_logins")
        assert first[error_share] == 0 and first[failed_logins] == 0
        assert later[error_share] > 0.5 and later[failed_logins] > 0


def test_4xx_answers_elsewhere_are_sampled_until_the_first_then_all_counted(echo_upstream, stand_in):
    """Off login routes the filter reads one answer's status in eight while
    a client has no recent error (reading it is a host call): a client whose
    answers turn into 403s is caught at the next sampled answer, and its
    reports count errors from then on."""
    policy = json.loads(json.dumps(POLICY))
    policy["scoring"]["cache_ttl"] = "1s"
    policy["routes"].insert(0, {"name": "closed", "match": {"path": "/closed/*"}, "action": "block"})
    error_share = 6  # in request-v1
    ip = next_client_ip()
    stand_in.scores[f"{ip}/32"] = 10.0
    with envoy_with(policy, echo_upstream, stand_in) as envoy:
        for _ in range(3):
            assert get(envoy, "/open/a", ip).status_code == 200
        for _ in range(8):
            assert get(envoy, "/closed/a", ip).status_code == 403
        wait_until(lambda: get(envoy, "/closed/a", ip).status_code == 403
                   and stand_in.reports_of(ip) and stand_in.reports_of(ip)[-1][error_share] > 0, 5,
                   "errors reported")


def test_requests_served_by_both_workers_all_reach_the_slot(echo_upstream, stand_in):
    """Each worker counts a busy client's requests in its own copy of the
    client's slot and folds them into the shared slot later (on its tick,
    or when the copy is full or old): after requests spread over both
    workers, the client's next report counts every one of them."""
    policy = json.loads(json.dumps(POLICY))
    policy["scoring"]["cache_ttl"] = "1s"
    history = 16  # in request-v1: ln(1 + requests seen) / ln(1001)
    ip = next_client_ip()
    with envoy_with(policy, echo_upstream, stand_in) as envoy:
        before = worker_connections(envoy)
        burst = 60
        for _ in range(burst):  # a connection each, so both workers serve some
            assert get(envoy, "/open/a", ip).status_code == 200
        after = worker_connections(envoy)
        assert all(after[w] > before.get(w, 0) for w in after), (before, after)
        # Once every copy is folded in (a tick) and the score is half stale
        # (half the TTL), the next request is reported with all of them.
        time.sleep(1.2)
        assert get(envoy, "/open/a", ip).status_code == 200
        want = math.log(1 + burst + 1) / math.log(1001)
        wait_until(lambda: any(abs(r[history] - want) < 1e-5 for r in stand_in.reports_of(ip)), 5,
                   f"a report counting all {burst + 1} requests")
        assert score_stats(envoy).get("score.slot_degraded", 0) == 0


def test_scoring_off_adds_nothing(echo_upstream, stand_in):
    policy = json.loads(json.dumps(POLICY))
    policy["scoring"] = {"enabled": False}
    for route in policy["routes"]:
        route.pop("score", None)
    with start_envoy(policy, echo_upstream, concurrency=2, companion=stand_in) as envoy:
        for _ in range(20):
            r = get(envoy, "/page", next_client_ip())
            assert r.status_code == 200 and r.json()["headers"]["x-palisade-score"] == "0"
        time.sleep(INTERVAL_MS / 1000 * 2)
        assert not [k for k in score_stats(envoy) if k.startswith("score.")]
    assert stand_in.batches == []


def test_the_real_companion_scores_what_envoy_reports(echo_upstream):
    """Real Envoy, the real companion and the shipped model: a client's
    features reach `/score` in a batch, the score comes back into its slot,
    and its next requests carry it, with the companion counting what it
    scored."""
    from conftest import ROOT, start_companion

    policy = json.loads(json.dumps(POLICY))
    policy["scoring"]["model"] = str(ROOT / "datasets" / "models" / "request.json")
    with start_companion(policy) as companion, envoy_with(policy, echo_upstream, companion) as envoy:
        client = next_client_ip()
        first = get(envoy, "/open/a", client).json()["headers"]["x-palisade-score"]
        assert first == "0", "a client's first request is decided on rules alone"

        def scored():
            header = get(envoy, "/open/b", client).json()["headers"]["x-palisade-score"]
            return header if "; model=" in header else None

        header = wait_until(scored, 10, "a learned score on a later request")
        assert re.match(r"^\d+; rules=0; model=\d+; top=[a-z_,]+$", header), header
        stats = companion.stats()["scoring"]
        assert stats["requests_scored"] >= 1, stats
        assert score_stats(envoy).get("score.reports.sent", 0) >= 1
