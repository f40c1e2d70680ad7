"""Where the filter's time goes, from its per-phase timers.

    python3 benches/support/profile_report.py WRK_DIR

Reads the `palisade profile:` lines that scripts/bench-envoy.sh kept from
each run (WRK_DIR/ROUND-CONFIG-SCENARIO.txt.profile; the filter built with
`scripts/build-wasm.sh --profile`) and prints, for each config and
scenario, the mean nanoseconds per request of each phase. Each VM logs
its means every 20,000 of its requests; a run's first line from each VM
is dropped, as it may span the run before. `clock` is what one timer
costs, included in each phase's figure; `net` subtracts it.
"""

import re
import sys
from collections import defaultdict
from pathlib import Path

LINE = re.compile(r"\]\[(\d+)\]\[.*palisade profile: requests=(\d+) ns/request: (.*)$")


def runs(directory):
    """{(config, scenario): [{phase: ns}, ...]} over every kept line."""
    found = defaultdict(list)
    for path in sorted(Path(directory).glob("*.txt.profile")):
        _, config, scenario = path.name[: -len(".txt.profile")].split("-", 2)
        seen_threads = set()
        for line in path.read_text().splitlines():
            m = LINE.search(line)
            if not m:
                continue
            thread = m.group(1)
            if thread not in seen_threads:
                seen_threads.add(thread)
                continue
            phases = dict(p.split("=") for p in m.group(3).split())
            found[(config, scenario)].append({k: int(v) for k, v in phases.items()})
    return found


def main():
    found = runs(sys.argv[1])
    if not found:
        print("no per-phase profile lines (was the filter built with --profile?)")
        return 1
    columns = sorted(found)
    phases = [p for p in found[columns[0]][0] if p != "clock"]
    mean = {
        key: {p: sum(s[p] for s in samples) / len(samples) for p in samples[0]}
        for key, samples in found.items()
    }
    print("Filter phases, ns per request (mean over the VMs' 20,000-request windows; net = minus one timer's cost):")
    print(f"{'phase':<16}" + "".join(f"{c + ' ' + s:>18}" for c, s in columns))
    for phase in phases:
        cells = []
        for key in columns:
            m = mean[key]
            cells.append(f"{m[phase]:>10.0f} ({max(m[phase] - m['clock'], 0):>5.0f})")
        print(f"{phase:<16}" + "".join(f"{c:>18}" for c in cells))
    totals = []
    for key in columns:
        m = mean[key]
        total = sum(m[p] for p in phases)
        net = sum(max(m[p] - m["clock"], 0) for p in phases)
        totals.append(f"{total:>10.0f} ({net:>5.0f})")
    print(f"{'total':<16}" + "".join(f"{c:>18}" for c in totals))
    print(f"{'clock':<16}" + "".join(f"{mean[k]['clock']:>18.0f}" for k in columns))
    print("windows: " + ", ".join(f"{c} {s} {len(found[(c, s)])}" for c, s in columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
