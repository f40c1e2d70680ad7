"""The companion's SQLite store when its disk fills up, and when its file is
read-only.

The store sits on a small tmpfs mounted for each test (the tests run as
root, which file permissions do not stop, but a full file system does). A
full disk while the companion runs is a fault it rides out: new challenges
get 503 with `Retry-After` (`store_unavailable: unavailable`, the default) or
proof of work (`store_unavailable: pow`), an answer whose single use cannot
be recorded is refused rather than accepted, the error names the file and
the reason, and once there is space again everything works, the challenges
issued before the fault included. A store that cannot be written when the
companion starts (an immutable file, a read-only mount) is a deployment
error: the companion refuses to start, naming the file and the reason.
"""
import contextlib
import errno
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import CLI, free_port, start_companion, write_policy
from test_companion import JSON, new, policy, submit


@pytest.fixture
def small_fs():
    """A 4 MiB tmpfs, unmounted (lazily, so a test's open files cannot keep
    it) after the test."""
    path = Path(tempfile.mkdtemp(prefix="palisade-e2e-fs-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "palisade-e2e", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        shutil.rmtree(path, ignore_errors=True)
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def disk_full(directory):
    """Fills the file system under `directory` to its last byte, and frees
    the space on exit."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        chunk = 1 << 20
        while chunk:
            try:
                os.write(fd, b"\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                chunk //= 2
        assert shutil.disk_usage(directory).free == 0
        yield
    finally:
        os.close(fd)
        filler.unlink()


def store_errors(companion):
    prefix = 'palisade_companion_store_errors_total{store="sqlite"} '
    lines = [l for l in companion.metrics().splitlines() if l.startswith(prefix)]
    return float(lines[0][len(prefix):]) if lines else 0.0


def issue_under_load(companion, seconds, threads=4):
    """New challenges asked for by `threads` clients in a loop for `seconds`:
    the (status, Retry-After, kind) of every answer, or the exception's
    name."""
    seen, stop = [], threading.Event()

    def client(n):
        session = requests.Session()
        while not stop.is_set():
            try:
                r = session.get(companion.public + "/.palisade/challenge", params={"kind": "text"},
                                headers={**JSON, "X-Palisade-Client-Ip": f"10.6.9.{n}"}, timeout=10)
                kind = r.json().get("kind") if r.status_code == 200 else None
                seen.append((r.status_code, r.headers.get("retry-after"), kind))
            except requests.RequestException as e:
                seen.append((type(e).__name__, None, None))

    workers = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(threads)]
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join(15)
    assert seen, "the load loop made no request"
    return seen


def test_a_full_disk_refuses_new_challenges_then_recovers_with_nothing_lost(small_fs):
    with start_companion(policy(), data_dir=small_fs / "data") as c:
        before = new(c, "text", ip="10.6.0.1").json()
        right = c.answer(before["id"])
        errors = store_errors(c)
        with disk_full(small_fs):
            seen = issue_under_load(c, seconds=2)
            assert all(status == 503 and retry for status, retry, _ in seen), set(seen)
            # The answer is right, but its single use cannot be recorded.
            r = submit(c, before, right, ip="10.6.0.1")
            assert r.status_code == 503 and "token" not in r.text
            assert store_errors(c) >= errors + len(seen)
            full = [e for e in c.log_events() if "disk is full" in str(e)]
            assert full and str(small_fs / "data" / "challenges.sqlite3") in str(full[0]), c.log()[-2000:]
        # Space is back: new challenges at once, and the one issued before
        # the fault still answers, once.
        after = new(c, "text", ip="10.6.0.2")
        assert after.status_code == 200, after.text
        r = submit(c, before, right, ip="10.6.0.1")
        assert r.status_code == 200 and r.json()["token"]
        again = submit(c, before, right, ip="10.6.0.1")
        assert again.status_code == 403 and again.json()["error"] == "used"
        assert c.process.poll() is None


def test_a_full_disk_with_the_pow_fallback_asks_for_proof_of_work(small_fs):
    with start_companion(policy(store_unavailable="pow"), data_dir=small_fs / "data") as c:
        assert new(c, "text", ip="10.6.1.1").json()["kind"] == "text"
        with disk_full(small_fs):
            seen = issue_under_load(c, seconds=1)
            assert all(status == 200 and kind == "pow" for status, _, kind in seen), set(seen)
        assert new(c, "text", ip="10.6.1.2").json()["kind"] == "text"


def refused_start(policy_doc, data_dir):
    """Runs `palisade serve` on a store it cannot write: it must exit, not
    serve; returns what it printed."""
    doc = {**policy_doc, "companion": {**policy_doc.get("companion", {}),
                                       "public": f"127.0.0.1:{free_port()}",
                                       "internal": f"127.0.0.1:{free_port()}",
                                       "data_dir": str(data_dir)}}
    workdir = Path(tempfile.mkdtemp(prefix="palisade-e2e-refused-"))
    try:
        path = write_policy(doc, workdir)
        r = subprocess.run([str(CLI), "serve", "--config", str(path)], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode != 0, r.stdout + r.stderr
        return r.stdout + r.stderr
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_an_immutable_store_file_stops_the_companion_at_start(small_fs):
    data = small_fs / "data"
    with start_companion(policy(), data_dir=data):
        pass
    store = data / "challenges.sqlite3"
    for f in data.iterdir():
        subprocess.run(["chattr", "+i", str(f)], check=True)
    try:
        out = refused_start(policy(), data)
        assert str(store) in out and "cannot be written" in out and "companion.data_dir" in out, out
    finally:
        for f in data.iterdir():
            subprocess.run(["chattr", "-i", str(f)], check=False)


def test_a_read_only_data_directory_stops_the_companion_at_start(small_fs):
    data = small_fs / "data"
    with start_companion(policy(), data_dir=data):
        pass
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    out = refused_start(policy(), data)
    assert str(data / "challenges.sqlite3") in out and "read-only" in out, out
