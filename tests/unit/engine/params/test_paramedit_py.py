"""Python params edits: literals spliced at their AST positions."""

from __future__ import annotations

import pytest

from exq.engine.errors import ParamsError
from exq.engine.params.edit import edit_params_text, parse_set_params
from exq.engine.params.py_edit import PyExpr, load

PARAMS = '''\
"""Parameters for train.py."""
import os

# learning rate
LR = 0.1  # tuned by hand
NAME = "résumé"
SIZE = (224, 224)
DATA_DIR = os.path.join("data", "raw")
CFG = {
    "dropout": 0.5,
    "layers": [64, 32],
}


class Train:
    """Training knobs."""

    epochs = 10
    optimizer: str = 'adam'

    def __init__(self):
        self.batch = 32
        self.shuffle = True


class Empty:
    pass
'''


def edit(text: str, *sets: str) -> str:
    new, _ = edit_params_text(text, "params.py", parse_set_params(sets, "params.py"))
    return new


def test_load_reads_assignments_and_class_attributes() -> None:
    assert load(PARAMS, "params.py") == {
        "LR": 0.1,
        "NAME": "résumé",
        "SIZE": [224, 224],
        "DATA_DIR": PyExpr('os.path.join("data", "raw")'),
        "CFG": {"dropout": 0.5, "layers": [64, 32]},
        "Train": {"epochs": 10, "optimizer": "adam", "batch": 32, "shuffle": True},
        "Empty": {},
    }


@pytest.mark.parametrize(
    ("override", "old", "new"),
    [
        ("LR=0.01", "LR = 0.1  # tuned by hand", "LR = 0.01  # tuned by hand"),
        ("NAME=ünï", 'NAME = "résumé"', 'NAME = "ünï"'),
        ("SIZE.0=128", "SIZE = (224, 224)", "SIZE = (128, 224)"),
        ("SIZE=[1, 2]", "SIZE = (224, 224)", "SIZE = (1, 2)"),
        ("DATA_DIR=data/new", 'DATA_DIR = os.path.join("data", "raw")', 'DATA_DIR = "data/new"'),
        ("CFG.dropout=0.2", '"dropout": 0.5,', '"dropout": 0.2,'),
        ("CFG.layers.1=16", '"layers": [64, 32],', '"layers": [64, 16],'),
        ("Train.epochs=5", "    epochs = 10", "    epochs = 5"),
        ("Train.optimizer=sgd", "    optimizer: str = 'adam'", "    optimizer: str = 'sgd'"),
        ("Train.batch=64", "self.batch = 32", "self.batch = 64"),
        ("Train.shuffle=false", "self.shuffle = True", "self.shuffle = False"),
        ("LR=null", "LR = 0.1  #", "LR = None  #"),
        ("LR=inf", "LR = 0.1  #", 'LR = float("inf")  #'),
        ("LR={a: [1, x]}", "LR = 0.1  #", 'LR = {"a": [1, "x"]}  #'),  # the docstring's quotes
    ],
)
def test_edit_changes_only_that_literal(override: str, old: str, new: str) -> None:
    assert PARAMS.count(old) == 1
    assert edit(PARAMS, override) == PARAMS.replace(old, new)


def test_add_top_level_class_and_dict_keys() -> None:
    out = edit(PARAMS, "+SEED=1", "+Train.warmup=3", "+CFG.act=relu", "+Empty.x=1")
    expected = (
        PARAMS.replace(
            "    optimizer: str = 'adam'\n", "    optimizer: str = 'adam'\n    warmup = 3\n"
        )
        .replace('    "layers": [64, 32],\n', '    "layers": [64, 32],\n    "act": "relu",\n')
        .replace("class Empty:\n    pass\n", "class Empty:\n    x = 1\n    pass\n")
        + "SEED = 1\n"
    )
    assert out == expected


def test_delete_statements_and_entries() -> None:
    assert edit(PARAMS, "~LR") == PARAMS.replace("LR = 0.1  # tuned by hand\n", "")
    assert edit(PARAMS, "~Train.epochs") == PARAMS.replace("    epochs = 10\n", "")
    assert edit(PARAMS, "~Train.batch") == PARAMS.replace("        self.batch = 32\n", "")
    assert edit(PARAMS, "~CFG.dropout") == PARAMS.replace('    "dropout": 0.5,\n', "")
    assert edit(PARAMS, "~SIZE.1") == PARAMS.replace("(224, 224)", "(224,)")


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ("+bad-name=1", "not a Python name"),
        ("+Train.x.y=1", None),
        ("Train=1", "is a class"),
        ("missing=1", "not found"),
        ("+LR=1", "already exists"),
    ],
)
def test_refused_edits(override: str, why: str | None) -> None:
    if why is None:
        assert '    x = {"y": 1}\n' in edit(PARAMS, override)
        return
    with pytest.raises(ParamsError, match=why):
        edit(PARAMS, override)


def test_delete_refuses_statement_sharing_a_line() -> None:
    with pytest.raises(ParamsError, match="shares its line"):
        edit("A = 1; B = 2\n", "~A")


def test_syntax_error_is_a_params_error() -> None:
    with pytest.raises(ParamsError, match=r"params.py: invalid Python: .*line 1"):
        edit("LR = = 1\n", "LR=2")
