"""Where the daemon keeps its state and its socket, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class DaemonConfig:
    """The daemon's folders and settings.

    ``state_dir`` holds the queue database, the logs and the single-instance
    lock; ``runtime_dir`` holds the socket (owner-only). ``resume_checkpoints``:
    at start-up, interrupted checkpoint runs resume from their last checkpoint
    commit (``EXQ_RESUME_CHECKPOINTS=0`` turns that off: they start over from
    their snapshot, a new chain under the same experiment ref).
    """

    state_dir: Path
    runtime_dir: Path
    jobs: int = 1
    grace: float = DEFAULT_GRACE_SECONDS
    extra_env: dict[str, str] = field(default_factory=dict)
    resume_checkpoints: bool = True

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> DaemonConfig:
        env = dict(os.environ if env is None else env)
        return cls(
            state_dir=_state_dir(env),
            runtime_dir=_runtime_dir(env),
            grace=float(env.get("EXQ_GRACE_SECONDS", DEFAULT_GRACE_SECONDS)),
            resume_checkpoints=_flag(env.get("EXQ_RESUME_CHECKPOINTS"), default=True),
        )

    def with_jobs(self, jobs: int) -> DaemonConfig:
        return replace(self, jobs=jobs)

    @property
    def db_path(self) -> Path:
        return self.state_dir / "queue.db"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def daemon_log(self) -> Path:
        return self.state_dir / "daemon.log"

    @property
    def lock_path(self) -> Path:
        return self.state_dir / "daemon.lock"

    @property
    def worktrees_dir(self) -> Path:
        return self.state_dir / "worktrees"

    @property
    def socket_path(self) -> Path:
        return self.runtime_dir / "daemon.sock"


def _flag(value: str | None, *, default: bool) -> bool:
    """An on/off variable: 0, false, no, off (any case) or empty is off."""
    if value is None:
        return default
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def _state_dir(env: dict[str, str]) -> Path:
    if env.get("EXQ_STATE_DIR"):
        return Path(env["EXQ_STATE_DIR"])
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local" / "state")
    return Path(base) / "exq"


def _runtime_dir(env: dict[str, str]) -> Path:
    if env.get("EXQ_RUNTIME_DIR"):
        return Path(env["EXQ_RUNTIME_DIR"])
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "exq"
    return Path("/tmp") / f"exq-{os.getuid()}"
