#!/usr/bin/env python3
"""Summarises the wrk runs of scripts/bench-nginx.sh.

Usage: nginx_report.py DIR

DIR holds one wrk output per run (wrk --latency), named
ROUND-CONFIG-SCENARIO.txt: CONFIG `none` or `palisade` (through nginx) or
`check` (wrk straight at the companion's /auth). Prints, per config and
scenario, the median over rounds of req/s, p50 and p99 (and every round's
req/s) and the CPU time per request that nginx's workers, the companion and
the whole machine used (ROUND-CONFIG-SCENARIO.txt.cpu: their clock ticks
during the run, and the ticks per second), then the throughput ratios b/a
and c/a against their goal.
Exits 1 if any run had non-2xx responses or socket errors: those numbers
would not measure the path they claim to.
"""
import re
import statistics
import sys
from pathlib import Path

from wrk_report import fmt_us, parse

THROUGH_NGINX = [
    ("none", "allow", "a  nginx, no Palisade"),
    ("palisade", "allow", "b  nginx + Palisade, allow path"),
    ("palisade", "token", "c  nginx + Palisade, valid token"),
]
STRAIGHT = [
    ("check", "allow", "allow path, no X-Request-Id"),
    ("check", "token", "valid token, no X-Request-Id"),
    ("check", "allowid", "allow path, unique X-Request-Id"),
]
GOAL = 0.6


def cpu_us(path):
    """CPU microseconds per request of nginx's workers and of the companion
    in one run, or None without the .cpu file."""
    cpu = Path(str(path) + ".cpu")
    if not cpu.exists():
        return None
    nginx, companion, machine, per_second = (int(x) for x in cpu.read_text().split())
    requests = int(re.search(r"(\d+) requests in", path.read_text())[1])
    per_request = lambda ticks: ticks / per_second * 1e6 / requests
    return {"nginx_us": per_request(nginx), "companion_us": per_request(companion),
            "machine_us": per_request(machine)}


def table(title, rows, runs, medians):
    """Prints one table; returns how many bad responses its runs had."""
    bad = 0
    print(f"{title:<36} {'req/s':>9} {'p50':>9} {'p99':>9} {'CPU/req: nginx':>15} {'companion':>10}"
          f" {'machine':>8}   req/s per round")
    for config, scenario, label in rows:
        rs = runs.get((config, scenario))
        if not rs:
            continue
        cpu_keys = ["nginx_us", "companion_us", "machine_us"]
        keys = ["rps", "p50", "p99"] + (cpu_keys if all("nginx_us" in r for r in rs) else [])
        med = {k: statistics.median(r[k] for r in rs) for k in keys}
        cpu = (f"{fmt_us(med['nginx_us']):>15} {fmt_us(med['companion_us']):>10} {fmt_us(med['machine_us']):>8}"
               if "nginx_us" in med else f"{'':>15} {'':>10} {'':>8}")
        medians[(config, scenario)] = med
        bad += sum(r["bad"] + r["errors"] for r in rs)
        flag = "" if all(r["bad"] == r["errors"] == 0 for r in rs) else "   NON-2XX/ERRORS!"
        rounds = " ".join(f"{r['rps']:.0f}" for r in rs)
        print(f"  {label:<34} {med['rps']:>9.0f} {fmt_us(med['p50']):>9} "
              f"{fmt_us(med['p99']):>9} {cpu}   {rounds}{flag}")
    return bad


def main(directory):
    runs = {}
    for path in sorted(Path(directory).glob("*-*-*.txt")):
        _, config, scenario = path.stem.split("-", 2)
        run = parse(path)
        run.update(cpu_us(path) or {})
        runs.setdefault((config, scenario), []).append(run)
    medians = {}
    bad = table("through nginx", THROUGH_NGINX, runs, medians)
    print()
    bad += table("companion check, wrk straight at /auth", STRAIGHT, runs, medians)
    print("(medians over rounds; p50/p99 from wrk --latency; CPU/req: user + system time of nginx's\n"
          " workers, of the companion, and of the whole machine (wrk included) during the run,\n"
          " divided by the requests wrk completed)")
    print()
    a = medians.get(("none", "allow"))
    for name, scenario in (("b/a", "allow"), ("c/a", "token")):
        x = medians.get(("palisade", scenario))
        if a and x:
            ratio = x["rps"] / a["rps"]
            met = "met" if ratio >= GOAL else "NOT met"
            print(f"throughput ratio {name} ({scenario} path) = {ratio:.2f}   (goal >= {GOAL}: {met})")
    if bad:
        print(f"\n{bad} non-2xx responses or socket errors: the tables above are not valid")
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
