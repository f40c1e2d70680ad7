#!/usr/bin/env bash
# Companion benchmark (part of `make bench`), all side by side in one run:
#   1. text-challenge renders per second on one core: Palisade's renderer
#      against Python `captcha`'s ImageCaptcha (in .venv) and the Rust
#      `captcha` crate, at the same image size (`cargo bench --bench
#      companion`, which also times one_click/grid tiles, audio clips and
#      verify). Goals: >= 50x Python, and no slower than the Rust crate.
#   2. challenge-page throughput: wrk on GET <prefix>challenge?kind=text
#      against a running `palisade serve` (SQLite store).
#   3. companion memory (RSS) at idle and after 100,000 challenges.
# Knobs: BENCH_DURATION (10s) for wrk, BENCH_CHALLENGES (100000).
# Every process started here is stopped on exit, failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { echo "bench-companion: $*" >&2; }
DURATION=${BENCH_DURATION:-10s}
CHALLENGES=${BENCH_CHALLENGES:-100000}
CLI="$ROOT/target/release/palisade"
PY="$ROOT/.venv/bin/python"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/palisade-bench-companion.XXXXXX")
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

# --- 1. renders ------------------------------------------------------------
SIZE=$(cargo bench --bench companion -- --print-size 2>/dev/null | tail -1)
read -r WIDTH HEIGHT <<<"$SIZE"
log "Python captcha ImageCaptcha at ${WIDTH}x${HEIGHT}"
PY_RATE=$("$PY" - "$WIDTH" "$HEIGHT" <<'PYEOF'
import sys, time, random
from captcha.image import ImageCaptcha
w, h = int(sys.argv[1]), int(sys.argv[2])
gen = ImageCaptcha(width=w, height=h)
alphabet = "ABCDEFGHJKMNPRSTUVWXYZ23456789"
for _ in range(20):
    gen.generate("".join(random.choice(alphabet) for _ in range(5)), format="png")
n, start = 0, time.perf_counter()
while time.perf_counter() - start < 3.0:
    gen.generate("".join(random.choice(alphabet) for _ in range(5)), format="png")
    n += 1
print(f"{n / (time.perf_counter() - start):.1f}")
PYEOF
)
cargo bench --bench companion 2>&1 | tee "$WORK/criterion.txt" | grep -v "^Benchmarking\|^Gnuplot\|^$" >&2
median_ns() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["median"]["point_estimate"])' \
  "target/criterion/$1/new/estimates.json"; }
OURS=$(median_ns "render_text/palisade_d2")
CRATE=$(median_ns "render_text/captcha_crate")
"$PY" - "$PY_RATE" "$OURS" "$CRATE" <<'PYEOF'
import sys
py, ours_ns, crate_ns = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
ours, crate = 1e9 / ours_ns, 1e9 / crate_ns
print("\ntext-challenge renders per second, one core (same image size, 5 characters):")
print(f"  palisade (difficulty 2)   {ours:10.0f}/s")
print(f"  Rust captcha crate        {crate:10.0f}/s")
print(f"  Python captcha            {py:10.0f}/s")
print(f"  palisade / Python         {ours / py:10.1f}x   (goal >= 50x)")
print(f"  palisade / Rust crate     {ours / crate:10.2f}x   (goal >= 1x)")
PYEOF

# --- 2. page throughput, 3. memory -----------------------------------------
PUBLIC=$(python3 scripts/free-port.py)
INTERNAL=$(python3 scripts/free-port.py)
"$CLI" policy-json envoy/demo-policy.yaml > "$WORK/demo.json"
"$PY" - "$WORK/demo.json" "$WORK/policy.json" "$PUBLIC" "$INTERNAL" "$WORK/data" <<'PYEOF'
import json, sys
p = json.load(open(sys.argv[1]))
p["companion"].update({"public": f"127.0.0.1:{sys.argv[3]}", "internal": f"127.0.0.1:{sys.argv[4]}",
                       "data_dir": sys.argv[5], "datasets": "datasets"})
json.dump(p, open(sys.argv[2], "w"))
PYEOF
"$CLI" serve --config "$WORK/policy.json" > "$WORK/companion.log" &
PID=$!
PIDS+=($PID)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$INTERNAL/healthz" >/dev/null && break; sleep 0.1; done
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status"; }
IDLE=$(rss_mib)
UA="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
page() {
  wrk -t2 -c16 -d"$DURATION" -H "User-Agent: $UA" -H "X-Palisade-Client-Ip: 192.0.2.7" \
    -H "Accept-Language: en" "$@" 2>&1 | awk '/Requests\/sec/ {print $2} /Latency/ {lat=$2} END {print lat}'
}
log "wrk: text challenge pages for $DURATION"
read -r -d '' PAGE_RATE PAGE_LAT < <(page "http://127.0.0.1:$PUBLIC/.palisade/challenge?kind=text&return=/x"; printf '\0') || true
log "wrk: text challenge images for $DURATION"
ID=$(curl -fs -H "Accept: application/json" -H "User-Agent: $UA" "http://127.0.0.1:$PUBLIC/.palisade/challenge?kind=text" \
  | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
read -r -d '' IMG_RATE IMG_LAT < <(page "http://127.0.0.1:$PUBLIC/.palisade/challenge/$ID/image"; printf '\0') || true
ISSUED=$(curl -fs "http://127.0.0.1:$INTERNAL/stats" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["issued"])')
log "issuing challenges up to $CHALLENGES"
"$PY" - "$PUBLIC" "$((CHALLENGES - ISSUED))" "$UA" <<'PYEOF'
import http.client, sys, threading
port, total, ua = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def worker(n):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(n):
        c.request("GET", "/.palisade/challenge?kind=grid", headers={"Accept": "application/json", "User-Agent": ua})
        c.getresponse().read()
threads = [threading.Thread(target=worker, args=(max(total, 0) // 8,)) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
PYEOF
AFTER=$(rss_mib)
ISSUED=$(curl -fs "http://127.0.0.1:$INTERNAL/stats" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["issued"])')
DB=$(du -sk "$WORK/data" | awk '{printf "%.1f", $1 / 1024}')
cat <<MSG

companion (one process, SQLite store, 2 cores shared with wrk):
  text challenge page     $PAGE_RATE req/s  (mean latency $PAGE_LAT)
  text challenge image    $IMG_RATE req/s  (mean latency $IMG_LAT)
  memory (RSS) idle       $IDLE MiB
  after $ISSUED challenges  $AFTER MiB  (SQLite data directory $DB MiB)
MSG
