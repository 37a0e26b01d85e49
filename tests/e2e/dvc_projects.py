"""Six small projects in the shapes of public DVC projects (not a test module).

Synthetic, tiny and deterministic, each keeps what its model does that a
tool can get wrong: the official get-started tutorial (a ``.dvc``-tracked
input, four stages, metrics and plots inside a cached ``eval`` folder named
by top-level ``metrics:``/``plots:``), its experiments version (a top-level
``params:`` file written by training, a dvclive-style folder drawn with
``x: step``, a folder of images), a configuration repository of several
``dvc.yaml`` in sub-folders, a monorepo of ``dvc init --subdir`` projects
sharing one cache through ``cache.dir``, the bank-churn demo (templated
paths, a grid-search script, an ROC curve with ``x``/``y`` and a template, an
image, a bar chart), and the DVC 2 checkpoints MNIST example (a
``checkpoint: true`` model, a ``live:`` section, a confusion matrix).

Stage commands run the tests' interpreter; scripts use the standard library
and PyYAML only.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

PY = sys.executable

# A 1x1 PNG whose red value is the first argument: images differ between runs.
PNG = """
import struct, zlib
from pathlib import Path


def png(path, red):
    def chunk(kind, data):
        crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        return struct.pack(">I", len(data)) + kind + data + crc
    head = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\\x00" + bytes([int(red) % 256, 0, 0]))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", head) + chunk(b"IDAT", body)
                           + chunk(b"IEND", b""))
"""


@dataclass
class Shape:
    """One project: its files, where its DVC projects sit, and what to run in it."""

    name: str
    files: dict[str, str]
    projects: list[str] = field(default_factory=lambda: ["."])  # "." or --subdir folders
    tracked: dict[str, list[str]] = field(default_factory=dict)  # project -> paths to add
    config: dict[str, str] = field(default_factory=dict)  # project -> extra .dvc/config text
    main: str = "."  # the project experiments run in
    exp: list[str] = field(default_factory=list)  # -S of one exp run
    sweep: list[list[str]] = field(default_factory=list)  # -S of each queued run
    plots: set[str] = field(default_factory=set)  # chart ids of plots show
    images: set[str] = field(default_factory=set)
    metrics: set[str] = field(default_factory=set)  # metrics files of the main project
    dvc3: bool = True  # the real DVC 3 runs it (DVC 3 dropped checkpoints and live:)
    targets: list[str] = field(default_factory=list)  # of repro and exp run (none: dvc.yaml)
    sweep_script: str | None = None  # queues the sweep instead of ``sweep``, $DVC the tool
    repro: bool = True  # DVC 2 refuses ``repro`` of checkpoint stages: ``exp run`` only


# -- the get-started tutorial -------------------------------------------------------

GS_PARAMS = """\
prepare:
  split: 0.20
  seed: 20170428

featurize:
  max_features: 200
  ngrams: 2

train:
  seed: 20170428
  n_est: 50
  min_split: 0.01
"""

GS_PREPARE = """\
import sys
from pathlib import Path
import yaml

params = yaml.safe_load(Path("params.yaml").read_text())["prepare"]
rows = [line for line in Path(sys.argv[1]).read_text().splitlines() if line.strip()]
cut = max(1, int(len(rows) * (1 - params["split"])))
out = Path("data/prepared")
out.mkdir(parents=True, exist_ok=True)
(out / "train.tsv").write_text("\\n".join(rows[:cut]) + "\\n")
(out / "test.tsv").write_text("\\n".join(rows[cut:]) + "\\n")
"""

GS_FEATURIZE = """\
import json, sys
from pathlib import Path
import yaml

params = yaml.safe_load(Path("params.yaml").read_text())["featurize"]
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
for split in ("train", "test"):
    rows = (src / f"{split}.tsv").read_text().split()
    feats = [[len(r) % params["max_features"], params["ngrams"]] for r in rows]
    (dst / f"{split}.pkl").write_text(json.dumps(feats))
"""

GS_TRAIN = """\
import json, sys
from pathlib import Path
import yaml

