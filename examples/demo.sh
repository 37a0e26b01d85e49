#!/usr/bin/env bash
# A small example: a foreach pipeline over two models, params from params.yaml.
# Builds the project in a temp folder and runs `exq repro` twice; the second
# run finds nothing changed and skips every stage.
set -euo pipefail

demo=$(mktemp -d "${TMPDIR:-/tmp}/exq-demo.XXXXXX")
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
YAML

mkdir -p data
seq 1 200 > data/numbers.txt

cat > train.py <<'PY'
import sys, time
thresh, out = int(sys.argv[1]), sys.argv[2]
numbers = [int(line) for line in open("data/numbers.txt")]
time.sleep(0.5)  # stand-in for real training
kept = [n for n in numbers if n % thresh == 0]
with open(out, "w") as f:
    f.write(f"kept {len(kept)} of {len(numbers)}\n")
print(f"trained {out}: kept {len(kept)}")
PY

cat > dvc.yaml <<'YAML'
stages:
  build:
    foreach: ${models}
    do:
      cmd: python train.py ${item.thresh} ${item.filename}
      deps:
        - train.py
        - data/numbers.txt
      outs:
        - ${item.filename}
YAML

git add -A && git commit -qm "demo project"
exq init

echo "== exq stage list"
exq stage list
echo
echo "== exq repro (first run: both models train, side by side)"
exq repro
echo
echo "== exq repro (second run: nothing changed)"
exq repro
echo
echo "== exq status"
exq status
echo
echo "== dvc.lock"
cat dvc.lock
echo
echo "The demo project is in $demo"
