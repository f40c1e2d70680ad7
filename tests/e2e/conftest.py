"""Harness for the end-to-end tests: a real Envoy with the Palisade filter in
front of the demo echo upstream, on free 127.0.0.1 ports.

Everything a test starts is stopped by the fixture that started it, even
when the test fails. `make e2e` builds the CLI and the wasm module first.
"""
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "target" / "release" / "palisade"
WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "palisade.wasm"
ENVOY = ROOT / ".venv" / "bin" / "envoy"
DEMO_POLICY = ROOT / "envoy" / "demo-policy.yaml"

sys.path.insert(0, str(ROOT / "envoy"))
sys.path.insert(0, str(ROOT / "scripts"))
import render_envoy  # noqa: E402  scripts/render_envoy.py
import render_nginx  # noqa: E402  scripts/render_nginx.py
import upstream  # noqa: E402  the demo upstream, envoy/upstream.py


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def policy_json(path=DEMO_POLICY):
    """A policy file as a dict, through `palisade policy-json` (validates it)."""
    out = subprocess.run([str(CLI), "policy-json", str(path)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def policy_without_scoring(path=DEMO_POLICY):
    """A policy as a dict with learned scores (and the second look at
    challenge answers) switched off: for tests of the rules alone, and of
    challenge kinds driven by WebDriver, which announces itself and answers
    at machine speed (test_interaction_browser.py tests the second look)."""
    policy = policy_json(path)
    policy.setdefault("scoring", {})["enabled"] = False
    for route in policy.get("routes", []):
        route.pop("score", None)
    return policy


class EchoServer(ThreadingHTTPServer):
    # socketserver's default backlog of 5 refuses connections when a test
    # opens dozens at once on a loaded machine, and Envoy then answers 503.
    request_queue_size = 128


@pytest.fixture(scope="session")
def echo_upstream():
    """The demo echo upstream, in a thread of the test process."""
    server = EchoServer(("127.0.0.1", 0), upstream.Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class Envoy:
    def __init__(self, process, port, admin_port, log_path):
        self.process = process
        self.port = port
        self.admin_port = admin_port
        self.url = f"http://127.0.0.1:{port}"
        self.admin = f"http://127.0.0.1:{admin_port}"
        self.log_path = log_path

    def log(self):
        return Path(self.log_path).read_text(errors="replace")

    def stats(self):
        """Palisade's counters from the admin /stats page, as {name: value}."""
        return admin_stats(self, "palisade")

    def alive(self):
        return self.process.poll() is None


def render_config(policy, upstream_port, port, admin_port, template=None, companion=None):
    """envoy/demo.yaml (or `template`, a path) with `policy` (a dict, or raw
    configuration text). The companion clusters point at `companion` (a
    Companion), else at free ports where nothing listens: the filter then
    finds the companion down and serves proof of work itself."""
    text = policy if isinstance(policy, str) else json.dumps(policy)
    template = Path(template or ROOT / "envoy" / "demo.yaml").read_text()
    ports = ((companion.public_port, companion.internal_port) if companion
             else (free_port(), free_port()))
    return render_envoy.render(template, text, str(WASM), port, admin_port, upstream_port, *ports)


@contextlib.contextmanager
def start_envoy(policy, upstream_port, concurrency=2, env=None, expect_ready=True, timeout=30,
                template=None, companion=None):
    """Starts Envoy with `policy` (a dict, or raw text for the plugin
    configuration) and stops it on exit. With expect_ready, waits until the
    listener answers."""
    port, admin_port = free_port(), free_port()
    workdir = tempfile.mkdtemp(prefix="palisade-e2e-")
    config = Path(workdir) / "envoy.yaml"
    config.write_text(render_config(policy, upstream_port, port, admin_port, template, companion))
    log_path = Path(workdir) / "envoy.log"
    log = open(log_path, "w")
    process = subprocess.Popen(
        [str(ENVOY), "-c", str(config), "--concurrency", str(concurrency),
         "--use-dynamic-base-id", "--log-level", "info", "--disable-hot-restart"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
    )
    envoy = Envoy(process, port, admin_port, log_path)
    try:
        deadline = time.time() + timeout
        wait_for_200(process, envoy.admin + "/ready", timeout, "envoy", envoy.log)
        if expect_ready:
            while time.time() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
        yield envoy
    finally:
        stop(process)
        log.close()


def stop(process):
    """Stops a child process: politely, then for sure."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def demo_policy():
    return policy_json()


@pytest.fixture(scope="module")
def demo_envoy(echo_upstream, demo_policy):
    """Envoy with the demo policy, shared by a test module."""
    with start_envoy(demo_policy, echo_upstream) as envoy:
        yield envoy


# Helpers for the rate-limit, memory and browser tests.

def admin_stats(envoy, regex=""):
    """Every numeric stat on the admin /stats page whose name matches
    `regex` (Envoy's `filter` parameter), as {name: value}."""
    import urllib.parse

    query = "?filter=" + urllib.parse.quote(regex) if regex else ""
    with urllib.request.urlopen(envoy.admin + "/stats" + query) as r:
        text = r.read().decode()
    stats = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        if value.strip().isdigit():
            stats[name.strip()] = int(value)
    return stats


def worker_connections(envoy):
    """Downstream connections each worker accepted on the listener:
    {"worker_0": n, "worker_1": m, ...}."""
    out = {}
    for name, value in admin_stats(envoy, r"^listener\..*\.worker_\d+\.downstream_cx_total$").items():
        worker = name.split(".")[-2]
        out[worker] = out.get(worker, 0) + value
    return out


def envoy_memory(envoy):
    """Envoy's memory: the admin /memory figures (tcmalloc: `allocated`,
    `heap_size`, ...) as ints, plus `rss` and `rss_anon` (bytes, from
    /proc), which also count what tcmalloc does not see (V8's wasm memory)."""
    with urllib.request.urlopen(envoy.admin + "/memory") as r:
        memory = {k: int(v) for k, v in json.loads(r.read()).items()}
    status = Path(f"/proc/{envoy.process.pid}/status").read_text()
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon"):
            memory["rss" if key == "VmRSS" else "rss_anon"] = int(value.split()[0]) * 1024
    return memory


@contextlib.contextmanager
def start_envoy_edited(policy, upstream_port, edit, **kwargs):
    """start_envoy, with the rendered Envoy configuration passed through
    `edit` (text -> text) first, e.g. to answer without an upstream."""
    global render_config
    original = render_config
    render_config = lambda *args, **kw: edit(original(*args, **kw))  # noqa: E731
    try:
        with contextlib.ExitStack() as stack:
            try:
                envoy = stack.enter_context(start_envoy(policy, upstream_port, **kwargs))
            finally:
                render_config = original
            yield envoy
    finally:
        render_config = original


def without_upstream(config):
    """An edit for start_envoy_edited: Envoy answers 200 `ok` itself instead
    of proxying, and writes no access log (for load tests)."""
    route = "route: {cluster: upstream}"
    assert route in config and "access_log:" in config
    config = config.replace(route, 'direct_response: {status: 200, body: {inline_string: "ok"}}')
    lines = config.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "access_log:")
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines) and (len(lines[end]) - len(lines[end].lstrip()) > indent
                                or lines[end].lstrip().startswith("- ")
                                and len(lines[end]) - len(lines[end].lstrip()) >= indent):
        end += 1
    return "\n".join(lines[:start] + lines[end:]) + "\n"


# Helpers for the action, challenge and configuration tests.

BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")
# What Chrome 131 sends besides its user agent. Envoy listens on 127.0.0.1,
# a loopback host, which browsers treat as secure: they send Sec-Fetch-* and
# client hints there, and the demo policy expects them (header_anomalies).
BROWSER_HEADERS = {
    "User-Agent": BROWSER_UA,
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.9",
    "sec-ch-ua": '"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"',
    "sec-ch-ua-mobile": "?0",
    "sec-ch-ua-platform": '"Linux"',
    "Sec-Fetch-Site": "none",
    "Sec-Fetch-Mode": "navigate",
}
GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

_client_numbers = iter(range(1, 1 << 16))


def next_client_ip():
    """A client address no other test in this session has used (10.77.x.y),
    to send as X-Forwarded-For so rate limits and bindings don't interfere."""
    n = next(_client_numbers)
    return f"10.77.{n >> 8}.{n & 255}"


def google_crawler_ip():
    """An address inside the first range of datasets/networks/google-crawlers.txt."""
    import ipaddress

    for line in (ROOT / "datasets" / "networks" / "google-crawlers.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            net = ipaddress.ip_network(line)
            if net.version == 4:
                return str(net.network_address + 1)
    raise AssertionError("no IPv4 range in google-crawlers.txt")


def leading_zero_bits(digest):
    bits = 0
    for byte in digest:
        if byte:
            return bits + 8 - byte.bit_length()
        bits += 8
    return bits


def solve_pow(data, bits):
    """The smallest decimal nonce with at least `bits` leading zero bits of
    SHA-256(data + nonce), as the challenge page computes it."""
    import hashlib

    prefix = hashlib.sha256(data.encode())
    n = 0
    while True:
        h = prefix.copy()
        h.update(str(n).encode())
        if leading_zero_bits(h.digest()) >= bits:
            return str(n)
        n += 1


def prometheus_stats(envoy):
    """Untagged series from the admin /stats/prometheus page, as {name: value}."""
    with urllib.request.urlopen(envoy.admin + "/stats/prometheus") as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def wait_for_log(envoy, needle, timeout=5.0):
    """The first Envoy log line containing `needle`, waiting up to `timeout`."""
    deadline = time.time() + timeout
    while True:
        for line in envoy.log().splitlines():
            if needle in line:
                return line
        if time.time() > deadline:
            raise AssertionError(f"no log line with {needle!r} in {timeout}s:\n{envoy.log()[-3000:]}")
        time.sleep(0.05)


def write_policy(policy, directory=None):
    """Writes a policy dict as a JSON file (which the CLI reads as YAML) and returns its path."""
    directory = Path(directory or tempfile.mkdtemp(prefix="palisade-e2e-policy-"))
    path = directory / f"policy-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(policy))
    return path


def cli(*args, env=None, check=True):
    """Runs target/release/palisade with os.environ updated by `env` (a value
    of None removes the variable); returns the CompletedProcess (text)."""
    environ = {**os.environ, **(env or {})}
    environ = {k: v for k, v in environ.items() if v is not None}
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, check=check,
                          env=environ)


# The companion service (`palisade serve`).

class Companion:
    def __init__(self, process, public_port, internal_port, data_dir, log_path, policy_path,
                 redis_url=None):
        self.process = process
        self.public_port = public_port
        self.internal_port = internal_port
        self.public = f"http://127.0.0.1:{public_port}"
        self.internal = f"http://127.0.0.1:{internal_port}"
        self.data_dir = Path(data_dir)
        self.log_path = log_path
        self.policy_path = policy_path
        self.redis_url = redis_url

    def log(self):
        return Path(self.log_path).read_text(errors="replace")

    def log_events(self):
        """The JSON log lines, parsed."""
        events = []
        for line in self.log().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
        return events

    def stats(self):
        with urllib.request.urlopen(self.internal + "/stats", timeout=5) as r:
            return json.loads(r.read())

    def metrics(self):
        with urllib.request.urlopen(self.internal + "/metrics", timeout=5) as r:
            return r.read().decode()

    def answer(self, challenge_id):
        """The answer of a stored challenge, read from the store itself."""
        return read_context(self.stored_context(challenge_id))["answer"]

    def stored_context(self, challenge_id):
        """The sealed context bytes the store keeps for `challenge_id`."""
        if self.redis_url:
            return redis_get(self.redis_url, f"palisade:challenge:{challenge_id}")
        import sqlite3

        db = sqlite3.connect(self.data_dir / "challenges.sqlite3")
        try:
            row = db.execute("SELECT context FROM challenges WHERE id = ?", (challenge_id,)).fetchone()
        finally:
            db.close()
        assert row, f"challenge {challenge_id} is not in the store"
        return bytes(row[0])


def read_context(sealed):
    """Decodes a sealed challenge context (src/challenge/context.rs documents
    the layout): base64url of [version][purpose][key id][payload][32-byte tag]."""
    import base64
    import struct

    text = sealed.decode() if isinstance(sealed, (bytes, bytearray)) else sealed
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    assert raw[0] == 1 and raw[1] == 3, "not a sealed challenge context"
    payload = raw[3:-32]
    issued, expires, level = struct.unpack(">QQB", payload[:17])
    at = 34 + 1 + 8
    fields = []
    for _ in range(4):
        (n,) = struct.unpack(">H", payload[at:at + 2])
        fields.append(payload[at + 2:at + 2 + n].decode())
        at += 2 + n
    return {"issued": issued, "expires": expires, "difficulty": level & 15, "kind_code": level >> 4,
            "id": fields[0], "layout": fields[1], "answer": fields[2], "return": fields[3]}


def redis_get(url, key):
    """GET over the Redis protocol (no client library needed)."""
    value = redis_command(url, "GET", key)
    assert value is not None, f"{key} is not in Redis"
    return value


def redis_command(url, *args):
    """One Redis command (no client library needed): its reply, with bulk
    strings as bytes, arrays as lists and nil as None; an error reply raises."""
    import urllib.parse

    u = urllib.parse.urlparse(url)
    with socket.create_connection((u.hostname, u.port or 6379), timeout=5) as s:
        parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        s.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
        reader = s.makefile("rb")
        return _resp(reader)


def _resp(reader):
    line = reader.readline()
    assert line.endswith(b"\r\n"), f"a short Redis reply: {line!r}"
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise AssertionError(f"redis: {rest.decode()}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = reader.read(n + 2)
        return data[:n]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp(reader) for _ in range(n)]
    raise AssertionError(f"an unknown Redis reply: {line!r}")


@contextlib.contextmanager
def start_companion(policy, redis_url=None, public_port=None, internal_port=None, timeout=30,
                    datasets=None, env=None, data_dir=None):
    """Starts `palisade serve` with `policy` (a dict; its `companion` section
    is filled with free ports, a data directory (`data_dir`, by default a
    fresh one) and `datasets`, by default the repository's), and `env` added
    to its environment, and stops it on exit."""
    workdir = Path(tempfile.mkdtemp(prefix="palisade-e2e-companion-"))
    public_port = public_port or free_port()
    internal_port = internal_port or free_port()
    data_dir = Path(data_dir or workdir / "data")
    policy = json.loads(json.dumps(policy))
    section = policy.setdefault("companion", {})
    section.update({
        "public": f"127.0.0.1:{public_port}",
        "internal": f"127.0.0.1:{internal_port}",
        "data_dir": str(data_dir),
        "datasets": str(datasets or ROOT / "datasets"),
    })
    if redis_url:
        section["redis_url"] = redis_url
    policy_path = write_policy(policy, workdir)
    log_path = workdir / "companion.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([str(CLI), "serve", "--config", str(policy_path)],
                                   stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})})
    companion = Companion(process, public_port, internal_port, data_dir, log_path,
                          policy_path, redis_url)
    try:
        wait_healthy(companion, timeout)
        yield companion
    finally:
        stop(process)