params = yaml.safe_load(Path("params.yaml").read_text())["train"]
feats = json.loads((Path(sys.argv[1]) / "train.pkl").read_text())
Path(sys.argv[2]).write_text(json.dumps({"n_est": params["n_est"],
                                         "min_split": params["min_split"], "n": len(feats)}))
"""

GS_EVALUATE = (
    PNG
    + """
import json, sys

model = json.loads(Path(sys.argv[1]).read_text())
score = round(min(0.99, model["n_est"] / 100 + model["min_split"]), 4)
metrics = {}
for split in ("train", "test"):
    auc = round(score - (0.05 if split == "test" else 0), 4)
    metrics.setdefault("avg_prec", {})[split] = auc
    metrics.setdefault("roc_auc", {})[split] = auc
    base = Path("eval/plots/sklearn")
    for kind, rows in (
        ("roc", {"roc": [{"fpr": f, "tpr": round(min(1, f + auc / 2), 4), "threshold": 1 - f}
                         for f in (0.0, 0.5, 1.0)]}),
        ("prc", {"prc": [{"recall": r, "precision": round(1 - r * (1 - auc), 4)}
                         for r in (0.0, 0.5, 1.0)]}),
        ("cm", [{"actual": a, "predicted": int(i < auc * 5) * a}
                for i, a in enumerate([0, 1, 1, 0, 1])]),
    ):
        (base / kind).mkdir(parents=True, exist_ok=True)
        (base / kind / f"{split}.json").write_text(json.dumps(rows))
Path("eval/metrics.json").write_text(json.dumps(metrics))
png("eval/plots/images/importance.png", model["n_est"])
"""
)

GS_DVCYAML = f"""\
stages:
  prepare:
    cmd: {PY} src/prepare.py data/data.xml
    deps:
    - data/data.xml
    - src/prepare.py
    params:
    - prepare.seed
    - prepare.split
    outs:
    - data/prepared
  featurize:
    cmd: {PY} src/featurization.py data/prepared data/features
    deps:
    - data/prepared
    - src/featurization.py
    params:
    - featurize.max_features
    - featurize.ngrams
    outs:
    - data/features
  train:
    cmd: {PY} src/train.py data/features model.pkl
    deps:
    - data/features
    - src/train.py
    params:
    - train.min_split
    - train.n_est
    - train.seed
    outs:
    - model.pkl
  evaluate:
    cmd: {PY} src/evaluate.py model.pkl data/features
    deps:
    - data/features
    - model.pkl
    - src/evaluate.py
    outs:
    - eval
metrics:
- eval/metrics.json
plots:
- ROC:
    template: simple
    x: fpr
    y:
      eval/plots/sklearn/roc/train.json: tpr
      eval/plots/sklearn/roc/test.json: tpr
- Confusion-Matrix:
    template: confusion
    x: actual
    y:
      eval/plots/sklearn/cm/train.json: predicted
      eval/plots/sklearn/cm/test.json: predicted
- Precision-Recall:
    template: simple
    x: recall
    y:
      eval/plots/sklearn/prc/train.json: precision
      eval/plots/sklearn/prc/test.json: precision
- eval/plots/images/importance.png
"""

GET_STARTED = Shape(
    "get-started",
    {
        "params.yaml": GS_PARAMS,
        "data/data.xml": "".join(f"<row Id='{i}' Body='q{i * 7}'/>\n" for i in range(20)),
        "src/prepare.py": GS_PREPARE,
        "src/featurization.py": GS_FEATURIZE,
        "src/train.py": GS_TRAIN,
        "src/evaluate.py": GS_EVALUATE,
        "dvc.yaml": GS_DVCYAML,
    },
    tracked={".": ["data/data.xml"]},
    exp=["train.n_est=60"],
    sweep=[["train.min_split=0.02"], ["train.min_split=0.03"]],
    plots={"ROC", "Confusion-Matrix", "Precision-Recall"},
    images={"eval/plots/images/importance.png"},
    metrics={"eval/metrics.json"},
)


# -- its experiments version ------------------------------------------------------

GSE_PARAMS = """\
base:
  random_seed: 42

data_split:
  test_regions:
    - REGION_1

train:
  valid_pct: 0.1
  arch: shufflenet_v2_x2_0
  fine_tune_args:
    epochs: 3
    base_lr: 0.01

