"""Where the daemon keeps its state and its socket, and which executor it uses.

Settings come from the environment, over the user's config file
(``$XDG_CONFIG_HOME/exq/config.toml``, or ``$EXQ_CONFIG``)::

    [queue]
    executor = "ray"                        # or "local", the default
    jobs = 2                                # runs at once (exq queue start -j wins)
    gpus = 1                                # what a queued run asks for by default:
    cpus = 4                                #   --gpus, --cpus, --mem, --timeout,
    mem = "16G"                             #   --retries, --retry-delay
    timeout = "12h"
    retries = 1
    retry_delay = "5m"
    [resources]
    gpus = ["0", "1"]                       # the GPUs runs may get (else found: see
    cpus = 16                               #   exq.daemon.machine); CPUs, memory
    mem = "64G"                             #   (else the machine's)
    [ray]
    address = "http://head.example:8265"    # the Ray Jobs API (dashboard) address
    python = "python"                       # the Python of the cluster's nodes
    remote = "store"                        # the project's DVC remote runs' data goes
                                            #   through (else its default remote, if any)
    [notify]
    command = "notify-me.sh"                # run at each run's end and when the
    on = ["failed", "queue-drained"]        #   queue drains (see exq.daemon.notify)

``EXQ_EXECUTOR``, ``EXQ_RAY_ADDRESS`` (else Ray's own ``RAY_ADDRESS``) and
``EXQ_RAY_PYTHON``, ``EXQ_RAY_REMOTE`` override the file; ``exq queue start --executor ray
--address ADDR`` overrides both. ``EXQ_GPUS=0,1`` overrides ``[resources] gpus``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from exq.daemon.notify import NotifyConfig, parse_notify
from exq.engine.errors import ConfigError

DEFAULT_GRACE_SECONDS = 30.0
EXECUTORS = ("local", "ray")
# Keys of [queue] that give queued runs their defaults (same names as the options).
QUEUE_DEFAULTS = ("gpus", "cpus", "mem", "timeout", "retries", "retry_delay")
DEFAULT_RAY_ADDRESS = "http://127.0.0.1:8265"


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
    jobs: int | None = None  # from the command line; None: kept, else [queue] jobs, else 1
    grace: float = DEFAULT_GRACE_SECONDS
    extra_env: dict[str, str] = field(default_factory=dict)
    resume_checkpoints: bool = True
    executor: str = "local"  # for runs that did not choose one
    ray_address: str = DEFAULT_RAY_ADDRESS
    ray_python: str = "python"
    ray_remote: str | None = None  # [ray] remote: a DVC remote's name, else the default one
    queue_jobs: int | None = None  # [queue] jobs
    queue_defaults: dict[str, Any] = field(default_factory=dict)  # [queue] gpus, timeout...
    # [resources] of the file, with EXQ_GPUS over its gpus; what is not set is
    # found on the machine (exq.daemon.machine).
    resources: dict[str, Any] = field(default_factory=dict)
    notify: NotifyConfig = field(default_factory=NotifyConfig)  # [notify]

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> DaemonConfig:
        env = dict(os.environ if env is None else env)
        file = read_config_file(config_path(env))
        queue, ray = file.get("queue", {}), file.get("ray", {})
        resources = dict(file.get("resources", {}))
        if env.get("EXQ_GPUS") is not None:
            resources["gpus"] = [g for g in env["EXQ_GPUS"].replace(" ", "").split(",") if g]
        return cls(
            state_dir=_state_dir(env),
            runtime_dir=_runtime_dir(env),
            grace=float(env.get("EXQ_GRACE_SECONDS", DEFAULT_GRACE_SECONDS)),
            resume_checkpoints=_flag(env.get("EXQ_RESUME_CHECKPOINTS"), default=True),
            executor=check_executor(env.get("EXQ_EXECUTOR") or queue.get("executor") or "local"),
            ray_address=jobs_address(
                env.get("EXQ_RAY_ADDRESS")
                or env.get("RAY_ADDRESS")
                or ray.get("address")
                or DEFAULT_RAY_ADDRESS,
                strict=False,
            ),
            ray_python=env.get("EXQ_RAY_PYTHON") or ray.get("python") or "python",
            ray_remote=env.get("EXQ_RAY_REMOTE") or _name(ray.get("remote"), config_path(env)),
            queue_jobs=_jobs(queue.get("jobs"), config_path(env)),
            queue_defaults={k: queue[k] for k in QUEUE_DEFAULTS if k in queue},
            resources=resources,
            notify=parse_notify(file.get("notify"), config_path(env)),
        )

    def with_jobs(self, jobs: int | None) -> DaemonConfig:
        return replace(self, jobs=jobs)

    def with_executor(self, executor: str | None, address: str | None) -> DaemonConfig:
        """Override the executor and the Ray address (``None`` keeps them)."""
        return replace(
            self,
            executor=check_executor(executor or self.executor),
            ray_address=jobs_address(address) if address else self.ray_address,
        )

    def daemon_id(self) -> str:
        """A random id of this state folder, made once: it keeps the cluster job
        ids of two users (or two state folders) on one cluster apart."""
        path = self.state_dir / "daemon.id"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        import secrets  # once per state folder

        new = secrets.token_hex(4)
        try:
            with open(path, "x") as out:  # two racing daemons: the first one wins
                out.write(new + "\n")
        except FileExistsError:
            return path.read_text().strip()
        return new

    @property
    def db_path(self) -> Path:
        return self.state_dir / "queue.db"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    def log_path(self, run_id: int) -> Path:
        """Where a run's output goes."""
        return self.logs_dir / f"{run_id}.log"

    def worktree_path(self, run_id: int, attempt: int) -> Path:
        """The worktree of one attempt of a local run (gone once the attempt ends)."""
        return self.worktrees_dir / f"{run_id}-{attempt}"

    def progress_path(self, run_id: int) -> Path:
        """Where a local run's exq.live logger keeps its step and declared total."""
        return self.state_dir / "progress" / f"{run_id}.json"

    def ready_path(self, run_id: int) -> Path:
        """Touched when the worktree of a local run's attempt is ready, before its
        first stage: files of the worktree older than it are not the attempt's."""
        return self.state_dir / "progress" / f"{run_id}.ready"

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