def wait_healthy(companion, timeout=30):
    wait_for_200(companion.process, companion.internal + "/healthz", timeout, "companion",
                 companion.log)


def wait_for_200(process, url, timeout, what, log):
    """Waits until `url` answers 200; fails with the log's tail if the
    process exits first or `timeout` passes."""
    deadline = time.time() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}):\n{log()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.time() > deadline:
            raise RuntimeError(f"{what} not ready in {timeout}s:\n{log()[-4000:]}")
        time.sleep(0.1)


@contextlib.contextmanager
def start_redis(port=None):
    """A real redis-server on `port` (default: a free one), without
    persistence; yields its URL."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: run scripts/install-system-deps.sh"
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="palisade-e2e-redis-")
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", workdir],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.time() > deadline or process.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)


# wrk, counting every status it sees (the failover tests).

WRK = shutil.which("wrk")
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("counts")) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do io.write(string.format("status %d %d\\n", status, n)) end
end
"""


def run_wrk(url, seconds, headers, out):
    """wrk -t2 -c16 against `url` for `seconds`; puts {status: count} in
    out["statuses"] and wrk's output in out["stdout"] (run it in a thread)."""
    script = Path(tempfile.mkdtemp(prefix="palisade-wrk-")) / "count.lua"
    script.write_text(WRK_SCRIPT)
    args = [WRK, "-t2", "-c16", f"-d{seconds}s", "-s", str(script)]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    done = subprocess.run(args + [url], capture_output=True, text=True, timeout=seconds + 30)
    out["statuses"] = {int(s): int(n) for _, s, n in
                       (line.split() for line in done.stdout.splitlines() if line.startswith("status "))}
    out["stdout"] = done.stdout


# nginx (Debian's), with Palisade through auth_request.

NGINX = "/usr/sbin/nginx"


class Nginx:
    def __init__(self, process, port, workdir):
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.workdir = Path(workdir)

    def log(self):
        return "\n".join((self.workdir / name).read_text(errors="replace")
                         for name in ("error.log", "stderr.log") if (self.workdir / name).exists())


@contextlib.contextmanager
def start_nginx(companion, upstream_port, failure_mode="closed", timeout=20):
    """nginx with the demo configuration (nginx/nginx.conf and its snippets,
    rendered by scripts/render_nginx.py) in front of `upstream_port`, checking
    with `companion`; run as the current user from a temporary directory,
    stopped on exit."""
    assert Path(NGINX).exists(), "nginx is missing: run scripts/install-system-deps.sh"
    workdir = Path(tempfile.mkdtemp(prefix="palisade-e2e-nginx-"))
    policy = json.loads(Path(companion.policy_path).read_text())
    port = free_port()
    render_nginx.render(workdir, policy, port, upstream_port, failure_mode)
    stderr = open(workdir / "stderr.log", "w")
    process = subprocess.Popen([NGINX, "-p", str(workdir), "-c", str(workdir / "nginx.conf"),
                                "-e", str(workdir / "error.log")],
                               stdout=stderr, stderr=subprocess.STDOUT)
    server = Nginx(process, port, workdir)
    try:
        deadline = time.time() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited ({process.returncode}):\n{server.log()[-4000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError(f"nginx not listening in {timeout}s:\n{server.log()[-4000:]}")
                time.sleep(0.05)
        yield server
    finally:
        # SIGQUIT: graceful stop; SIGTERM (stop()'s) is nginx's fast stop.
        stop(process)
        stderr.close()


# Headless Chromium (the browser tests).

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def ordinary_ua():
    """The reduced User-Agent headed Chrome of the installed Chromium's
    version sends: the same major version as the client hints Chromium
    sends, so the two agree as they do in a real browser."""
    version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout
    major = re.search(r"(\d+)\.\d+\.\d+", version).group(1)
    return ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{major}.0.0.0 Safari/537.36")


@pytest.fixture
def launch():
    """Starts headless Chromium (optionally with another User-Agent, without
    JavaScript, or another language), each with a fresh profile; quits them and removes the profiles afterwards.
    With `automation=False` Chromium does not announce that it is driven
    (`navigator.webdriver` is false), as an ordinary browser does."""
    started = []

    def start(user_agent=None, javascript=True, lang="en-US", automation=True):
        profile = tempfile.mkdtemp(prefix="palisade-chromium-")
        started.append((None, profile))
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", f"--lang={lang}",
                    "--window-size=1024,768", f"--user-data-dir={profile}"):
            options.add_argument(arg)
        if user_agent:
            options.add_argument(f"--user-agent={user_agent}")
        if not automation:
            options.add_argument("--disable-blink-features=AutomationControlled")
            options.add_experimental_option("excludeSwitches", ["enable-automation"])
        # --lang sets the UI; Accept-Language comes from this preference.
        prefs = {"intl.accept_languages": lang}
        if not javascript:
            prefs["profile.managed_default_content_settings.javascript"] = 2
        options.add_experimental_option("prefs", prefs)
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


def wait_for_upstream(driver, timeout=30):
    """Waits until the upstream's page is shown (the challenge solved)."""
    try:
        WebDriverWait(driver, timeout).until(lambda d: d.find_elements(By.ID, "upstream"))
    except TimeoutException:
        raise AssertionError(f"still at {driver.current_url} ({driver.title!r}) after {timeout}s:\n"
                             f"{driver.page_source[:2000]}")
    return driver.find_element(By.TAG_NAME, "body").text


def pass_cookie(driver):
    return next((c for c in driver.get_cookies() if c["name"] == "palisade"), None)


def wait_for_pass(driver, path, timeout=30):
    """Waits until the answer's redirect has landed at `path` and the browser
    holds the pass cookie, and returns it: a cookie read mid-navigation can
    come back empty, which a loaded CI machine showed."""
    wait_for_path(driver, path, timeout)
    try:
        return WebDriverWait(driver, timeout).until(pass_cookie)
    except TimeoutException:
        raise AssertionError(f"no pass cookie at {driver.current_url}:\n{driver.page_source[:2000]}")


def wait_for_path(driver, path, timeout=30):
    """Waits until the browser is at `path` itself (not at a challenge page
    whose `return=` merely ends with it)."""
    WebDriverWait(driver, timeout).until(
        lambda d: urllib.parse.urlparse(d.current_url).path == path)


AXE = ROOT / "target" / "js" / "node_modules" / "axe-core" / "axe.min.js"


def run_axe(driver, name):
    """axe-core (scripts/install-js-tools.sh) on the current page; writes its
    findings to target/e2e/axe-<name>.json and returns the serious and
    critical violations."""
    driver.execute_script(AXE.read_text())
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(r => done({violations: r.violations.map(v => ({"
        "id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))})),"
        "passes: r.passes.length}));")
    artifacts = ROOT / "target" / "e2e"
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / f"axe-{name}.json").write_text(json.dumps(result, indent=2))
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


def assert_accessible(driver, name):
    """No serious or critical axe-core violation on the current page, in the
    light theme and then the dark one (axe-<name>-light.json, -dark.json)."""
    assert run_axe(driver, f"{name}-light") == []
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                           {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    assert run_axe(driver, f"{name}-dark") == []


@contextlib.contextmanager
def proxy_port(kind, policy, upstream_port):
    """The port of a real `envoy`, or a real `nginx` checking with the
    companion, in front of `upstream_port` with `policy`: for tests that
    send the same requests through both proxies."""
    if kind == "envoy":
        with start_envoy(policy, upstream_port) as envoy:
            yield envoy.port
    else:
        with start_companion(policy) as companion, start_nginx(companion, upstream_port) as nginx:
            yield nginx.port
