#!/bin/sh
# The companion's guarded retrain works from two feature files
# (docs/scoring.md, "Guarded learning"): the training base a candidate is
# trained on beside the labels, and the frozen held-out set it is judged on.
#
#   sh datasets/scripts/build-scoring-sets.sh [PATH/TO/palisade]
#
# writes datasets/models/train-request.jsonl (the train variant, seed 101)
# and datasets/models/holdout-request.jsonl (the holdout variant: other
# seeds and other actor parameters, seed 202), request-v1 rows from
# `palisade simulate` with the demo policy: 150 clients over half an hour,
# every 8th row kept (there is one row per request), so each file stays
# under 2 MB. Deterministic: the same seeds and build give the same rows.
set -eu

root="$(cd "$(dirname "$0")/../.." && pwd)"
palisade="${1:-$root/target/release/palisade}"
if [ ! -x "$palisade" ]; then
    echo "build-scoring-sets: $palisade not found; run cargo build --release first" >&2
    exit 1
fi
out="$root/datasets/models"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

build() { # name variant seed
    "$palisade" simulate --variant "$2" --seed "$3" --clients 150 --duration 30m \
        --config "$root/envoy/demo-policy.yaml" --out "$work/$1" >/dev/null
    awk 'NR % 8 == 1' "$work/$1/features-request.jsonl" >"$out/$1-request.jsonl"
    echo "$out/$1-request.jsonl: $(wc -l <"$out/$1-request.jsonl") rows"
}

build train train 101
build holdout holdout 202
