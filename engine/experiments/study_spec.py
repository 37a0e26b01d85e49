"""A study (``exp run --queue --optimize FILE:KEY``) as plain data, and its pure steps.

What the user asked (:func:`study_of`: the objective, the direction, the
budget of trials, the sampler and its seed), the search space its ``-S``
texts span (:func:`space_of`: Hydra's distributions and choices, read by
:mod:`exq.engine.params.hydra_sweeps`), the overrides one point of that space
stands for (:func:`overrides_of`), and the value of the objective read from
a metrics file's bytes (:func:`metric_value`). No I/O, no Optuna: the
daemon's study module maps these to Optuna's distributions and calls.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from exq.engine.errors import ExperimentError, ParamsError, did_you_mean
from exq.engine.params.hydra_sweeps import Dimension, GroupOptions, dimension, flow
from exq.engine.params.values import MAX_SWEEP_RUNS, parse_value

SAMPLERS = ("tpe", "random", "grid", "cmaes")
# The sampler of a grid or random sweep queued with --prune: its points are the
# sweep's, queued at once; the study only carries them for the pruner.
FIXED = "fixed"
PRUNERS = ("median", "asha", "hyperband")
DEFAULT_SAMPLER = "tpe"
METRIC_SUFFIXES = (".json", ".yaml", ".yml", ".toml")
# Scalars Optuna stores as categorical choices as they are; other values (lists,
# mappings) go as their flow text.
_SCALARS = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Objective:
    """The metric a study optimizes: ``KEY`` (dotted) of metrics file ``FILE``."""

    file: str  # relative to the project's root, as in dvc.yaml
    key: str
    maximize: bool

    @property
    def direction(self) -> str:
        return "maximize" if self.maximize else "minimize"

    def __str__(self) -> str:
        return f"{self.file}:{self.key}"


@dataclass(frozen=True)
class StudySpec:
    """What ``--optimize`` asked, checked: the objective and the search's settings."""

    objective: Objective
    trials: int
    sampler: str
    seed: int
    pruner: str | None = None  # --prune: judges each checkpoint of the trials' runs

    def to_json(self) -> dict[str, Any]:
        o = self.objective
        return {
            "file": o.file,
            "key": o.key,
            "maximize": o.maximize,
            "trials": self.trials,
            "sampler": self.sampler,
            "seed": self.seed,
            "pruner": self.pruner,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StudySpec:
        objective = Objective(data["file"], data["key"], bool(data["maximize"]))
        pruner = data.get("pruner")
        return cls(
            objective,
            int(data["trials"]),
            str(data["sampler"]),
            int(data["seed"]),
            None if pruner is None else str(pruner),
        )


def check_pruner(name: str) -> str:
    """``name`` when it is one of :data:`PRUNERS`; else ``ParamsError``. Pure."""
    chosen = name.strip().lower()
    if chosen in PRUNERS:
        return chosen
    close = did_you_mean(chosen, PRUNERS)
    raise ParamsError(
        f"--prune '{name}': not a pruner" + (f", {close}" if close else ""),
        hint="use median, asha or hyperband",
    )


def fixed_study_of(
    optimize: str | None, prune: str, *, maximize: bool, minimize: bool
) -> StudySpec:
    """The study that carries a grid or random sweep's own points for ``--prune``
    (its ``trials`` set once the points are known); raises ``ParamsError`` when
    the metric to judge or its direction is missing. Pure."""
    pruner = check_pruner(prune)
    if optimize is None:
        raise ParamsError(
            "--prune needs the metric it judges: add --optimize FILE:KEY and"
            " --minimize or --maximize"
        )
    file, key = parse_objective(optimize)
    if maximize == minimize:
        raise ParamsError(
            "--maximize and --minimize exclude each other"
            if maximize
            else f"--optimize {optimize}: say --maximize or --minimize"
        )
    return StudySpec(Objective(file, key, maximize), 0, FIXED, 0, pruner)


def parse_objective(text: str) -> tuple[str, str]:
    """``FILE:KEY`` as (file, key); raises ``ParamsError`` naming what is wrong. Pure."""
    file, colon, key = text.rpartition(":")
    file, key = file.strip(), key.strip()
    if not colon or not file or not key:
        raise ParamsError(f"--optimize '{text}': write the metric as FILE:KEY (scores.json:auc)")
    pure = PurePosixPath(file.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        raise ParamsError(f"--optimize '{text}': the metrics file must be inside the project")
    if pure.suffix.lower() not in METRIC_SUFFIXES:
        raise ParamsError(
            f"--optimize '{text}': '{file}' is not a metrics file ({', '.join(METRIC_SUFFIXES)})"
        )
    if any(not part for part in key.split(".")):
        raise ParamsError(f"--optimize '{text}': '{key}' is not a dotted key")
    return str(pure), key


def study_of(
    optimize: str | None,
    *,
    maximize: bool = False,
    minimize: bool = False,
    trials: str | None = None,
    sampler: str | None = None,
    seed: str | None = None,
    samples: str | None = None,
    draw_seed: int,
) -> StudySpec | None:
    """The study asked for, checked; None without ``--optimize`` (then none of
    its options may be given). ``draw_seed`` seeds a study without ``--seed``.
    Raises ``ParamsError`` with one line naming the option. Pure."""
    if optimize is None:
        for given, flag in ((maximize, "--maximize"), (minimize, "--minimize")):
            if given:
                raise ParamsError(f"{flag} is the direction of a study: add --optimize FILE:KEY")
        for value, flag in ((trials, "--trials"), (sampler, "--sampler")):
            if value is not None:
                raise ParamsError(f"{flag} belongs to a study: add --optimize FILE:KEY")
        return None
    file, key = parse_objective(optimize)
    if maximize == minimize:
        raise ParamsError(
            "--maximize and --minimize exclude each other"
            if maximize
            else f"--optimize {optimize}: say --maximize or --minimize"
        )
    if samples is not None:
        raise ParamsError("--samples is a random search, --optimize a study: pick one")
    if trials is None:
        raise ParamsError(f"--optimize {optimize}: say how many runs with --trials N")
    if not trials.strip().isdigit() or int(trials) < 1:
        raise ParamsError(f"--trials {trials!r}: give a whole number of runs, 1 or more")
    if int(trials) > MAX_SWEEP_RUNS:
        raise ParamsError(f"--trials {trials!r}: at most {MAX_SWEEP_RUNS} runs at once")
    chosen = (sampler or DEFAULT_SAMPLER).strip().lower()
    if chosen not in SAMPLERS:
        raise ParamsError(f"--sampler {sampler!r}: use one of {', '.join(SAMPLERS)}")
    try:
        seeded = draw_seed if seed is None else int(seed)
    except ValueError:
        raise ParamsError(f"--seed {seed!r}: give a whole number") from None
    return StudySpec(Objective(file, key, maximize), int(trials), chosen, seeded)


@dataclass(frozen=True)
class Param:
    """One dimension of a study's space: the ``-S`` head it sets and what it draws
    from; a :class:`Dimension` with one value is fixed (every trial sets it)."""

    head: str
    dimension: Dimension

    @property
    def fixed(self) -> bool:
        values = self.dimension.values
        return values is not None and len(values) == 1

    @property
    def as_text(self) -> bool:
        """Whether Optuna holds this choice's values as their flow text (some are
        lists or mappings, which it cannot store)."""
        values = self.dimension.values or []
        return not all(isinstance(v, _SCALARS) for v in values)

    def choices(self) -> list[Any]:
        """The values of a choice as Optuna stores them (see :attr:`as_text`)."""
        values = self.dimension.values or []
        return [flow(v) for v in values] if self.as_text else list(values)


def space_of(texts: Sequence[str], sampler: str, groups: GroupOptions | None = None) -> list[Param]:
    """The study's space from its ``-S`` texts; raises ``ParamsError`` when
    nothing in it varies, or the sampler cannot search it (the grid needs
    choices, not intervals). Pure but for ``groups`` (``glob()``'s options)."""
    params = [Param(text.partition("=")[0], dimension(text, groups)) for text in texts]
    seen: set[str] = set()
    for text, param in zip(texts, params, strict=True):
        if param.head in seen:
            raise ParamsError(f"-S '{text}': '{param.head}' is set twice in the study")
        seen.add(param.head)
    if all(param.fixed for param in params):
        raise ParamsError(
            "--optimize searches a space: give at least one -S with a distribution",
            hint="e.g. -S 'lr=tag(log, interval(1e-4, 1e-1))' or -S 'bs=choice(16,32,64)'",
        )
    if sampler == "grid":
        for text, param in zip(texts, params, strict=True):
            if param.dimension.values is None:
                raise ParamsError(
                    f"-S '{text}': the grid sampler needs values to pick from",
                    hint="use choice(...) or range(...), or another --sampler",
                )
    return params


def frozen_texts(texts: Sequence[str], space: Sequence[Param]) -> list[str]:
    """The ``-S`` texts a study keeps, with each ``glob()`` replaced by the
    ``choice()`` of the options it found now: the daemon reads the space again
    later, when the params groups of the workspace may have changed. Pure."""
    out = []
    for text, param in zip(texts, space, strict=True):
        raw = text.partition("=")[2].strip()
        if raw.startswith("glob(") and param.dimension.values is not None:
            values = ", ".join(flow(v) for v in param.dimension.values)
            text = f"{param.head}=choice({values})"
        out.append(text)
    return out


def overrides_of(space: Sequence[Param], point: dict[str, Any]) -> list[str]:
    """The ``-S`` overrides of one point (Optuna's params by head), in the
    space's order, fixed dimensions included. Pure."""
    out = []
    for param in space:
        if param.fixed:
            value = (param.dimension.values or [None])[0]
        else:
            value = point[param.head]
            if param.as_text:
                value = parse_value(value)
        out.append(f"{param.head}={flow(value)}")
    return out


def probe_point(space: Sequence[Param]) -> list[str]:
    """The overrides of one point of the space (each choice's first value, each
    interval's low end): applied before anything is queued, so that a key the
    params files lack is refused at once, not at the first trial. Pure."""
    point: dict[str, Any] = {}
    for param in space:
        d = param.dimension
        if param.fixed:
            continue
        if d.values is not None:
            point[param.head] = param.choices()[0]
        else:
            point[param.head] = math.ceil(d.low) if d.integer else d.low
    return overrides_of(space, point)


class MetricMissing(ExperimentError):
    """A study's run ended without the value of its objective."""


def metric_value(data: bytes | None, objective: Objective) -> float:
    """The objective's value in the metrics file's bytes (None: no such file in
    the commit); raises :class:`MetricMissing` saying why. Pure."""
    where = str(objective)
    if data is None:
        raise MetricMissing(f"{where}: the run's commit has no {objective.file}")
    try:
        if objective.file.lower().endswith(".toml"):
            tree: Any = tomllib.loads(data.decode("utf-8"))
        elif objective.file.lower().endswith(".json"):
            tree = json.loads(data)
        else:
            import yaml

            tree = yaml.safe_load(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MetricMissing(f"{where}: cannot read {objective.file} ({exc})") from None
    except Exception as exc:  # yaml's errors
        raise MetricMissing(f"{where}: cannot read {objective.file} ({exc})") from None
    value = _lookup(tree, objective.key)
    if value is _MISSING:
        raise MetricMissing(f"{where}: no key '{objective.key}' in {objective.file}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MetricMissing(f"{where}: {value!r} is not a number")
    if not math.isfinite(value):
        raise MetricMissing(f"{where}: {value!r} is not a finite number")
    return float(value)


_MISSING = object()


def _lookup(tree: Any, key: str) -> Any:
    """``key`` in nested mappings: a flat key with dots first, then the path."""
    if isinstance(tree, dict) and key in tree:
        return tree[key]
    node = tree
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node