evaluate:
  n_samples_to_save: 2
"""

GSE_SPLIT = """\
from pathlib import Path
import yaml

params = yaml.safe_load(Path("params.yaml").read_text())
for name in ("train_data", "test_data"):
    folder = Path("data") / name
    folder.mkdir(parents=True, exist_ok=True)
    for image in sorted(Path("data/pool_data").iterdir()):
        (folder / image.name).write_text(image.read_text() + name)
"""

GSE_TRAIN = """\
import json
from pathlib import Path
import yaml

params = yaml.safe_load(Path("params.yaml").read_text())["train"]
lr = params["fine_tune_args"]["base_lr"]
out = Path("results/train")
(out / "plots/metrics/train").mkdir(parents=True, exist_ok=True)
(out / "plots/metrics/eval").mkdir(parents=True, exist_ok=True)
rows = {"train": ["step\\tloss"], "eval": ["step\\tdice_multi"]}
loss = 1.0
for step in range(params["fine_tune_args"]["epochs"]):
    loss = round(loss * (1 - lr * 10), 4)
    rows["train"].append(f"{step}\\t{loss}")
    rows["eval"].append(f"{step}\\t{round(1 - loss, 4)}")
(out / "plots/metrics/train/loss.tsv").write_text("\\n".join(rows["train"]) + "\\n")
(out / "plots/metrics/eval/dice_multi.tsv").write_text("\\n".join(rows["eval"]) + "\\n")
(out / "metrics.json").write_text(json.dumps({"train": {"loss": loss},
                                              "eval": {"dice_multi": round(1 - loss, 4)}}))
(out / "params.yaml").write_text(yaml.safe_dump({"lr": lr, "arch": params["arch"]}))
Path("models").mkdir(exist_ok=True)
Path("models/model.pkl").write_text(f"model {lr}\\n")
"""

GSE_EVALUATE = (
    PNG
    + """
import json
import yaml

params = yaml.safe_load(Path("params.yaml").read_text())["evaluate"]
model = Path("models/model.pkl").read_text()
out = Path("results/evaluate")
for i in range(params["n_samples_to_save"]):
    png(out / "plots/images" / f"sample{i}.png", len(model) * (i + 1))
(out / "metrics.json").write_text(json.dumps({"dice_multi": round(len(model) / 100, 4)}))
"""
)

GSE_DVCYAML = f"""\
params:
- results/train/params.yaml
metrics:
- results/train/metrics.json
- results/evaluate/metrics.json
plots:
- results/train/plots/metrics:
    x: step
- results/evaluate/plots/images
stages:
  data_split:
    cmd: {PY} src/data_split.py
    deps:
    - data/pool_data
    - src/data_split.py
    params:
    - base
    - data_split
    outs:
    - data/test_data
    - data/train_data
  train:
    cmd: {PY} src/train.py
    deps:
    - data/train_data
    - src/train.py
    params:
    - base
    - train
    outs:
    - models/model.pkl
    - results/train
  evaluate:
    cmd: {PY} src/evaluate.py
    deps:
    - data/test_data
    - models/model.pkl
    - src/evaluate.py
    params:
    - base
    - evaluate
    outs:
    - results/evaluate
"""

GET_STARTED_EXPERIMENTS = Shape(
    "get-started-experiments",
    {
        "params.yaml": GSE_PARAMS,
        "data/pool_data/a.txt": "pool a\n",
        "data/pool_data/b.txt": "pool b\n",
        "src/data_split.py": GSE_SPLIT,
        "src/train.py": GSE_TRAIN,
        "src/evaluate.py": GSE_EVALUATE,
        "dvc.yaml": GSE_DVCYAML,
    },
    tracked={".": ["data/pool_data"]},
    exp=["train.fine_tune_args.base_lr=0.02"],
    sweep=[["train.fine_tune_args.epochs=2"], ["train.fine_tune_args.epochs=4"]],
    plots={
        "results/train/plots/metrics/train/loss.tsv",
        "results/train/plots/metrics/eval/dice_multi.tsv",
    },
    images={
        "results/evaluate/plots/images/sample0.png",
        "results/evaluate/plots/images/sample1.png",
    },
    metrics={"results/train/metrics.json", "results/evaluate/metrics.json"},
)


# -- a configuration repository: several dvc.yaml in sub-folders ----------------------

CFG_TRAIN = """\
import json, sys
from pathlib import Path
import yaml

