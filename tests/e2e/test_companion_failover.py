"""The filter's companion failure modes under load: wrk hammers a route
that hands challenges to the companion, the companion is killed and
restarted, and Envoy must answer as `companion.failure_mode` says, with no
5xx beyond what the mode allows, and hand off again within a few seconds of
the companion's return.
"""
import threading
import time

import pytest
import requests

from conftest import (BROWSER_HEADERS, WRK, admin_stats, free_port, policy_json, run_wrk,
                      start_companion, start_envoy_edited, without_upstream)

PATH = "/demo/text"

pytestmark = pytest.mark.skipif(WRK is None, reason="wrk not installed (scripts/install-system-deps.sh)")


def probe(envoy):
    """The status a browser-like GET of the hand-off route gets now."""
    r = requests.get(envoy.url + PATH, headers=BROWSER_HEADERS, allow_redirects=False, timeout=5)
    return r.status_code, r.headers.get("location", "")


def wait_for(envoy, want, timeout):
    """Seconds until `want(status, location)` holds; fails after `timeout`."""
    started = time.time()
    while time.time() - started < timeout:
        if want(*probe(envoy)):
            return time.time() - started
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s; last {probe(envoy)}")


def handed_off(status, location):
    return status == 303 and "/.palisade/challenge?kind=text" in location


@pytest.mark.parametrize("mode,down_status", [("pow", 403), ("fail_open", 200), ("fail_closed", 503)])
def test_companion_killed_under_load(echo_upstream, mode, down_status):
    policy = policy_json()
    policy["companion"]["failure_mode"] = mode
    ports = {"public_port": free_port(), "internal_port": free_port()}
    first = start_companion(policy, **ports)
    companion = first.__enter__()
    # Envoy answers for the upstream itself, so the load measures the
    # filter and the companion, not the demo upstream.
    with start_envoy_edited(policy, echo_upstream, without_upstream, companion=companion) as envoy:
        try:
            wait_for(envoy, handed_off, 10)
            result = {}
            load = threading.Thread(target=run_wrk, args=(envoy.url + PATH, 10, BROWSER_HEADERS, result))
            load.start()
            time.sleep(2)
            first.__exit__(None, None, None)
            first = None
            # Down: within two probes (health_interval 1s) the mode applies.
            wait_for(envoy, lambda s, _: s == down_status, 5)
            if mode == "fail_closed":
                r = requests.get(envoy.url + PATH, headers=BROWSER_HEADERS, allow_redirects=False, timeout=5)
                assert int(r.headers["retry-after"]) >= 1
            time.sleep(2)
            with start_companion(policy, **ports):
                recovered = wait_for(envoy, handed_off, 5)
                load.join()
            counters = admin_stats(envoy, r"palisade\.companion\.")
        finally:
            if first is not None:
                first.__exit__(None, None, None)
    statuses = result["statuses"]
    assert sum(statuses.values()) > 500, result["stdout"]
    allowed = {303, down_status}
    assert set(statuses) <= allowed, f"{mode}: {statuses}"
    if mode != "fail_closed":
        assert not any(s >= 500 for s in statuses), statuses
    assert statuses.get(down_status, 0) > 0 and statuses.get(303, 0) > 0, statuses
    assert recovered < 5
    assert counters["wasmcustom.palisade.companion.became_down"] >= 1
    assert counters["wasmcustom.palisade.companion.became_up"] >= 2
    assert counters[f"wasmcustom.palisade.companion.fallback.{mode}"] > 0
