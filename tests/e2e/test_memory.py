"""Memory stays flat however many clients there are.

Rate-limit state is a fixed table of `rate_limiting.buckets` proxy-wasm
shared-data entries (64-byte values), all created when the policy is
loaded; a client only ever updates the entry of its bucket. So neither
Envoy's heap nor the wasm VMs grow with the number of distinct clients.

Measured with wrk, every request from its own client address (one
X-Forwarded-For per request; every 16th an IPv6 address in its own /64),
through Envoy with two workers, on a route with a per-client limit. Envoy
answers itself (no upstream hop) so wrk is not held back by the Python
echo server. Prints a `[memory]` summary line.
"""
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import admin_stats, envoy_memory, policy_json, start_envoy_edited, without_upstream

MiB = 1024 * 1024
WARMUP = 100_000
CLIENTS = 1_000_000
WRK_THREADS = 2
WRK_CONNECTIONS = 32

# Bounds on growth between the warm-up and the end of the 1M-client run.
# Measured here: +0 to +1 KiB `allocated`, +0 RSS. One new shared-data key
# per client would be >= 64 MiB (1M x 64-byte values, before map overhead);
# the bounds leave room for allocator and V8 noise only.
MAX_ALLOCATED_GROWTH = 4 * MiB
MAX_RSS_GROWTH = 16 * MiB

BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Accept-Language": "en-US,en;q=0.9",
}

# The Lua both wrk scripts share: every request from a client address no
# other request used. The address is derived from a request index; thread
# `id` owns the slice starting at first + id * (per_thread + 4096) (the gap
# covers requests still in flight when the thread stops). Every 16th address
# is IPv6, each in its own /64.
DISTINCT_ADDRESSES = r'''
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  per_thread = tonumber(args[2])
  first = tonumber(args[1]) + id * (per_thread + 4096)
  sent, received, ok, limited, other = 0, 0, 0, 0, 0
  wrk.headers["User-Agent"] = args[3]
  wrk.headers["Accept-Language"] = args[4]
end

local function address(i)
  if i % 16 == 15 then
    return string.format("2a01:4f8:%x:%x::1", math.floor(i / 65536) % 65536, i % 65536)
  end
  return string.format("10.%d.%d.%d", math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
end
'''

# Through Envoy: the address in X-Forwarded-For; a thread stops after
# `per_thread` responses.
WRK_SCRIPT = DISTINCT_ADDRESSES + r'''
function request()
  wrk.headers["X-Forwarded-For"] = address(first + sent)
  sent = sent + 1
  return wrk.format("GET", "/")
end

function response(status, headers, body)
  received = received + 1
  if status == 200 then ok = ok + 1 elseif status == 429 then limited = limited + 1 else other = other + 1 end
  if received >= per_thread then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local s, r, o, l, x = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    s = s + t:get("sent"); r = r + t:get("received")
    o = o + t:get("ok"); l = l + t:get("limited"); x = x + t:get("other")
  end
  io.write(string.format("DISTINCT sent=%d received=%d ok=%d limited=%d other=%d\n", s, r, o, l, x))
end
'''


def memory_policy(buckets=16384):
    """The demo policy, with a per-client limit on `/` (the demo leaves `/`
    unlimited), so every request goes through the shared-data store."""
    policy = policy_json()
    policy["rate_limiting"]["buckets"] = buckets
    public = next(r for r in policy["routes"] if r["name"] == "public")
    public["rate_limit"] = {"rate": "600/minute", "burst": 60, "scope": "client"}
    return policy


def decisions(envoy):
    return sum(admin_stats(envoy, r"^wasmcustom\.palisade\.requests\.").values())


