#!/usr/bin/env bash
# Envoy throughput benchmark: what the Palisade filter costs in a real Envoy.
#
#   scripts/bench-envoy.sh        (part of `make bench`)
#
# Five Envoys (six with c0; --concurrency 2, 127.0.0.1 on free ports),
# identical but for their HTTP filters and policies, all answering with a direct_response (no upstream):
#   a  none         no filter besides the router    benches/envoy-none.yaml
#   b  passthrough  an empty proxy-wasm filter      benches/envoy-passthrough.yaml
#   c  palisade     Palisade with the benchmark     benches/envoy-palisade.yaml
#                   policy (1,000 routes, 100 rules, 200,000 CIDRs:
#                   benches/support/policy.rs, the same policy as
#                   `cargo bench --bench engine`, which writes it)
#   d  scored       as c with `scoring.enabled` (defaults: 8,192 slots, 60 s
#                   TTL), on the cached path: the client's score is in its
#                   slot, so each worker serves it from its copy of the
#                   slot (synced every 32 requests or 100 ms:
#                   src/scoring/local.rs), reads one response status in
#                   eight, and nothing waits. c and d
#                   share a stand-in for the companion's internal listener
#                   (benches/support/score_stand_in.py, score 10: allow).
# Three scenarios, all a browser-like request (User-Agent, Accept,
# Accept-Language) from 127.0.0.1:
#   allow    GET /svc990/items/42  route bench-allow (allow), no rule fires
#   token    GET /svc995/account   route bench-token (challenge_all) with a
#            valid pass token in X-Palisade-Token (`palisade token sign`,
#            bound to 127.0.0.1 and the user agent)
#   browser  the allow request with what Chrome sends on a navigation
#            besides: 13 more headers (client hints, Sec-Fetch-*, ...) and
#            a cookie header with analytics and session cookies, plus the
#            X-Forwarded-For a load balancer in front would add (198.18.0.42,
#            clean in both policies): e's demo policy takes the client from
#            it (`client.source: x_forwarded_for`), c's reads the peer
# Each (config, scenario) runs BENCH_ROUNDS times, interleaved (round-robin,
# the config order rotating every round) so that load drifting on the
# machine hits every config alike. Prints req/s, p50 and p99 and Envoy's
# CPU time per request (medians over the rounds), the ratios c/a and c/b (goals on the allow path: c/b >= 0.9,
# c/a >= 0.7) and d/c (scoring on against off; goal >= 0.95), and memory: process RSS, tcmalloc, and each wasm VM's linear
# memory (Envoy has no per-VM memory stat; see benches/support/envoy_memory.py).
#
# Envoy runs on CPU 0 and wrk on CPU 1 (taskset), so that they do not take
# each other's time; BENCH_PIN=0 leaves placement to the kernel (and a
# one-CPU machine does).
#
# Knobs: BENCH_DURATION (10s), BENCH_WARMUP (3s per config and scenario),
# BENCH_ROUNDS (5), BENCH_THREADS (2) and BENCH_CONNECTIONS (32) for wrk,
# BENCH_CONCURRENCY (2; 1 with BENCH_PROFILE) for Envoy, BENCH_BASELINE_WASM (see c0),
# BENCH_PROFILE=1 builds the filter with its per-phase timers
# (src/filter/profile.rs) and prints where the time goes in c to e (the
# timers cost time themselves: compare the ratios of a run without them), BENCH_CONFIGS ("none passthrough palisade scored
# realistic", plus baseline with BENCH_BASELINE_WASM) to run only some, BENCH_KEEP=1 keeps the work directory
# (configs, logs, wrk outputs; it is always kept on failure).
# Every process started here is stopped on exit, failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { echo "bench-envoy: $*" >&2; }
# shellcheck source=scripts/bench-cleanup.sh
. scripts/bench-cleanup.sh

DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-3s}
ROUNDS=${BENCH_ROUNDS:-5}
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
PROFILE=${BENCH_PROFILE:-0}
# The profile's timers read the wall clock: two workers sharing Envoy's CPU
# would each count the other's time slices, so a profile runs one.
CONCURRENCY=${BENCH_CONCURRENCY:-$([ "$PROFILE" = 1 ] && echo 1 || echo 2)}
ENVOY_ON=() WRK_ON=()
if [ "${BENCH_PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  ENVOY_ON=(taskset -c 0) WRK_ON=(taskset -c 1)
fi
SCENARIOS=(allow token browser)

ENVOY="$ROOT/.venv/bin/envoy"
CLI="$ROOT/target/release/palisade"
WASM="$ROOT/target/wasm32-wasip1/release/palisade.wasm"
[ "$PROFILE" = 1 ] && WASM="$ROOT/target/profile/wasm32-wasip1/release/palisade.wasm"
PASS_WASM="$ROOT/target/passthrough/wasm32-wasip1/release/passthrough.wasm"
BASELINE_WASM=${BENCH_BASELINE_WASM:-}
if [ -n "$BASELINE_WASM" ]; then
  [ -f "$BASELINE_WASM" ] || { log "BENCH_BASELINE_WASM: no such file: $BASELINE_WASM"; exit 2; }
  BASELINE_WASM=$(realpath "$BASELINE_WASM")
fi
read -r -a CONFIGS <<<"${BENCH_CONFIGS:-none passthrough palisade scored realistic${BASELINE_WASM:+ baseline}}"
STAND_IN_PID=
running() { [[ " ${CONFIGS[*]} " == *" $1 "* ]]; }
# The realistic config is a browser's traffic, so it runs that scenario only.
scenarios_of() { if [ "$1" = realistic ]; then echo browser; else echo "${SCENARIOS[@]}"; fi; }
UA="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
ACCEPT="text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
LANGUAGE="en-US,en;q=0.9"
ALLOW_PATH=/svc990/items/42
TOKEN_PATH=/svc995/account
BROWSER_HEADERS=(
  -H "Accept-Encoding: gzip, deflate, br, zstd"
  -H "Cache-Control: max-age=0"
  -H 'Sec-Ch-Ua: "Not/A)Brand";v="8", "Chromium";v="126", "Google Chrome";v="126"'
  -H "Sec-Ch-Ua-Mobile: ?0"
  -H 'Sec-Ch-Ua-Platform: "Linux"'
  -H "Upgrade-Insecure-Requests: 1"
  -H "Sec-Fetch-Site: same-origin"
  -H "Sec-Fetch-Mode: navigate"
  -H "Sec-Fetch-User: ?1"
  -H "Sec-Fetch-Dest: document"
  -H "Referer: http://127.0.0.1/svc990/items"
  -H "Priority: u=0, i"
  -H "DNT: 1"
  -H "X-Forwarded-For: 198.18.0.42"
  -H "Cookie: _ga=GA1.1.1234567890.1733100000; _ga_X1Y2Z3=GS1.1.1733100000.1.1.1733100100.0.0.0; session=eyJ1c2VyIjo0Mn0.Z0x1aw.Qm9ndXNTaWduYXR1cmVGb3JCZW5jaA; theme=dark; consent=analytics%3Dyes%26ads%3Dno"
)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/palisade-bench-envoy.XXXXXX")
declare -A PID PORT ADMIN
WRK_PID=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # shellcheck disable=SC2086  # the wrk PID may be unset
  stop_processes $WRK_PID $STAND_IN_PID "${PID[@]}"
  finish_work "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- prerequisites (all idempotent and quick when already in place) --------
bash scripts/install-system-deps.sh
bash scripts/install-envoy.sh >/dev/null
[ -x "$CLI" ] || { log "building the CLI"; cargo build --release --bin palisade; }
if [ "$PROFILE" = 1 ]; then
  log "building the filter with its per-phase timers (BENCH_PROFILE=1)"
  bash scripts/build-wasm.sh --profile
fi
[ -f "$WASM" ] || { log "building the filter"; bash scripts/build-wasm.sh; }
bash scripts/build-wasm.sh --manifest-path benches/passthrough/Cargo.toml
log "envoy $("$ENVOY" --version | grep -o 'version: [^ ]*' || true); palisade.wasm $(stat -c %s "$WASM") bytes, built $(date -r "$WASM" '+%F %T')"

# --- the policy and a pass token for it -------------------------------------
PALISADE_BENCH_DUMP_POLICY="$WORK/policy.json" cargo bench --bench engine >&2
"$CLI" check-config "$WORK/policy.json"
echo '{}' >"$WORK/empty.json"
python3 -c 'import json, sys; p = json.load(open(sys.argv[1])); p["scoring"] = {"enabled": True}; print(json.dumps(p))' \
  "$WORK/policy.json" >"$WORK/policy-scored.json"
"$CLI" check-config "$WORK/policy-scored.json"
"$CLI" policy-json envoy/demo-policy.yaml >"$WORK/demo.json"
python3 - "$WORK/demo.json" "$WORK/policy.json" >"$WORK/policy-realistic.json" <<'PY'
import json, sys
demo, bench = (json.load(open(path)) for path in sys.argv[1:])
demo["routes"] += bench["routes"]
demo["rules"] += bench["rules"]
demo.setdefault("lists", {}).update(bench["lists"])
print(json.dumps(demo))
PY
"$CLI" check-config "$WORK/policy-realistic.json"
TOKEN=$("$CLI" token sign --config "$WORK/policy.json" --ip 127.0.0.1 --user-agent "$UA")
"$CLI" token verify --config "$WORK/policy.json" --ip 127.0.0.1 --user-agent "$UA" "$TOKEN" >/dev/null \
  || { log "the pass token does not verify"; exit 1; }

# --- start the stand-in and the four Envoys ----------------------------------
read -r -a ports < <(python3 scripts/free-port.py $((2 * ${#CONFIGS[@]} + 1)) | xargs)
STAND_IN_PORT=${ports[$((2 * ${#CONFIGS[@]}))]}
python3 benches/support/score_stand_in.py "$STAND_IN_PORT" 10 >"$WORK/stand-in.log" 2>&1 &
STAND_IN_PID=$!
i=0
for c in "${CONFIGS[@]}"; do
  PORT[$c]=${ports[$i]} ADMIN[$c]=${ports[$((i + 1))]}
  i=$((i + 2))
  case $c in
    none) policy="$WORK/empty.json" wasm=/dev/null ;;
    passthrough) policy="$WORK/empty.json" wasm="$PASS_WASM" ;;
    palisade) policy="$WORK/policy.json" wasm="$WASM" ;;
    scored) policy="$WORK/policy-scored.json" wasm="$WASM" ;;
    realistic) policy="$WORK/policy-realistic.json" wasm="$WASM" ;;
    baseline) policy="$WORK/policy.json" wasm="$BASELINE_WASM" ;;
    *) log "BENCH_CONFIGS: unknown config $c"; exit 2 ;;
  esac
  case $c in scored | realistic | baseline) template=benches/envoy-palisade.yaml ;; *) template=benches/envoy-$c.yaml ;; esac
  python3 scripts/render_envoy.py "$template" "$policy" "$wasm" \
    "${PORT[$c]}" "${ADMIN[$c]}" 0 0 "$STAND_IN_PORT" >"$WORK/envoy-$c.yaml"
  "${ENVOY_ON[@]}" "$ENVOY" -c "$WORK/envoy-$c.yaml" --concurrency "$CONCURRENCY" --use-dynamic-base-id \
    --disable-hot-restart --log-level warn >"$WORK/envoy-$c.log" 2>&1 &
  PID[$c]=$!
done

for c in "${CONFIGS[@]}"; do
  started=$SECONDS
  until curl -sf -o /dev/null "http://127.0.0.1:${ADMIN[$c]}/ready"; do
    if ! kill -0 "${PID[$c]}" 2>/dev/null; then
      log "envoy ($c) exited:"; tail -n 40 "$WORK/envoy-$c.log" >&2; exit 1
    fi
    if [ $((SECONDS - started)) -gt 120 ]; then
      log "envoy ($c) not ready in 120 s:"; tail -n 40 "$WORK/envoy-$c.log" >&2; exit 1
    fi
    sleep 0.2
  done
done
log "envoys ready: $(for c in "${CONFIGS[@]}"; do printf '%s on :%s ' "$c" "${PORT[$c]}"; done)"

# --- check that each scenario is what it claims ------------------------------
counter() { # CONFIG NAME: a Palisade counter's value (0 if undefined)
  curl -s "http://127.0.0.1:${ADMIN[$1]}/stats?filter=^wasmcustom\.palisade\.$2\$" | awk -F': ' '{ print $2 } END { if (NR == 0) print 0 }'
}
status() { # CONFIG PATH [extra curl args]
  local c=$1 path=$2
  shift 2
  curl -s -o /dev/null -w '%{http_code}' -H "User-Agent: $UA" -H "Accept: $ACCEPT" \
    -H "Accept-Language: $LANGUAGE" "$@" "http://127.0.0.1:${PORT[$c]}$path"
}
expect() { # WANT GOT WHAT
  [ "$1" = "$2" ] || { log "check failed: $3: expected HTTP $1, got $2"; exit 1; }
}
for c in "${CONFIGS[@]}"; do
  expect 200 "$(status "$c" "$ALLOW_PATH" "${BROWSER_HEADERS[@]}")" "$c browser path"
  [ "$c" = realistic ] && continue
  expect 200 "$(status "$c" "$ALLOW_PATH")" "$c allow path"
  expect 200 "$(status "$c" "$TOKEN_PATH" -H "X-Palisade-Token: $TOKEN")" "$c token path"
done
# The demo policy's rules are live in e: its admin route blocks.
if running realistic; then
  expect 403 "$(status realistic /admin/x "${BROWSER_HEADERS[@]}")" "realistic: the demo's admin route"
fi
# Palisade is really deciding: no token challenges, the block route blocks.
if running palisade; then
  expect 403 "$(status palisade "$TOKEN_PATH")" "palisade token path without a token (challenge)"
  expect 403 "$(status palisade /svc980/x)" "palisade bench-block route"
  [ "$(counter palisade score.reports.sent)" = 0 ] || { log "check failed: palisade (scoring off) sent reports"; exit 1; }
fi
if running passthrough; then
  expect 200 "$(status passthrough "$TOKEN_PATH")" "passthrough token path without a token"
fi
# Scoring is on the cached path: the client was reported, its score came
# back, and requests are decided with it.
if running scored; then
  started=$SECONDS
  until [ "$(counter scored score.reports.sent)" -ge 1 ] && [ "$(status scored "$ALLOW_PATH")" = 200 ] \
    && curl -s "http://127.0.0.1:${ADMIN[scored]}/stats?usedonly&filter=score\.points" | grep -q .; do
    if [ $((SECONDS - started)) -gt 15 ]; then
      log "check failed: scored: no cached score in 15 s"; cat "$WORK/stand-in.log" >&2; exit 1
    fi
    sleep 0.2
  done
fi

# --- measure ----------------------------------------------------------------
cpu_ticks() { # PID: user + system CPU time so far, in clock ticks
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}
run_wrk() { # OUT DURATION CONFIG SCENARIO
  local out=$1 duration=$2 c=$3 scenario=$4 path extra=() cpu logged
  case $scenario in
    allow) path=$ALLOW_PATH ;;
    token) path=$TOKEN_PATH extra=(-H "X-Palisade-Token: $TOKEN") ;;
    browser) path=$ALLOW_PATH extra=("${BROWSER_HEADERS[@]}") ;;
  esac
  # In the background so that a signal stops it at once (see cleanup).
  "${WRK_ON[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --latency \
    -H "User-Agent: $UA" -H "Accept: $ACCEPT" -H "Accept-Language: $LANGUAGE" "${extra[@]}" \
    "http://127.0.0.1:${PORT[$c]}$path" >"$out" 2>&1 &
  WRK_PID=$!
  cpu=$(cpu_ticks "${PID[$c]}")
  logged=$(wc -l <"$WORK/envoy-$c.log")
  wait "$WRK_PID" || { log "wrk failed:"; cat "$out" >&2; exit 1; }
  WRK_PID=
  # The per-phase means the VMs logged during this run (BENCH_PROFILE=1).
  tail -n +"$((logged + 1))" "$WORK/envoy-$c.log" | grep -F 'palisade profile:' >"$out.profile" || true
  # Envoy's CPU time over the run: the cost per request, which a loaded
  # machine disturbs less than it disturbs throughput.
  echo "envoy cpu ticks: $(($(cpu_ticks "${PID[$c]}") - cpu)) of $(getconf CLK_TCK)/s" >>"$out"
}

