#!/usr/bin/env bash
# The whole story on a small pure-Python project, in a temp folder:
#   1. a foreach pipeline over two models, params from params.yaml: `exq repro`
#      twice, the second run skipping everything;
#   2. a training stage that logs with exq.live and checkpoints every epoch;
#   3. a sweep of six experiments queued with -S, run by the daemon two at a time;
#   4. a checkpoint run interrupted with Ctrl-C, then resumed;
#   5. `exq exp show`, and `exq plots diff` written to a page whose path it prints.
set -euo pipefail

demo=$(mktemp -d "${TMPDIR:-/tmp}/exq-demo.XXXXXX")
# The demo's own queue and daemon socket, so it never touches yours.
export EXQ_STATE_DIR="$demo/.exq-state"
export EXQ_RUNTIME_DIR=$(mktemp -d /tmp/exq-demo-run.XXXXXX)
trap 'exq queue stop --kill >/dev/null 2>&1 || true' EXIT

cd "$demo"
git init -q -b main
git config user.name "exq demo"
git config user.email "demo@exq.invalid"

cat > params.yaml <<'YAML'
# Thresholds and output files of the two models.
models:
  us:
    thresh: 10
    filename: model-us.txt
  gb:
    thresh: 15
    filename: model-gb.txt
# The trainer.
train:
  epochs: 4
  lr: 0.1
YAML

mkdir -p data
seq 1 200 > data/numbers.txt

cat > build.py <<'PY'
import sys, time
thresh, out = int(sys.argv[1]), sys.argv[2]
numbers = [int(line) for line in open("data/numbers.txt")]
time.sleep(0.3)  # stand-in for real work
kept = [n for n in numbers if n % thresh == 0]
with open(out, "w") as f:
    f.write(f"kept {len(kept)} of {len(numbers)}\n")
print(f"built {out}: kept {len(kept)}")
PY

# A pure-Python "training": the model is one number moved towards 1 by lr at
# each epoch; exq.live logs the loss and signals a checkpoint at each epoch end.
cat > train.py <<'PY'
import time
from pathlib import Path

import yaml  # exq's own dependency, present in its virtualenv

from exq.live import Live

params = yaml.safe_load(open("params.yaml"))["train"]
model = Path("model.txt")
weight = float(model.read_text()) if model.exists() else 0.0
live = Live("logs")
for epoch in range(live.step, params["epochs"]):
    time.sleep(0.4)  # stand-in for an epoch of real training
    weight += params["lr"] * (1.0 - weight)
    model.write_text(f"{weight:.6f}\n")
    live.log("loss", round((1.0 - weight) ** 2, 6))
    live.log("weight", round(weight, 6))
    print(f"epoch {epoch}: weight {weight:.4f}", flush=True)
    live.next_step()  # checkpoint: exq commits model.txt and logs before we go on
live.end()
PY

cat > dvc.yaml <<'YAML'
stages:
  build:
    foreach: ${models}
    do:
      cmd: python build.py ${item.thresh} ${item.filename}
      deps:
        - build.py
        - data/numbers.txt
      outs:
        - ${item.filename}
  train:
    cmd: python train.py
    deps:
      - train.py
    params:
      - train
    outs:
      - model.txt:
          checkpoint: true
    live:
      logs:
        summary: true
        html: true
        cache: false
YAML

exq init >/dev/null
git add -A && git commit -qm "demo project"

step() { printf '\n== %s\n' "$*"; }

step "exq stage list"
exq stage list

step "exq repro (first run: the two builds side by side, then the training)"
exq repro

step "exq repro (second run: nothing changed)"
exq repro

git add -A && git commit -qm "first results"

step "exq exp run --queue: a sweep of six experiments (3 learning rates x 2 epoch counts)"
exq exp run --queue -S train.lr=0.1,0.3,0.5 -S train.epochs=3,5 -n sweep

step "the daemon runs them two at a time"
exq queue start -j 2
exq exp run --run-all

step "exq queue status"
exq queue status
exq queue stop >/dev/null

step "a checkpoint run, stopped after its second epoch"
rm -f logs/loss.tsv
exq exp run --reset -S train.epochs=6 -S train.lr=0.2 -n long &
run=$!
for _ in $(seq 1 300); do
    rows=$( (tail -n +2 logs/loss.tsv 2>/dev/null || true) | wc -l)
    [ "$rows" -ge 2 ] && break
    sleep 0.1
done
# A script's background jobs ignore SIGINT; SIGTERM stops exq the same way Ctrl-C does.
kill -TERM "$run"
wait "$run" || true
echo "(stopped: the checkpoints so far are committed, the workspace holds the latest)"

step "exq exp run again: it resumes where it stopped"
exq exp run

step "exq exp show"
exq exp show --no-pager --no-timestamp --include-params train.lr,train.epochs \
    --include-metrics loss,step

step "exq plots diff of two sweep experiments"
exq plots diff -e sweep-1 sweep-6 --targets logs -o "$demo/plots"

echo
echo "The demo project is in $demo"
