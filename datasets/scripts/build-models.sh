#!/usr/bin/env bash
# Rebuilds the default bot-score models in datasets/models/ from the
# project's own simulator, and evaluates each on the holdout variant
# (other seeds and other actor parameter ranges; see docs/scoring.md).
#
#   bash datasets/scripts/build-models.sh
#
# Fixed seeds make the weights reproducible (only `trained_at` and the
# version string change). Takes a few minutes on two cores. Writes:
#   datasets/models/{request,request-logistic,log,log-logistic,interaction}.json
#   datasets/models/eval/*.txt and *.json   the evaluation reports
#   docs/scoring-roc.png                    ROC of the request models and the rules
set -euo pipefail
cd "$(dirname "$0")/../.."

TRAIN_SEED=${TRAIN_SEED:-1}
HOLDOUT_SEED=${HOLDOUT_SEED:-2}
TRAIN_CLIENTS=${TRAIN_CLIENTS:-1000}
HOLDOUT_CLIENTS=${HOLDOUT_CLIENTS:-600}

cargo build --release --bin palisade
BIN="${CARGO_TARGET_DIR:-target}/release/palisade"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
OUT=datasets/models
mkdir -p "$OUT/eval"

"$BIN" simulate --seed "$TRAIN_SEED" --variant train --clients "$TRAIN_CLIENTS" --out "$WORK/train"
"$BIN" simulate --seed "$HOLDOUT_SEED" --variant holdout --clients "$HOLDOUT_CLIENTS" --out "$WORK/holdout"
# Interaction records are one per client: many clients, little traffic.
"$BIN" simulate --seed "$TRAIN_SEED" --variant train --clients 5000 --duration 1m --out "$WORK/interaction-train"
"$BIN" simulate --seed "$HOLDOUT_SEED" --variant holdout --clients 3000 --duration 1m --out "$WORK/interaction-holdout"

train() { # schema kind input out [extra args]
  "$BIN" train --schema "$1" --kind "$2" --input "$WORK/train/$3" --out "$OUT/$4" --seed 1 "${@:5}"
}
train request-v1 mlp features-request.jsonl request.json
train request-v1 logistic features-request.jsonl request-logistic.json
train log-v1 mlp features-log.jsonl log.json
train log-v1 logistic features-log.jsonl log-logistic.json
"$BIN" train --schema interaction-v1 --kind mlp --input "$WORK/interaction-train/interaction.jsonl" \
  --out "$OUT/interaction.json" --seed 1 --hidden 16,8 --epochs 40

evaluate() { # name model baseline input [extra args]
  "$BIN" eval --model "$OUT/$2" --baseline "$OUT/$3" --input "$WORK/holdout/$4" "${@:5}" > "$OUT/eval/$1.txt"
  "$BIN" eval --model "$OUT/$2" --baseline "$OUT/$3" --input "$WORK/holdout/$4" --json "${@:5}" > "$OUT/eval/$1.json"
  head -5 "$OUT/eval/$1.txt"
}
evaluate request request.json request-logistic.json features-request.jsonl --roc docs/scoring-roc.png
evaluate log log.json log-logistic.json features-log.jsonl
"$BIN" eval --model "$OUT/interaction.json" --input "$WORK/interaction-holdout/interaction.jsonl" > "$OUT/eval/interaction.txt"
"$BIN" eval --model "$OUT/interaction.json" --input "$WORK/interaction-holdout/interaction.jsonl" --json > "$OUT/eval/interaction.json"
head -5 "$OUT/eval/interaction.txt"

# `score --log` on the holdout logs, both formats, against the labels.
for format in envoy combined; do
  "$BIN" score --log "$format" --model "$OUT/log.json" --input "$WORK/holdout/access-$format.log" > "$WORK/scores-$format.jsonl"
  python3 - "$WORK/holdout/features-log.jsonl" "$WORK/scores-$format.jsonl" "$format" > "$OUT/eval/score-log-$format.txt" <<'PY'
import json, sys
labels = {}
for line in open(sys.argv[1]):
    row = json.loads(line)
    labels[row["client"]] = row["label"]
scores = [json.loads(l) for l in open(sys.argv[2])]
pairs = [(s["score"], labels[s["client"]]) for s in scores if s["client"] in labels]
bots = [s for s, l in pairs if l == 1]
people = [s for s, l in pairs if l == 0]
wins = sum((b > p) + 0.5 * (b == p) for b in bots for p in people)
auc = wins / (len(bots) * len(people))
flagged = sum(p >= 70 for p in people) / len(people)
recall = sum(b >= 70 for b in bots) / len(bots)
print(f"score --log {sys.argv[3]}: {len(pairs)} clients ({len(bots)} bots, {len(people)} people): "
      f"AUC {auc:.4f}, people challenged or blocked {100 * flagged:.2f}%, bots challenged or blocked {100 * recall:.2f}%")
PY
  cat "$OUT/eval/score-log-$format.txt"
done
