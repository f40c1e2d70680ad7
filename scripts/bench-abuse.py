#!/usr/bin/env python3
"""Abuse figures (part of `make bench`): what an automated attacker gets
from the companion's challenges, measured against a running `palisade
serve` with the demo policy.

1. OCR: Debian's tesseract on text challenges, per difficulty level. An
   attacker knows the alphabet (src/challenge/text/mod.rs), so tesseract is
   told it. Reported: the share read exactly, and the share the companion
   would accept (its typo tolerance: one edit for answers of six or more
   characters). No preprocessing: a determined attacker does better, so
   these are lower bounds on what text challenges give away.
2. Challenge ids: random 22-character ids tried against the image URL of a
   stored challenge; how many hit one.

Knobs: ABUSE_CHALLENGES (40 per level), ABUSE_GUESSES (20000).
"""
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from conftest import BROWSER_UA, policy_json, start_companion  # noqa: E402

ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ3479"
PER_LEVEL = int(os.environ.get("ABUSE_CHALLENGES", "40"))
GUESSES = int(os.environ.get("ABUSE_GUESSES", "20000"))


def edits(a, b):
    """Levenshtein distance."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def ocr(png, workdir):
    path = workdir / "challenge.png"
    path.write_bytes(png)
    out = subprocess.run(
        ["tesseract", str(path), "stdout", "--psm", "7", "-c", f"tessedit_char_whitelist={ALPHABET}"],
        capture_output=True, text=True, timeout=60)
    return "".join(c for c in out.stdout.upper() if c in ALPHABET)


def main():
    if subprocess.run(["which", "tesseract"], capture_output=True).returncode != 0:
        sys.exit("bench-abuse: tesseract is missing: run scripts/install-system-deps.sh")
    headers = {"Accept": "application/json", "User-Agent": BROWSER_UA, "X-Palisade-Client-Ip": "10.9.0.1"}
    workdir = Path(tempfile.mkdtemp(prefix="palisade-bench-abuse-"))
    with start_companion(policy_json()) as companion:
        print("OCR (tesseract, alphabet known, no preprocessing) on text challenges:")
        print(f"{'difficulty':>10}  {'read exactly':>12}  {'accepted':>9}  (of {PER_LEVEL})")
        for level in range(1, 6):
            exact = accepted = 0
            for _ in range(PER_LEVEL):
                c = requests.get(companion.public + "/.palisade/challenge", timeout=10, headers=headers,
                                 params={"kind": "text", "difficulty": level}).json()
                png = requests.get(companion.public + c["media"]["image"], timeout=10).content
                answer = companion.answer(c["id"]).upper()
                read = ocr(png, workdir)
                exact += read == answer
                accepted += edits(read, answer) <= (1 if len(answer) >= 6 else 0)
            print(f"{level:>10}  {exact / PER_LEVEL:>11.0%}  {accepted / PER_LEVEL:>9.0%}")

        hits = 0
        session = requests.Session()
        for _ in range(GUESSES):
            guess = secrets.token_urlsafe(16)[:22]
            r = session.get(f"{companion.public}/.palisade/challenge/{guess}/image", timeout=10)
            hits += r.status_code == 200
        print(f"challenge ids: {GUESSES} random guesses at stored challenges' URLs, {hits} hit one "
              f"(ids are 22 base64url characters, 128 random bits)")


if __name__ == "__main__":
    main()