mkdir -p "$WORK/wrk" "$WORK/warmup"
per_round=0
for c in "${CONFIGS[@]}"; do read -r -a ss <<<"$(scenarios_of "$c")"; per_round=$((per_round + ${#ss[@]})); done
runs=$((ROUNDS * per_round))
log "warm-up: $WARMUP per config and scenario; then $ROUNDS rounds of $per_round (config, scenario) pairs = $runs runs of $DURATION (wrk -t$THREADS -c$CONNECTIONS)"
for c in "${CONFIGS[@]}"; do
  for s in $(scenarios_of "$c"); do run_wrk "$WORK/warmup/$c-$s.txt" "$WARMUP" "$c" "$s"; done
done
n=0
for ((r = 1; r <= ROUNDS; r++)); do
  for ((k = 0; k < ${#CONFIGS[@]}; k++)); do
    c=${CONFIGS[$(((k + r - 1) % ${#CONFIGS[@]}))]}
    for s in $(scenarios_of "$c"); do
      n=$((n + 1))
      run_wrk "$WORK/wrk/$r-$c-$s.txt" "$DURATION" "$c" "$s"
      log "[$n/$runs] round $r $c $s: $(grep -o 'Requests/sec: *[0-9.]*' "$WORK/wrk/$r-$c-$s.txt" | tr -s ' ')"
    done
  done
done

# --- report -----------------------------------------------------------------
echo
echo "Envoy benchmark: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, $ROUNDS interleaved rounds, envoy --concurrency $CONCURRENCY, $(nproc) CPUs, $([ ${#ENVOY_ON[@]} -gt 0 ] && echo "envoy on CPU 0 and wrk on CPU 1" || echo "not pinned"), load average $(cut -d' ' -f1-3 /proc/loadavg)"
report_rc=0
python3 benches/support/wrk_report.py "$WORK/wrk" || report_rc=$?
if [ "$PROFILE" = 1 ]; then
  echo
  python3 benches/support/profile_report.py "$WORK/wrk"
fi

echo
echo "Palisade decisions counted by the filter (includes the checks and warm-up):"
running palisade && curl -s "http://127.0.0.1:${ADMIN[palisade]}/stats?filter=^wasmcustom\.palisade\.(requests\.|route\.bench|token\.)" \
  | grep -v ': 0$' | sed 's/^/  /' || true
echo "Scoring in d (reports and clients sent, fallbacks, slot updates given up; the learned scores used):"
running scored && curl -s "http://127.0.0.1:${ADMIN[scored]}/stats?filter=^wasmcustom\.palisade\.score\." | sed 's/^/  /' || true

echo
echo "Memory after the runs (b to e and c0: a wasm VM per worker and one on the main thread, plus the base VM they are cloned from):"
python3 benches/support/envoy_memory.py $(for c in "${CONFIGS[@]}"; do printf '%s:%s:%s ' "$c" "${PID[$c]}" "${ADMIN[$c]}"; done) \
  || log "no memory figures"
exit "$report_rc"
