"""Shell completion of stage names, experiment names and revisions.

Called by typer while the shell waits for an answer, so each stays cheap:
stage names come from the current folder's ``dvc.yaml`` read with PyYAML
alone (no templating: a ``foreach`` over a literal list or mapping completes
to ``name@item``, any other to its group's name), experiments and revisions
from the refs through the engine's git module, and nothing else of the
engine is imported. A completion never prints an error in the middle of the
user's line: anything unreadable completes to nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def complete_stages(incomplete: str) -> list[str]:
    """The stages of ``./dvc.yaml`` starting with ``incomplete``."""
    try:
        names = stage_names(_read_yaml(Path.cwd() / "dvc.yaml"))
    except Exception:  # unreadable, not yaml: nothing to offer
        return []
    return [name for name in names if name.startswith(incomplete)]


def stage_names(data: Any) -> list[str]:
    """Stage names, and ``name@item`` for a ``foreach`` over literal items; pure."""
    stages = data.get("stages") if isinstance(data, dict) else None
    names: list[str] = []
    for name, body in stages.items() if isinstance(stages, dict) else ():
        names.append(str(name))
        each = body.get("foreach") if isinstance(body, dict) else None
        if isinstance(each, list):
            names += [f"{name}@{item}" for item in each if isinstance(item, (str, int, float))]
        elif isinstance(each, dict):
            names += [f"{name}@{key}" for key in each]
    return names


def _read_yaml(path: Path) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506


def complete_experiments(incomplete: str) -> list[tuple[str, str]]:
    """Experiment names starting with ``incomplete``, each with its commit and baseline."""
    try:
        from exq.engine.experiments.refs import list_experiments
        from exq.engine.git import Git

        experiments = list_experiments(Git.open(Path.cwd()))
    except Exception:  # not a repository, a broken ref: nothing to offer
        return []
    found: dict[str, str] = {}
    for exp in experiments:
        if exp.name.startswith(incomplete):
            found.setdefault(exp.name, f"experiment {exp.sha[:7]} of {exp.baseline[:7]}")
    return sorted(found.items())


def complete_revisions(incomplete: str) -> list[tuple[str, str]]:
    """Branches, tags and experiment names starting with ``incomplete``."""
    try:
        from exq.engine.git import Git

        git = Git.open(Path.cwd())
        refs = [(name, "branch") for name in git.list_branches()]
        refs += [(name, "tag") for name in git.list_tags()]
    except Exception:
        return []
    found = [(name, what) for name, what in refs if name.startswith(incomplete)]
    return found + complete_experiments(incomplete)