params = yaml.safe_load(Path("params.yaml").read_text())["model"]
score = round(params["lr"] * params["layers"], 4)
Path("metrics.json").write_text(json.dumps({"score": score}))
Path("curve.csv").write_text("epoch,score\\n" + "".join(
    f"{e},{round(score * (e + 1) / 3, 4)}\\n" for e in range(3)))
"""


def _config_dvcyaml(name: str) -> str:
    return f"""\
stages:
  train:
    cmd: {PY} ../../train_model.py {name}
    deps:
    - ../../train_model.py
    params:
    - model
    metrics:
    - metrics.json:
        cache: false
    plots:
    - curve.csv:
        cache: false
        x: epoch
        y: score
        title: {name} score
"""


CONFIG_REPO = Shape(
    "config-repository",
    {
        "train_model.py": CFG_TRAIN,
        "configs/small/params.yaml": "model:\n  lr: 0.1\n  layers: 2\n",
        "configs/small/dvc.yaml": _config_dvcyaml("small"),
        "configs/large/params.yaml": "model:\n  lr: 0.05\n  layers: 8\n",
        "configs/large/dvc.yaml": _config_dvcyaml("large"),
    },
    exp=["configs/small/params.yaml:model.lr=0.2"],
    sweep=[
        ["configs/large/params.yaml:model.layers=4"],
        ["configs/large/params.yaml:model.layers=6"],
    ],
    plots={"configs/small/curve.csv", "configs/large/curve.csv"},
    metrics={"configs/small/metrics.json", "configs/large/metrics.json"},
    # No dvc.yaml at the root: the pipelines are named, as DVC needs.
    targets=["configs/small/dvc.yaml", "configs/large/dvc.yaml"],
)


# -- a monorepo of sub-folder projects sharing one cache ------------------------------

MONO_TRAIN = """\
import json
from pathlib import Path
import yaml

params = yaml.safe_load(Path("params.yaml").read_text())["train"]
data = Path("data/input.txt").read_text()
Path("model.bin").write_text(data * params["epochs"])
Path("metrics.json").write_text(json.dumps({"size": len(data) * params["epochs"]}))
"""

MONO_DVCYAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    deps:
    - data/input.txt
    - train.py
    params:
    - train.epochs
    outs:
    - model.bin
    metrics:
    - metrics.json:
        cache: false
"""

MONOREPO = Shape(
    "monorepo",
    {
        **{
            f"{proj}/{path}": text
            for proj in ("proj-a", "proj-b")
            for path, text in {
                "train.py": MONO_TRAIN,
                "dvc.yaml": MONO_DVCYAML,
                "params.yaml": "train:\n  epochs: 2\n",
                "data/input.txt": f"{proj} shared line\n",
            }.items()
        },
        "README.md": "Two projects, one cache.\n",
    },
    projects=["proj-a", "proj-b"],
    tracked={"proj-a": ["data/input.txt"], "proj-b": ["data/input.txt"]},
    config={
        "proj-a": "[cache]\n    dir = ../../shared-cache\n",
        "proj-b": "[cache]\n    dir = ../../shared-cache\n",
    },
    main="proj-a",
    exp=["train.epochs=3"],
    sweep=[["train.epochs=4"], ["train.epochs=5"]],
    metrics={"metrics.json"},
)


# -- the bank-churn demo ----------------------------------------------------------------

CHURN_PARAMS = """\
base:
  project: bank_customer_churn
  data_dir: data
  data_fname: Churn_Modelling.csv
  targ_col: Exited
  random_state: 42
  model_dir: model

data_split:
  test_size: 0.25

train:
  model_type: randomforest
  params:
    n_estimators: 150
    max_depth: 20

eval:
  perm_imp_model_path: models/perm_imp.joblib
"""