def distinct_clients(envoy, script, first, count, timeout):
    """Sends `count` requests, each from a new client address (indices from
    `first`), with wrk. Returns (wrk's summary counts, seconds)."""
    per_thread = count // WRK_THREADS
    start_count = decisions(envoy)
    started = time.monotonic()
    wrk = subprocess.Popen(
        ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", "-d3600s", "--timeout", "10s",
         "-s", str(script), envoy.url + "/", "--",
         str(first), str(per_thread), BROWSER["User-Agent"], BROWSER["Accept-Language"]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # wrk runs for its whole duration even once every thread stopped;
        # stop it (SIGINT: it still prints its summary) when all were answered.
        while decisions(envoy) - start_count < per_thread * WRK_THREADS:
            assert wrk.poll() is None, wrk.stderr.read()
            assert envoy.alive(), envoy.log()[-4000:]
            assert time.monotonic() - started < timeout, \
                f"{decisions(envoy) - start_count} of {count} requests in {timeout}s"
            time.sleep(0.25)
        elapsed = time.monotonic() - started
        time.sleep(0.5)
        wrk.send_signal(signal.SIGINT)
        out, err = wrk.communicate(timeout=30)
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    line = next((l for l in out.splitlines() if l.startswith("DISTINCT ")), None)
    assert line, out + err
    counts = {k: int(v) for k, v in (f.split("=") for f in line.split()[1:])}
    return counts, elapsed


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (scripts/install-system-deps.sh)")
def test_memory_is_flat_over_a_million_distinct_clients(echo_upstream, tmp_path):
    script = tmp_path / "distinct.lua"
    script.write_text(WRK_SCRIPT)
    with start_envoy_edited(memory_policy(), echo_upstream, without_upstream, concurrency=2) as envoy:
        at_start = envoy_memory(envoy)
        warm, warm_s = distinct_clients(envoy, script, 0, WARMUP, timeout=300)
        after_warmup = envoy_memory(envoy)
        # Indices from 2,000,000: no address of the warm-up comes back.
        run, run_s = distinct_clients(envoy, script, 2_000_000, CLIENTS, timeout=1800)
        after_run = envoy_memory(envoy)

        growth = {k: after_run[k] - after_warmup[k] for k in ("allocated", "heap_size", "rss", "rss_anon")}
        print(
            f"\n[memory] {run['received']:,} distinct clients in {run_s:.1f}s "
            f"({run['received'] / run_s:,.0f} req/s; warm-up {warm['received']:,} in {warm_s:.1f}s), "
            f"2 workers, 16384 buckets\n"
            f"[memory]   allocated  start {at_start['allocated'] / MiB:.2f} MiB, after warm-up "
            f"{after_warmup['allocated'] / MiB:.2f} MiB, after 1M {after_run['allocated'] / MiB:.2f} MiB "
            f"(growth {growth['allocated']:+,} B, bound {MAX_ALLOCATED_GROWTH // MiB} MiB)\n"
            f"[memory]   heap_size  {after_warmup['heap_size'] / MiB:.2f} -> {after_run['heap_size'] / MiB:.2f} MiB "
            f"({growth['heap_size']:+,} B)\n"
            f"[memory]   RSS        start {at_start['rss'] / MiB:.2f} MiB, after warm-up "
            f"{after_warmup['rss'] / MiB:.2f} MiB, after 1M {after_run['rss'] / MiB:.2f} MiB "
            f"(growth {growth['rss']:+,} B, bound {MAX_RSS_GROWTH // MiB} MiB; anon {growth['rss_anon']:+,} B)"
        )

        assert warm["other"] == run["other"] == 0, (warm, run)
        assert run["received"] >= CLIENTS and warm["received"] >= WARMUP
        # One request per client: nobody is over its limit.
        assert run["limited"] == 0
        assert growth["allocated"] <= MAX_ALLOCATED_GROWTH
        assert growth["rss"] <= MAX_RSS_GROWTH
        assert admin_stats(envoy, "store_degraded") == {"wasmcustom.palisade.ratelimit.store_degraded": 0}

        # The table still limits: a client over its allowance (600/minute,
        # burst 60: 61 at once) is refused, right after a million others.
        # Sequential requests: one more is admitted every 0.1 s they take.
        with requests.Session() as s:
            started = time.monotonic()
            codes = [s.get(envoy.url + "/", headers={**BROWSER, "X-Forwarded-For": "203.0.113.50"}).status_code
                     for _ in range(100)]
            took = time.monotonic() - started
        admitted = codes.count(200)
        assert codes.count(429) == 100 - admitted > 0, codes
        assert 61 <= admitted <= 61 + int(took / 0.1), (admitted, took)


def test_every_bucket_exists_from_configure_time(echo_upstream):
    """Shared-data keys cannot grow with traffic: `store::prepare` creates all
    of them when the policy loads. Envoy's heap right after start grows with
    the configured bucket count, by at least the 64-byte value per bucket,
    before any request."""
    small, large = 16_384, 147_456
    allocated = {}
    for buckets in (small, large):
        with start_envoy_edited(memory_policy(buckets), echo_upstream, without_upstream, concurrency=2) as envoy:
            allocated[buckets] = envoy_memory(envoy)["allocated"]
    per_bucket = (allocated[large] - allocated[small]) / (large - small)
    print(f"\n[memory] at start, before any request: {small} buckets {allocated[small] / MiB:.2f} MiB, "
          f"{large} buckets {allocated[large] / MiB:.2f} MiB allocated: {per_bucket:.0f} B per bucket "
          f"in Envoy's shared data (64 B value + key + map entry); "
          f"{small} buckets = {per_bucket * small / MiB:.2f} MiB")
    assert 64 <= per_bucket <= 512


# nginx's auth_request subrequest as the companion's check sees it: the
# address in X-Real-IP (from a trusted peer).
COMPANION_WRK_SCRIPT = DISTINCT_ADDRESSES + r'''
function request()
  wrk.headers["X-Original-Method"] = "GET"
  wrk.headers["X-Real-IP"] = address(first + sent)
  wrk.headers["X-Original-URI"] = "/public/" .. sent
  sent = sent + 1
  return wrk.format("GET", "/auth")
end
'''


def companion_checks(companion):
    """How many checks the companion has answered (its metrics)."""
    total = 0
    for line in companion.metrics().splitlines():
        if line.startswith("palisade_companion_checks_total{"):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def companion_rss(companion):
    status = Path(f"/proc/{companion.process.pid}/status").read_text()
    return int(next(l for l in status.splitlines() if l.startswith("VmRSS:")).split()[1]) * 1024


def test_companion_memory_is_flat_over_a_million_distinct_clients(tmp_path):
    """The nginx check path: the companion's per-client state (rate-limit
    buckets, scoring clients, lockouts) is bounded, so 1,000,000 distinct
    addresses after a warm-up of 100,000 leave its memory where it was."""
    from conftest import start_companion

    policy = memory_policy()
    policy["companion"]["trusted_peers"] = ["127.0.0.1"]
    script = tmp_path / "distinct-checks.lua"
    script.write_text(COMPANION_WRK_SCRIPT)
    with start_companion(policy) as companion:

        def run(first, count, timeout):
            start = companion_checks(companion)
            per_thread = count // WRK_THREADS
            wrk = subprocess.Popen(
                ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", "-d3600s", "--timeout", "10s",
                 "-s", str(script), companion.internal + "/auth", "--",
                 str(first), str(per_thread), BROWSER["User-Agent"], BROWSER["Accept-Language"]],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            started = time.monotonic()
            try:
                while companion_checks(companion) - start < count:
                    assert wrk.poll() is None, wrk.stderr.read()
                    assert companion.process.poll() is None, companion.log()[-4000:]
                    assert time.monotonic() - started < timeout, \
                        f"{companion_checks(companion) - start} of {count} checks in {timeout}s"
                    time.sleep(0.25)
            finally:
                wrk.kill()
                wrk.wait()
            return time.monotonic() - started

        run(0, WARMUP, 120)
        after_warmup = companion_rss(companion)
        seconds = run(2_000_000, CLIENTS, 600)
        after_run = companion_rss(companion)
    growth = after_run - after_warmup
    print(f"\n[memory] companion RSS after a 100,000-client warm-up {after_warmup / MiB:.1f} MiB, "
          f"after 1,000,000 more {after_run / MiB:.1f} MiB (growth {growth / MiB:+.1f} MiB, "
          f"bound {MAX_RSS_GROWTH // MiB} MiB; {CLIENTS / seconds:,.0f} checks/s)")
    assert growth <= MAX_RSS_GROWTH