def job_offset(log_path: Path | str, job_id: str) -> Path:
    """Where the Ray executor keeps how far it read job ``job_id``'s output into
    ``log_path`` (so a restarted daemon neither repeats nor loses a line)."""
    return Path(f"{log_path}.{job_id}.offset")


def job_offsets(log_path: Path) -> list[Path]:
    """The :func:`job_offset` files of every job of a run's log."""
    return sorted(log_path.parent.glob(f"{log_path.name}.*.offset"))


def config_path(env: dict[str, str]) -> Path:
    if env.get("EXQ_CONFIG"):
        return Path(env["EXQ_CONFIG"])
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "exq" / "config.toml"


def read_config_file(path: Path) -> dict[str, Any]:
    """The user's config file as tables (empty when there is none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    import tomllib  # only with a config file: most users have none

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    for table in ("queue", "ray", "resources"):
        if not isinstance(data.get(table, {}), dict):
            raise ConfigError(f"{path}: '{table}' must be a table")
    return data


def _name(value: Any, path: Path) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise ConfigError(f"{path}: [ray] remote must be a remote's name, a string")


def _jobs(value: Any, path: Path) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{path}: [queue] jobs must be a whole number, 1 or more")
    return value


def check_executor(name: str) -> str:
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor '{name}'", hint=f"use one of {', '.join(EXECUTORS)}")
    return name


def jobs_address(address: str, *, strict: bool = True) -> str:
    """A Ray cluster's Jobs API address: ``HOST:PORT`` gets ``http://``; another
    scheme (``ray://``, Ray's ``auto``) is refused when ``strict`` (an address
    given on purpose), else kept for the connection to say what is wrong."""
    address = address.strip()
    if address.startswith(("http://", "https://")):
        return address
    if "://" not in address and ":" in address and address.rsplit(":", 1)[1].isdigit():
        return f"http://{address}"
    if strict:
        raise ConfigError(
            f"'{address}' is not the address of a Ray cluster's Jobs API",
            hint="give its dashboard address: http://HOST:8265",
        )
    return address


def _flag(value: str | None, *, default: bool) -> bool:
    """An on/off variable: 0, false, no, off (any case) or empty is off."""
    if value is None:
        return default
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def _state_dir(env: dict[str, str]) -> Path:
    if env.get("EXQ_STATE_DIR"):
        return Path(env["EXQ_STATE_DIR"])
    base = env.get("XDG_STATE_HOME") or str(
        Path(env.get("HOME", "~")).expanduser() / ".local" / "state"
    )
    return Path(base) / "exq"


def _runtime_dir(env: dict[str, str]) -> Path:
    if env.get("EXQ_RUNTIME_DIR"):
        return Path(env["EXQ_RUNTIME_DIR"])
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "exq"
    return Path("/tmp") / f"exq-{os.getuid()}"
