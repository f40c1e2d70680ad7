"""Where the filter's time goes, from its per-phase timers.

    python3 benches/support/profile_report.py WRK_DIR

Reads the `palisade profile:` lines that scripts/bench-envoy.sh kept from
each run (WRK_DIR/ROUND-CONFIG-SCENARIO.txt.profile; the filter built with
`scripts/build-wasm.sh --profile`) and prints, for each config and
scenario, the median over the VMs' windows of each phase's mean
nanoseconds per request, with the min-max across windows. Each VM logs
its means every 2,000 of its requests (src/filter/profile.rs); a run's
first line from each VM is dropped, as it may span the run before.

`clock` is what one timer pair costs; each phase's figure includes one.
`request` spans the whole request-headers callback, the other
request-side phases and their timers included; `rest` is what none of
them names (request minus those phases), and `in VM` is request plus
response: the filter's own time per request, inside the VM.
"""

import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

LINE = re.compile(r"\]\[(\d+)\]\[.*palisade profile: requests=(\d+) ns/request: (.*)$")
# Phases timed outside the request-headers callback.
OUTSIDE_REQUEST = {"response", "request", "clock"}


def windows(directory):
    """{(config, scenario): [{phase: ns}, ...]}, one dict per kept window."""
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
            phases = {k: int(v) for k, v in (p.split("=") for p in m.group(3).split())}
            inner = [p for p in phases if p not in OUTSIDE_REQUEST]
            phases["rest"] = max(phases["request"] - sum(phases[p] for p in inner), 0)
            phases["in VM"] = phases["request"] + phases["response"]
            found[(config, scenario)].append(phases)
    return found


def main():
    found = windows(sys.argv[1])
    if not found:
        print("no per-phase profile lines (was the filter built with --profile?)")
        return 1
    columns = sorted(found)
    phases = [p for p in found[columns[0]][0] if p != "clock"] + ["clock"]
    width = 24
    print(
        "Filter phases, ns per request: median over the VMs' 2,000-request windows (min-max);"
        " each includes one timer pair (clock):"
    )
    print(f"{'phase':<16}" + "".join(f"{c + ' ' + s:>{width}}" for c, s in columns))
    for phase in phases:
        cells = []
        for key in columns:
            values = [w[phase] for w in found[key]]
            cells.append(f"{statistics.median(values):.0f} ({min(values)}-{max(values)})")
        print(f"{phase:<16}" + "".join(f"{c:>{width}}" for c in cells))
    print("windows: " + ", ".join(f"{c} {s} {len(found[(c, s)])}" for c, s in columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
