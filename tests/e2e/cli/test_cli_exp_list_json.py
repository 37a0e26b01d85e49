"""``exq exp list --json``: each baseline with its name and experiments."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import exq, write
from tests.e2e.exp_helpers import commit_all, exp_refs, head, init_repo


def test_exp_list_json(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "repo")
    write(root / "params.yaml", "lr: 0.1\n")
    write(root / "dvc.yaml", "stages:\n  train:\n    cmd: echo hi\n    params:\n    - lr\n")
    commit_all(root, "pipeline")
    exq("exp", "run", "-n", "b-exp", "-S", "lr=0.2", cwd=root)
    exq("exp", "run", "-n", "a-exp", "-S", "lr=0.3", cwd=root)
    _, out, _ = exq("exp", "list", "--json", cwd=root)
    refs = exp_refs(root)
    ((ref_a, sha_a),) = [(r, s) for r, s in refs.items() if r.endswith("/a-exp")]
    ((ref_b, sha_b),) = [(r, s) for r, s in refs.items() if r.endswith("/b-exp")]
    assert json.loads(out) == [
        {
            "baseline": head(root),
            "baseline_name": "main",
            "experiments": [
                {"name": "a-exp", "rev": sha_a, "ref": ref_a},
                {"name": "b-exp", "rev": sha_b, "ref": ref_b},
            ],
        }
    ]