CHURN_SPLIT = """\
import json
from pathlib import Path
import yaml

params = yaml.safe_load(Path("params.yaml").read_text())
rows = Path(params["base"]["data_dir"], params["base"]["data_fname"]).read_text().splitlines()[1:]
cut = int(len(rows) * (1 - params["data_split"]["test_size"]))
Path("data").mkdir(exist_ok=True)
for name, part in (("X_train", rows[:cut]), ("X_test", rows[cut:])):
    Path(f"data/{name}.pkl").write_text(json.dumps(part))
    Path(f"data/{name.replace('X', 'y')}.pkl").write_text(json.dumps([r[-1] for r in part]))
"""

CHURN_TRAIN = """\
import json
from pathlib import Path
import yaml

params = yaml.safe_load(Path("params.yaml").read_text())
model = Path(params["base"]["model_dir"]) / "clf-model"
model.parent.mkdir(parents=True, exist_ok=True)
model.write_text(json.dumps(params["train"]["params"]))
model.with_suffix(".mlem").write_text("object_type: model\\n")
"""

CHURN_EVAL = (
    PNG
    + """
import json
import yaml

params = yaml.safe_load(Path("params.yaml").read_text())
clf = json.loads((Path(params["base"]["model_dir"]) / "clf-model").read_text())
auc = round(min(0.99, clf["n_estimators"] / 400 + clf["max_depth"] / 100), 4)
Path("metrics.json").write_text(json.dumps({"roc_auc": auc, "f1": round(auc * 0.9, 4)}))
Path("eval_plots/plots/sklearn").mkdir(parents=True, exist_ok=True)
Path("eval_plots/plots/sklearn/roc.json").write_text(json.dumps({"roc": [
    {"fpr": f, "tpr": round(min(1, f + auc / 2), 4), "threshold": round(1 - f, 2)}
    for f in (0.0, 0.25, 0.5, 1.0)]}))
png("eval_plots/cm.png", clf["max_depth"])
Path("feat_imp.csv").write_text("feature,importance\\nAge,%s\\nBalance,0.2\\n" % round(auc / 3, 4))
Path(params["eval"]["perm_imp_model_path"]).parent.mkdir(parents=True, exist_ok=True)
Path(params["eval"]["perm_imp_model_path"]).write_text(str(auc))
"""
)

CHURN_DVCYAML = f"""\
stages:
  data_split:
    cmd: {PY} stages/data_split.py --config=params.yaml
    deps:
      - stages/data_split.py
      - ${{base.data_dir}}/${{base.data_fname}}
    params:
      - base
      - data_split
    outs:
      - data/X_train.pkl
      - data/X_test.pkl
      - data/y_train.pkl
      - data/y_test.pkl
  train:
    cmd: {PY} stages/train.py --config=params.yaml
    deps:
      - stages/train.py
      - data/X_train.pkl
      - data/y_train.pkl
    params:
      - base
      - train
    outs:
      - ${{base.model_dir}}/clf-model
      - ${{base.model_dir}}/clf-model.mlem:
          cache: false
  eval:
    cmd: {PY} stages/eval.py --config=params.yaml
    deps:
      - stages/eval.py
      - data/X_test.pkl
      - data/y_test.pkl
      - ${{base.model_dir}}/clf-model
    params:
      - base
      - data_split
      - train
    outs:
      - ${{eval.perm_imp_model_path}}
    metrics:
      - metrics.json:
          cache: false
    plots:
      - eval_plots/cm.png:
          cache: false
      - eval_plots/plots/sklearn/roc.json:
          cache: false
          template: simple
          x: fpr
          y: tpr
          title: ROC
      - feat_imp.csv:
          cache: false
          template: bar_horizontal_sorted
          x: importance
          y: feature
"""

CHURN = Shape(
    "bank-churn",
    {
        "params.yaml": CHURN_PARAMS,
        "data/Churn_Modelling.csv": "RowNumber,Age,Balance,Exited\n"
        + "".join(f"{i},{30 + i},{i * 1000},{i % 2}\n" for i in range(12)),
        "stages/data_split.py": CHURN_SPLIT,
        "stages/train.py": CHURN_TRAIN,
        "stages/eval.py": CHURN_EVAL,
        "dvc.yaml": CHURN_DVCYAML,
        # The demo's grid search with Hydra's sweep functions (a smaller grid);
        # $DVC is the tool under test.
        "grid_search.sh": '#!/bin/sh\n"$DVC" exp run --queue '
        "-S 'train.params.n_estimators=range(50, 110, 30)' "
        "-S 'train.params.max_depth=choice(10, 15)'\n",
    },
    tracked={".": ["data/Churn_Modelling.csv"]},
    exp=["train.params.n_estimators=100"],
    sweep_script="grid_search.sh",
    plots={"eval_plots/plots/sklearn/roc.json", "feat_imp.csv"},
    images={"eval_plots/cm.png"},
    metrics={"metrics.json"},
)


