# shellcheck shell=bash
# Sourced by the benchmark scripts: stopping what they started, and their
# work directory, the same way for each. Set WORK first.

# stop_processes PID...: SIGTERM to each (Envoy's, nginx's and the
# companion's stop), up to 10 s to exit, then SIGKILL; reaps them all.
stop_processes() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# finish_work RC: keeps $WORK after a failure or with BENCH_KEEP=1 (saying
# where), removes it otherwise, and exits with RC.
finish_work() {
  if [ "$1" -ne 0 ] || [ "${BENCH_KEEP:-0}" = 1 ]; then
    log "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$1"
}
