"""`make run` (scripts/run-demo.sh): the upstream, the companion and Envoy
start together, every challenge kind is reachable, and Ctrl-C stops them
all."""
import os
import signal
import socket
import subprocess
import time

import requests

from conftest import BROWSER_HEADERS, ROOT, free_port, policy_json, write_policy


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_make_run_starts_everything_and_ctrl_c_stops_it(tmp_path):
    ports = {name: free_port() for name in ("LISTEN_PORT", "ADMIN_PORT", "UPSTREAM_PORT")}
    public, internal = free_port(), free_port()
    policy = policy_json()
    policy["companion"].update({"public": f"127.0.0.1:{public}", "internal": f"127.0.0.1:{internal}",
                                "data_dir": str(tmp_path / "data")})
    env = {**os.environ, **{k: str(v) for k, v in ports.items()},
           "POLICY": str(write_policy(policy, tmp_path))}
    log = open(tmp_path / "run.log", "w")
    # Its own process group, as a terminal's foreground job: Ctrl-C reaches all.
    demo = subprocess.Popen(["bash", "scripts/run-demo.sh"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    everything = [ports["LISTEN_PORT"], ports["UPSTREAM_PORT"], public, internal]
    try:
        deadline = time.time() + 60
        url = f"http://127.0.0.1:{ports['LISTEN_PORT']}"
        while time.time() < deadline:
            if demo.poll() is not None:
                raise AssertionError((tmp_path / "run.log").read_text())
            try:
                r = requests.get(url + "/demo/grid", headers=BROWSER_HEADERS, allow_redirects=False,
                                 timeout=2)
                if r.status_code == 303:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        for path, kind in [("/demo/text", "text"), ("/demo/one-click", "one_click"),
                           ("/demo/grid", "grid"), ("/demo/audio", "audio"),
                           ("/demo/chart", "chart"), ("/demo/altcha", "altcha")]:
            r = requests.get(url + path, headers=BROWSER_HEADERS, timeout=5)
            assert r.status_code == 200 and 'form method="post"' in r.text, (path, r.status_code)
            assert f"kind={kind}" in r.url
        r = requests.get(url + "/demo/pow", headers=BROWSER_HEADERS, timeout=5)
        assert r.status_code == 403 and "Checking your browser" in r.text
        assert requests.get(f"http://127.0.0.1:{internal}/stats", timeout=5).json()["issued"] >= 4
        assert all(listening(p) for p in everything)
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise
        finally:
            log.close()
    deadline = time.time() + 10
    while any(listening(p) for p in everything) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(listening(p) for p in everything), (tmp_path / "run.log").read_text()
