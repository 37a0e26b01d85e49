"""The resolved stage: what templating produces and every later step reads.

Paths are kept as written in ``dvc.yaml`` (after interpolation), relative to
the stage's ``wdir``; ``wdir`` and ``dvcfile`` are repo-relative POSIX paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

OutKind = Literal["outs", "metrics", "plots"]


@dataclass(frozen=True)
class Out:
    """One output of a stage: an ``outs``, ``metrics`` or ``plots`` entry."""

    path: str
    kind: OutKind = "outs"
    cache: bool = True
    persist: bool = False
    # DVC 2 checkpoint output (`- model.h5: {checkpoint: true}`): saved at each
    # checkpoint signal and kept between runs.
    checkpoint: bool = False


@dataclass
class Stage:
    """A stage after templating: one ``foreach``/``matrix`` item is one Stage."""

    name: str
    dvcfile: str
    cmd: str | list[str]
    wdir: str = "."
    deps: list[str] = field(default_factory=list)
    outs: list[Out] = field(default_factory=list)
    # params file (as written, relative to wdir) -> keys the stage depends on,
    # explicit ones first, then those tracked through ${...}; [] = whole file.
    params: dict[str, list[str]] = field(default_factory=dict)
    # The subset of ``params`` known only through ${...}: DVC does not record
    # these in dvc.lock, so their absence from a lock is no change.
    tracked: dict[str, list[str]] = field(default_factory=dict)
    frozen: bool = False
    always_changed: bool = False
    desc: str | None = None

    def outs_of(self, kind: OutKind) -> list[Out]:
        return [out for out in self.outs if out.kind == kind]

    @property
    def address(self) -> str:
        """``dvc.yaml:name`` for stages outside the root file, else ``name``."""
        if self.dvcfile == "dvc.yaml":
            return self.name
        return f"{self.dvcfile}:{self.name}"