# -- the DVC 2 checkpoints MNIST example --------------------------------------------------

# dvclive 0.x as the example uses it (module-level log/next_step; <folder>/<metric>.tsv,
# <folder>.json), signalling each checkpoint the DVC 2 way: the signal file
# $DVC_ROOT/.dvc/tmp/DVC_CHECKPOINT, written then waited on until the runner removes it.
DVCLIVE_0X = """\
import json, os, time
from pathlib import Path

_path = os.environ.get("DVCLIVE_PATH", "dvclive")
_step = 0
_latest = {}
# As dvclive 0.x: a run goes on from its summary's step only when told to resume.
if os.environ.get("DVCLIVE_RESUME") and Path(_path + ".json").exists():
    _step = json.loads(Path(_path + ".json").read_text()).get("step", -1) + 1


def get_step():
    return _step


def log(name, value):
    _latest[name] = value
    tsv = Path(_path) / f"{name}.tsv"
    tsv.parent.mkdir(parents=True, exist_ok=True)
    if not tsv.exists():
        tsv.write_text("timestamp\\tstep\\t" + name + "\\n")
    with tsv.open("a") as handle:
        handle.write(f"{int(time.time() * 1000)}\\t{_step}\\t{value}\\n")


def next_step():
    global _step
    if os.environ.get("DVCLIVE_SUMMARY", "1") != "0":
        Path(_path + ".json").write_text(json.dumps({**_latest, "step": _step}))
    if os.environ.get("DVC_CHECKPOINT"):
        root = Path(os.environ.get("DVC_ROOT", "."))
        signal = root / ".dvc" / "tmp" / "DVC_CHECKPOINT"
        signal.parent.mkdir(parents=True, exist_ok=True)
        signal.write_text("")
        while signal.exists():
            time.sleep(0.01)
    _step += 1
"""

MNIST_TRAIN = """\
import json, sys
from pathlib import Path
import yaml

sys.path.insert(0, "lib")
import dvclive

params = yaml.safe_load(Path("params.yaml").read_text())
model = Path("model.pt")
weight = float(model.read_text()) if model.exists() else 0.0
for _ in range(params["epochs"]):
    weight = round(weight + params["lr"], 4)
    model.write_text(str(weight))
    acc = round(min(1.0, weight), 4)
    dvclive.log("acc", acc)
    predicted = [int(i < acc * 10) for i in range(6)]
    Path("predictions.json").write_text(json.dumps(
        [{"actual": i % 2, "predicted": p} for i, p in enumerate(predicted)]))
    dvclive.next_step()
"""

MNIST_DVCYAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    deps:
    - train.py
    params:
    - seed
    - lr
    - weight_decay
    outs:
    - model.pt:
        checkpoint: true
    plots:
    - predictions.json:
        cache: false
        template: confusion
        x: actual
        y: predicted
    live:
      dvclive:
        summary: true
        html: true
"""

MNIST = Shape(
    "checkpoints-mnist",
    {
        "params.yaml": "seed: 473987\nlr: 0.1\nweight_decay: 0\nepochs: 2\n",
        "lib/dvclive.py": DVCLIVE_0X,
        "train.py": MNIST_TRAIN,
        "dvc.yaml": MNIST_DVCYAML,
    },
    exp=["lr=0.2"],
    sweep=[["lr=0.05"], ["lr=0.15"]],
    plots={"predictions.json", "dvclive/acc.tsv"},
    metrics={"dvclive.json"},
    dvc3=False,
    repro=False,
)

SHAPES = [GET_STARTED, GET_STARTED_EXPERIMENTS, CONFIG_REPO, MONOREPO, CHURN, MNIST]
