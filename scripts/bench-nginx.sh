#!/usr/bin/env bash
# nginx throughput benchmark: what Palisade's check costs in a real nginx.
#
#   scripts/bench-nginx.sh        (part of `make bench`)
#
# nginx supports Palisade through the companion: every request makes nginx
# ask the companion's internal listener (`GET /auth`, nginx/palisade.conf's
# auth_request) before proxying. One nginx (Debian's, as the current user,
# BENCH_NGINX_WORKERS worker processes: the same workers for every config;
# benches/nginx-bench.conf) has three servers on free 127.0.0.1 ports:
#   a  none      proxies straight to the upstream, no Palisade
#   b, c         the same location with nginx/palisade.conf and
#      palisade  palisade-headers.conf included, checking with a
#                `palisade serve` on free ports (envoy/demo-policy.yaml)
#   upstream     a server of the same nginx answering `return 200 "ok\n"`,
#                so that the upstream is never the bottleneck
# The requests, a Chrome-like GET with every header Chrome sends to a
# loopback host (the demo policy's header checks want them all), and
# X-Forwarded-For: 127.0.0.1 (the demo policy reads the client from it,
# trusted_hops 1):
#   a, b  allow  GET /public/bench   route `public` (allow), score 0, no rule
#   c     token  GET /login          route `login` (challenge_all, pow) with a
#                valid pass token in X-Palisade-Token (`palisade token sign
#                --level 2`, bound to 127.0.0.1 and the user agent)
# `palisade explain` and the companion's own answer confirm each path before
# anything is measured, and a warm-up request that is not a 200 fails the
# bench. Each (config, scenario) runs BENCH_ROUNDS times, interleaved
# (round-robin, the order rotating every round) so that load drifting on the
# machine hits every config alike. Prints req/s, p50 and p99 (medians over
# the rounds), the CPU time per request of nginx's workers, the companion and
# the whole machine (/proc: with 2 cores shared by wrk, nginx and the
# companion, throughput follows CPU per request), and the ratios b/a and c/a
# (goal >= 0.6; printed, not enforced).
#
# Then the check alone: wrk straight at the companion's /auth with the
# headers nginx sends (X-Original-URI, X-Original-Method, X-Original-Proto,
# X-Real-IP), for the same allow and token requests, without X-Request-Id
# (with a constant one the companion would answer every request from its
# verdict cache), and for the allow request with a unique X-Request-Id per
# request, as nginx sends ($request_id: the verdict is kept for repeats).
# Also printed: how many connections nginx holds to the companion (sampled
# with `ss` during the nginx runs: keepalive reuses a few rather than opening
# one per check), the companion's checks by action, and its memory (RSS).
#
# Knobs: BENCH_DURATION (8s), BENCH_WARMUP (2s per config and scenario),
# BENCH_ROUNDS (3), BENCH_THREADS (2) and BENCH_CONNECTIONS (32) for wrk,
# BENCH_NGINX_WORKERS (2: the machine's 2 cores are shared by wrk, nginx and
# the companion), BENCH_KEEP=1 keeps the work directory (configs, logs, wrk
# outputs; it is always kept on failure).
# Every process started here is stopped on exit, failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { echo "bench-nginx: $*" >&2; }
# shellcheck source=scripts/bench-cleanup.sh
. scripts/bench-cleanup.sh

DURATION=${BENCH_DURATION:-8s}
WARMUP=${BENCH_WARMUP:-2s}
ROUNDS=${BENCH_ROUNDS:-3}
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
WORKERS=${BENCH_NGINX_WORKERS:-2}

NGINX=/usr/sbin/nginx
CLI="$ROOT/target/release/palisade"
UA="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
# What Chrome 131 sends with its user agent to a loopback host (as
# tests/e2e/conftest.py's BROWSER_HEADERS), and the client address.
HEADERS=(
  "User-Agent: $UA"
  "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
  "Accept-Language: en-GB,en;q=0.9"
  'sec-ch-ua: "Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"'
  "sec-ch-ua-mobile: ?0"
  'sec-ch-ua-platform: "Linux"'
  "Sec-Fetch-Site: none"
  "Sec-Fetch-Mode: navigate"
  "X-Forwarded-For: 127.0.0.1"
)
ALLOW_PATH=/public/bench
TOKEN_PATH=/login

