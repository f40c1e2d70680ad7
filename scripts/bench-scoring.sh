#!/usr/bin/env bash
# Scoring benchmark (part of `make bench`), side by side in one run:
#   1. inference: predictions per second on one core for the shipped
#      request models, MLP and logistic (`cargo bench --bench scoring`;
#      goal for the MLP: >= 1,000,000/s);
#   2. `POST /score` throughput: wrk against a running `palisade serve` with
#      the shipped model, one client per request and batches of 128 (the
#      filter's reports), with the clients per second a batch gives.
# Knobs: BENCH_DURATION (10s) for wrk. Every process started here is
# stopped on exit, failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { echo "bench-scoring: $*" >&2; }
DURATION=${BENCH_DURATION:-10s}
CLI="$ROOT/target/release/palisade"
PY="$ROOT/.venv/bin/python"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/palisade-bench-scoring.XXXXXX")
PIDS=()
# shellcheck source=scripts/bench-cleanup.sh
source "$ROOT/scripts/bench-cleanup.sh"
# shellcheck disable=SC2317  # called by the EXIT trap only
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_processes "${PIDS[@]}"
  finish_work "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. inference ------------------------------------------------------------
cargo bench --bench scoring 2>&1 | tee "$WORK/criterion.txt" | grep -v "^Benchmarking\|^Gnuplot\|^$" >&2

# --- 2. POST /score ----------------------------------------------------------
INTERNAL=$("$PY" scripts/free-port.py)
PUBLIC=$("$PY" scripts/free-port.py)
"$CLI" policy-json envoy/demo-policy.yaml | "$PY" -c '
import json, sys
p = json.load(sys.stdin)
p["companion"].update(public="127.0.0.1:" + sys.argv[1], internal="127.0.0.1:" + sys.argv[2],
                      data_dir=sys.argv[3] + "/data", datasets="datasets")
p["scoring"]["records"] = {"sample": 0.05}
json.dump(p, open(sys.argv[3] + "/policy.json", "w"))' "$PUBLIC" "$INTERNAL" "$WORK"
"$CLI" serve --config "$WORK/policy.json" >"$WORK/companion.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$INTERNAL/healthz" >/dev/null && break
  sleep 0.1
done
"$PY" - "$WORK" <<'PYEOF'
import json, random, sys
work = sys.argv[1]
rng = random.Random(1)
def query(i):
    return {"client": f"198.51.{i // 256 % 256}.{i % 256}/32",
            "features": [round(rng.random(), 3) for _ in range(17)]}
for name, body in [("one", query(0)), ("batch", {"batch": [query(i) for i in range(128)]})]:
    with open(f"{work}/{name}.json", "w") as f:
        json.dump(body, f)
    with open(f"{work}/{name}.lua", "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f'local f = io.open("{work}/{name}.json")\nwrk.body = f:read("*a")\nf:close()\n')
PYEOF
for name in one batch; do
  code=$(curl -s -o "$WORK/$name.answer" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "@$WORK/$name.json" "http://127.0.0.1:$INTERNAL/score")
  [ "$code" = 200 ] || { log "POST /score ($name) answered $code: $(cat "$WORK/$name.answer")"; exit 1; }
  grep -q '"score":[0-9]' "$WORK/$name.answer" || { log "no score in: $(head -c 300 "$WORK/$name.answer")"; exit 1; }
  log "wrk $DURATION: POST /score, $name"
  wrk -t 1 -c 16 -d "$DURATION" -s "$WORK/$name.lua" --latency "http://127.0.0.1:$INTERNAL/score" >"$WORK/wrk-$name.txt"
done
"$PY" - "$WORK" <<'PYEOF'
import re, sys
work = sys.argv[1]
def rate(name):
    text = open(f"{work}/wrk-{name}.txt").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = re.search(r"50%\s+(\S+)", text).group(1)
    p99 = re.search(r"99%\s+(\S+)", text).group(1)
    return rps, p50, p99
one, batch = rate("one"), rate("batch")
print("\nPOST /score against the companion (shipped MLP; wrk and the companion share 2 cores):")
print(f"  one client per request   {one[0]:10.0f} req/s      p50 {one[1]:>8}  p99 {one[2]:>8}")
print(f"  batches of 128           {batch[0]:10.0f} batches/s  p50 {batch[1]:>8}  p99 {batch[2]:>8}")
print(f"  clients scored by batch  {batch[0] * 128:10.0f} /s")
PYEOF
