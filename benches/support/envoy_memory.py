#!/usr/bin/env python3
"""Memory of a running Envoy and of its wasm VMs.

Usage: envoy_memory.py LABEL:PID:ADMIN_PORT...

Prints one row per Envoy, side by side, and Palisade's RSS against the
empty filter's (goal: at most 1.5 times, at 2 workers).

Envoy 1.40 has no per-VM memory statistic: /stats?filter=^wasm\\. only
counts VMs (wasm.envoy.wasm.runtime.v8.active/created, wasm.wasm_vm_count),
and /memory reports tcmalloc, which does not see V8's wasm memories (V8
maps them itself). So this reads them from /proc/PID/smaps: V8 reserves
8 GiB of address space per wasm32 memory and makes the first
memory.size bytes accessible, so each inaccessible (---p) mapping of
4 GiB or more directly preceded by a read-write mapping is one VM's
linear memory; that mapping's Size is the VM's memory.size and its Rss
what it really uses. Printed with the process RSS and tcmalloc figures.
"""
import json
import re
import sys
import urllib.request

MIB = 1024 * 1024


def smaps(pid):
    maps, cur = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) ", line)
            if m:
                cur = {"lo": int(m[1], 16), "hi": int(m[2], 16), "perm": m[3]}
                maps.append(cur)
                continue
            key, _, value = line.partition(":")
            if cur is not None and value.strip().endswith("kB"):
                cur[key] = int(value.split()[0]) * 1024
    return maps


def linear_memories(pid):
    maps = smaps(pid)
    by_end = {m["hi"]: m for m in maps}
    found = []
    for guard in maps:
        if guard["perm"] == "---p" and guard["hi"] - guard["lo"] >= 4 << 30:
            head = by_end.get(guard["lo"])
            if head and head["perm"].startswith("rw"):
                found.append((head["Size"], head.get("Rss", 0)))
    return found


def admin(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.read().decode()


LABELS = {"none": "a none", "passthrough": "b passthrough", "palisade": "c palisade",
          "scored": "d scored", "realistic": "e realistic", "baseline": "c0 baseline"}
RSS_GOAL = 1.5


def measure(pid, port):
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    mem = json.loads(admin(port, "/memory"))
    return {"rss": rss, "tcmalloc": int(mem["allocated"]), "vms": sorted(linear_memories(pid), reverse=True)}


def main(envoys):
    rows = {}
    print(f"{'config':<16} {'RSS':>9} {'tcmalloc':>9} {'VMs':>4}   wasm linear memory per VM, memory.size/resident MiB (from smaps)")
    for label, pid, port in envoys:
        try:
            m = rows[label] = measure(pid, port)
        except OSError as e:
            print(f"{LABELS.get(label, label):<16} no figures: {e}")
            continue
        vms = ", ".join(f"{size / MIB:.1f}/{res / MIB:.1f}" for size, res in m["vms"]) or "none"
        print(f"{LABELS.get(label, label):<16} {m['rss'] / MIB:>5.1f} MiB {m['tcmalloc'] / MIB:>5.1f} MiB "
              f"{len(m['vms']):>4}   {vms}")
    b, c = rows.get("passthrough"), rows.get("palisade")
    if b and c:
        ratio = c["rss"] / b["rss"]
        verdict = "ok" if ratio <= RSS_GOAL else "ABOVE GOAL"
        print(f"Envoy RSS, c/b = {ratio:.2f} (goal <= {RSS_GOAL}: {verdict})")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main([arg.split(":") for arg in sys.argv[1:]])