WORK=$(mktemp -d "${TMPDIR:-/tmp}/palisade-bench-nginx.XXXXXX")
declare -A PID
WRK_PID=
SAMPLER_PID=

# shellcheck disable=SC2317  # called by the EXIT trap only
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # shellcheck disable=SC2086  # the wrk and sampler PIDs may be unset
  stop_processes $WRK_PID $SAMPLER_PID "${PID[@]}"
  finish_work "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- prerequisites (idempotent and quick when already in place) --------------
bash scripts/install-system-deps.sh
[ -x "$CLI" ] || { log "building the CLI"; cargo build --release --bin palisade; }
log "$("$NGINX" -v 2>&1); palisade $(stat -c %s "$CLI") bytes, built $(date -r "$CLI" '+%F %T')"

# --- ports, the policy and a pass token for it --------------------------------
read -r PUBLIC INTERNAL UPSTREAM PORT_NONE PORT_PALISADE < <(python3 scripts/free-port.py 5 | xargs)
"$CLI" policy-json envoy/demo-policy.yaml >"$WORK/demo.json"
python3 - "$WORK/demo.json" "$WORK/policy.json" "$PUBLIC" "$INTERNAL" "$WORK/data" "$ROOT/datasets" <<'PYEOF'
import json, sys
src, dst, public, internal, data, datasets = sys.argv[1:]
p = json.load(open(src))
p["companion"].update({"public": f"127.0.0.1:{public}", "internal": f"127.0.0.1:{internal}",
                       "data_dir": data, "datasets": datasets})
json.dump(p, open(dst, "w"))
PYEOF
"$CLI" check-config "$WORK/policy.json" >&2
TOKEN=$("$CLI" token sign --config "$WORK/policy.json" --level 2 --ip 127.0.0.1 --user-agent "$UA")
"$CLI" token verify --config "$WORK/policy.json" --ip 127.0.0.1 --user-agent "$UA" "$TOKEN" >/dev/null \
  || { log "the pass token does not verify"; exit 1; }

# --- each request takes the path it claims (the engine's own account) --------
# As the companion will see it: Host 127.0.0.1 ($host), X-Real-IP 127.0.0.1.
explain() { # PATH [extra headers]
  local path=$1 h args=()
  shift
  for h in "${HEADERS[@]}" "$@"; do args+=(-H "$h"); done
  "$CLI" explain --config "$WORK/policy.json" --path "$path" --host 127.0.0.1 --scheme http \
    --ip 127.0.0.1 --json "${args[@]}"
}
explain "$ALLOW_PATH" >"$WORK/explain-allow.json"
explain "$TOKEN_PATH" "X-Palisade-Token: $TOKEN" >"$WORK/explain-token.json"
python3 - "$WORK/explain-allow.json" "$WORK/explain-token.json" <<'PYEOF' || exit 1
import json, sys
allow, token = (json.load(open(f)) for f in sys.argv[1:])
problems = []
def want(what, got, expected):
    if got != expected:
        problems.append(f"{what}: expected {expected!r}, got {got!r}")
