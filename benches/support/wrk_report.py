#!/usr/bin/env python3
"""Summarises the wrk runs of scripts/bench-envoy.sh.

Usage: wrk_report.py DIR

DIR holds one wrk output per run, named ROUND-CONFIG-SCENARIO.txt (wrk
--latency). Prints, per config and scenario, the median over rounds of
req/s (with its min-max), p50 and p99 (and every round's req/s), then the throughput ratios
of Palisade (c) to no filter (a) and to the empty wasm filter (b), and of
Palisade with scoring on (d, the cached path) to c.
Exits 1 if any run had non-2xx responses or socket errors: those numbers
would not measure the path they claim to.
"""
import re
import statistics
import sys
from pathlib import Path

CONFIGS = [("none", "a  no filter"), ("passthrough", "b  empty wasm"), ("palisade", "c  palisade"),
           ("scored", "d  + scoring"), ("realistic", "e  demo+bench"), ("baseline", "c0 baseline")]
SCENARIOS = ["allow", "token", "browser"]
GOALS = {"allow": {"none": 0.7, "passthrough": 0.9}, "token": {"passthrough": 0.85}}
# d/c: scoring on (the cached path) against the same run with scoring off.
SCORED_GOAL = 0.95
UNIT_US = {"us": 1.0, "ms": 1e3, "s": 1e6}


def latency_us(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(m[1]) * UNIT_US[m[2]]


def parse(path):
    text = path.read_text()
    run = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])}
    for pct, key in (("50", "p50"), ("99", "p99")):
        run[key] = latency_us(re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)[1])
    requests = re.search(r"(\d+) requests in", text)
    cpu = re.search(r"envoy cpu ticks: (\d+) of (\d+)/s", text)
    run["cpu_us"] = (int(cpu[1]) / int(cpu[2]) * 1e6 / int(requests[1])) if cpu and requests else float("nan")
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    run["bad"] = int(m[1]) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    run["errors"] = sum(int(x) for x in m.groups()) if m else 0
    return run


def fmt_us(us):
    return f"{us / 1e3:.2f} ms" if us >= 1000 else f"{us:.0f} us"


def main(directory):
    runs = {}
    for path in sorted(Path(directory).glob("*-*-*.txt")):
        rnd, config, scenario = path.stem.split("-", 2)
        runs.setdefault((config, scenario), []).append(parse(path))
    medians = {}
    bad = 0
    print(f"{'config':<16} {'scenario':<9} {'req/s':>9} {'min-max':>13} {'p50':>9} {'p99':>9} {'cpu/req':>9}   req/s per round")
    for scenario in SCENARIOS:
        for config, label in CONFIGS:
            rs = runs.get((config, scenario))
            if not rs:
                continue
            med = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99", "cpu_us")}
            medians[(config, scenario)] = med
            bad += sum(r["bad"] + r["errors"] for r in rs)
            flag = "" if all(r["bad"] == r["errors"] == 0 for r in rs) else "   NON-2XX/ERRORS!"
            rounds = " ".join(f"{r['rps']:.0f}" for r in rs)
            spread = f"{min(r['rps'] for r in rs):.0f}-{max(r['rps'] for r in rs):.0f}"
            print(f"{label:<16} {scenario:<9} {med['rps']:>9.0f} {spread:>13} {fmt_us(med['p50']):>9} "
                  f"{fmt_us(med['p99']):>9} {med['cpu_us']:>6.1f} us   {rounds}{flag}")
    print("(medians over rounds; p50/p99 from wrk --latency; cpu/req: Envoy's user+system CPU time per request)")
    print()
    for scenario in SCENARIOS:
        c = medians.get(("palisade", scenario))
        if not c:
            continue
        parts = []
        for base, name in (("none", "c/a"), ("passthrough", "c/b")):
            b = medians.get((base, scenario))
            if not b:
                continue
            ratio = c["rps"] / b["rps"]
            goal = GOALS.get(scenario, {}).get(base)
            verdict = "" if goal is None else f" (goal >= {goal}: {'ok' if ratio >= goal else 'BELOW GOAL'})"
            parts.append(f"{name} = {ratio:.2f}{verdict}")
        d = medians.get(("scored", scenario))
        if d:
            ratio = d["rps"] / c["rps"]
            parts.append(f"d/c = {ratio:.2f} (goal >= {SCORED_GOAL}: "
                         f"{'ok' if ratio >= SCORED_GOAL else 'BELOW GOAL'}; "
                         f"by CPU per request c/d = {c['cpu_us'] / d['cpu_us']:.2f})")
        e = medians.get(("realistic", scenario))
        b = medians.get(("passthrough", scenario))
        if e and b:
            parts.append(f"e/b = {e['rps'] / b['rps']:.2f}")
        c0 = medians.get(("baseline", scenario))
        if c0:
            parts.append(f"c/c0 = {c['rps'] / c0['rps']:.2f} (by CPU per request c0/c = "
                         f"{c0['cpu_us'] / c['cpu_us']:.2f})")
        print(f"throughput ratio, {scenario + ' path:':<12} " + ", ".join(parts))
    if bad:
        print(f"\n{bad} non-2xx responses or socket errors: the table above is not valid")
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