want("allow path: action", allow["action"], "allow")
want("allow path: route", allow["route"], "public")
want("allow path: score", allow["score"], 0)
want("allow path: rules fired", allow["rules"], [])
want("allow path: rate limit", allow["rate_limit"], None)
want("allow path: client address", allow["client"]["ip"], "127.0.0.1")
want("token path: action", token["action"], "allow")
want("token path: route", token["route"], "login")
want("token path: route action", token["route_action"], "challenge_all")
want("token path: token", token["token"]["state"], "valid")
want("token path: rate limit", token["rate_limit"], None)
for p in problems:
    print(f"bench-nginx: explain: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PYEOF

# --- start the companion and nginx --------------------------------------------
"$CLI" serve --config "$WORK/policy.json" >"$WORK/companion.log" 2>&1 &
PID[companion]=$!
started=$SECONDS
until curl -sf -o /dev/null "http://127.0.0.1:$INTERNAL/healthz"; do
  if ! kill -0 "${PID[companion]}" 2>/dev/null || [ $((SECONDS - started)) -gt 30 ]; then
    log "the companion did not start:"; tail -n 40 "$WORK/companion.log" >&2; exit 1
  fi
  sleep 0.1
done

# The snippets pointed at the companion (scripts/render_nginx.py, closed
# failure mode), then benches/nginx-bench.conf in place of the demo's nginx.conf.
python3 - "$WORK/nginx" "$WORK/policy.json" "$WORKERS" "$UPSTREAM" "$PORT_NONE" "$PORT_PALISADE" <<'PYEOF'
import json, os, sys
sys.path.insert(0, "scripts")
import render_nginx
out, policy, workers, upstream, none, palisade = sys.argv[1:]
render_nginx.render(out, json.load(open(policy)), palisade, upstream, "closed")
text = open("benches/nginx-bench.conf").read()
for old, new in {"__WORK__": os.path.abspath(out), "__USER__": render_nginx.current_user(),
                 "__WORKERS__": str(int(workers)), "__UPSTREAM_PORT__": str(int(upstream)),
                 "__PORT_NONE__": str(int(none)), "__PORT_PALISADE__": str(int(palisade))}.items():
    text = text.replace(old, new)
open(os.path.join(out, "nginx.conf"), "w").write(text)
PYEOF
"$NGINX" -t -q -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" \
  >"$WORK/nginx/stderr.log" 2>&1 &
PID[nginx]=$!
started=$SECONDS
until curl -s -o /dev/null "http://127.0.0.1:$PORT_NONE/" && curl -s -o /dev/null "http://127.0.0.1:$PORT_PALISADE/"; do
  if ! kill -0 "${PID[nginx]}" 2>/dev/null || [ $((SECONDS - started)) -gt 30 ]; then
    log "nginx did not start:"; tail -n 40 "$WORK/nginx/error.log" "$WORK/nginx/stderr.log" >&2; exit 1
  fi
  sleep 0.1
done
log "companion on :$PUBLIC (public) and :$INTERNAL (internal); nginx ($WORKERS workers): a on :$PORT_NONE, b/c on :$PORT_PALISADE, upstream on :$UPSTREAM"

# --- check that each scenario is what it claims --------------------------------
status() { # PORT PATH [extra curl args]
  local port=$1 path=$2 h args=()
  shift 2
  for h in "${HEADERS[@]}"; do args+=(-H "$h"); done
  curl -s -o /dev/null -w '%{http_code}' "${args[@]}" "$@" "http://127.0.0.1:$port$path"
}
expect() { # WANT GOT WHAT
  [ "$1" = "$2" ] || { log "check failed: $3: expected HTTP $1, got $2"; exit 1; }
}
expect 200 "$(status "$PORT_NONE" "$ALLOW_PATH")" "a allow path"
expect 200 "$(status "$PORT_PALISADE" "$ALLOW_PATH")" "b allow path"
expect 200 "$(status "$PORT_PALISADE" "$TOKEN_PATH" -H "X-Palisade-Token: $TOKEN")" "c token path"
# Palisade is really deciding: no token is challenged, a bad one too.
expect 403 "$(status "$PORT_PALISADE" "$TOKEN_PATH")" "the token path without a token (challenge)"
expect 403 "$(status "$PORT_PALISADE" "$TOKEN_PATH" -H "X-Palisade-Token: x$TOKEN")" "the token path with a bad token"
# The check straight at the companion, as nginx asks it: the same decisions.
CHECK_HEADERS=("X-Original-Method: GET" "X-Original-Proto: http" "X-Real-IP: 127.0.0.1")
check() { # URI [extra curl args]: prints the answer's status and x-palisade-action
  local uri=$1 h args=()
  shift
  for h in "${HEADERS[@]}" "${CHECK_HEADERS[@]}"; do args+=(-H "$h"); done
  curl -s -o /dev/null -D - "${args[@]}" -H "X-Original-URI: $uri" "$@" "http://127.0.0.1:$INTERNAL/auth" \
    | awk 'NR == 1 {s = $2} tolower($1) == "x-palisade-action:" {a = $2} END {printf "%s %s", s, a}' | tr -d '\r'
}
expect "204 allow" "$(check "$ALLOW_PATH")" "companion check, allow path"
expect "204 allow" "$(check "$TOKEN_PATH" -H "X-Palisade-Token: $TOKEN")" "companion check, token path"
expect "401 challenge" "$(check "$TOKEN_PATH")" "companion check, token path without a token"

# --- measure -------------------------------------------------------------------
# A wrk script giving every request its own X-Request-Id, as nginx's $request_id.
cat >"$WORK/request-id.lua" <<'LUA'
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("prefix", string.format("bench%d-", threads))
end
local n = 0
function request()
  n = n + 1
  wrk.headers["X-Request-Id"] = prefix .. n
  return wrk.format()
end
LUA
# CPU time (user + system, in clock ticks) the processes have used so far;
# without a PID, the whole machine's busy time (all but idle and iowait).
cpu_ticks() { # [PID...]
  local pid ticks=0
  [ $# -gt 0 ] || { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; return; }
  for pid in "$@"; do ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  echo "$ticks"
}
read -r -a NGINX_WORKERS < <(pgrep -P "${PID[nginx]}" | xargs)
[ "${#NGINX_WORKERS[@]}" = "$WORKERS" ] || { log "nginx has ${#NGINX_WORKERS[@]} workers, not $WORKERS"; exit 1; }
# wrk OUT.txt, and OUT.txt.cpu: the CPU ticks nginx's workers, the companion
# and the whole machine (wrk included) used during the run, and the ticks per
# second.
run_wrk() { # OUT DURATION CONFIG SCENARIO
  local out=$1 duration=$2 config=$3 scenario=$4 url path h extra=() args=()
  case $scenario in
    allow | allowid) path=$ALLOW_PATH ;;
    token) path=$TOKEN_PATH extra=("X-Palisade-Token: $TOKEN") ;;
  esac
  case $config in
    none) url="http://127.0.0.1:$PORT_NONE$path" ;;
    palisade) url="http://127.0.0.1:$PORT_PALISADE$path" ;;
    check) url="http://127.0.0.1:$INTERNAL/auth" extra+=("${CHECK_HEADERS[@]}" "X-Original-URI: $path") ;;
  esac
  for h in "${HEADERS[@]}" "${extra[@]}"; do args+=(-H "$h"); done
  if [ "$scenario" = allowid ]; then args+=(-s "$WORK/request-id.lua"); fi
  local nginx_before companion_before machine_before
  nginx_before=$(cpu_ticks "${NGINX_WORKERS[@]}")
  companion_before=$(cpu_ticks "${PID[companion]}")
  machine_before=$(cpu_ticks)
  # In the background so that a signal stops it at once (see cleanup).
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --latency "${args[@]}" "$url" >"$out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || { log "wrk failed:"; cat "$out" >&2; exit 1; }
  WRK_PID=
  echo "$(($(cpu_ticks "${NGINX_WORKERS[@]}") - nginx_before)) $(($(cpu_ticks "${PID[companion]}") - companion_before))" \
    "$(($(cpu_ticks) - machine_before)) $(getconf CLK_TCK)" >"$out.cpu"
}
# Runs: "CONFIG SCENARIO" pairs, each BENCH_ROUNDS times, interleaved.
run_rounds() { # LABEL PAIR...
  local label=$1 r k n=0 pair config scenario pairs
  shift
  pairs=("$@")
  local runs=$((ROUNDS * ${#pairs[@]}))
  log "$label: warm-up $WARMUP each, then $ROUNDS rounds x ${#pairs[@]} = $runs runs of $DURATION (wrk -t$THREADS -c$CONNECTIONS)"
  for pair in "${pairs[@]}"; do
    read -r config scenario <<<"$pair"
    run_wrk "$WORK/warmup/$config-$scenario.txt" "$WARMUP" "$config" "$scenario"
    if grep -q "Non-2xx" "$WORK/warmup/$config-$scenario.txt"; then
      log "warm-up $config $scenario: responses other than 2xx:"; cat "$WORK/warmup/$config-$scenario.txt" >&2; exit 1
    fi
  done
  for ((r = 1; r <= ROUNDS; r++)); do
    for ((k = 0; k < ${#pairs[@]}; k++)); do
      read -r config scenario <<<"${pairs[$(((k + r - 1) % ${#pairs[@]}))]}"
      n=$((n + 1))
      run_wrk "$WORK/wrk/$r-$config-$scenario.txt" "$DURATION" "$config" "$scenario"
      log "[$n/$runs] round $r $config $scenario: $(grep -o 'Requests/sec: *[0-9.]*' "$WORK/wrk/$r-$config-$scenario.txt" | tr -s ' ')"
    done
  done
}
mkdir -p "$WORK/wrk" "$WORK/warmup"

# nginx's connections to the companion's internal listener, every 0.5 s
# while nginx alone talks to it (one line per sample: the local ports).
(
  while :; do
    ss -Htn state established "( dport = :$INTERNAL )" | awk '{print $3}' | sort -u | xargs echo
    sleep 0.5
  done
) >"$WORK/connections.txt" &
SAMPLER_PID=$!
run_rounds "through nginx" "none allow" "palisade allow" "palisade token"
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=
# Connections closed in the last 60 s (TIME-WAIT on nginx's side): with
# keepalive, one per keepalive_requests (1000) checks, not one per check.
TIME_WAIT=$(ss -Htn state time-wait "( dport = :$INTERNAL )" | wc -l)
CHECKS_NGINX=$(curl -fs "http://127.0.0.1:$INTERNAL/metrics" \
  | awk '/^palisade_companion_checks_total/ {n += $NF} END {print n + 0}')

run_rounds "straight at the companion" "check allow" "check token" "check allowid"

# --- report --------------------------------------------------------------------
echo
echo "nginx benchmark: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), worker_processes $WORKERS; wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, $ROUNDS interleaved rounds, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
report_rc=0
python3 benches/support/nginx_report.py "$WORK/wrk" || report_rc=$?

echo
read -r MAX_CONN DISTINCT SAMPLES < <(awk '{for (i = 1; i <= NF; i++) seen[$i] = 1; if (NF > max) max = NF}
  END {printf "%d %d %d\n", max, length(seen), NR}' "$WORK/connections.txt")
echo "nginx -> companion connections (keepalive 32 per worker in nginx/palisade-http.conf, $WORKERS workers):"
echo "  established at once, most seen        $MAX_CONN   (ss, $SAMPLES samples during the nginx runs)"
echo "  distinct connections seen             $DISTINCT"
echo "  closed in the last 60 s (TIME-WAIT)   $TIME_WAIT"
echo "  checks answered by then              $CHECKS_NGINX   (nginx closes a connection after 1000: upstream keepalive_requests)"

echo
echo "companion checks answered (all runs, warm-ups and the checks above), by action:"
curl -fs "http://127.0.0.1:$INTERNAL/metrics" | awk '/^palisade_companion_checks_total/ {print "  " $0}' || true
awk '/^VmRSS/ {r = $2} /^VmHWM/ {h = $2} END {printf "\ncompanion memory: RSS %.1f MiB, peak %.1f MiB\n", r / 1024, h / 1024}' \
  "/proc/${PID[companion]}/status"
exit "$report_rc"
