"""Objects between the cache and a DVC remote, in DVC 3's layout (``files/md5/xx/...``).

Storage goes through fsspec's file systems, each an optional extra imported
only when a remote of its kind is used. What the remote holds is read with
one listing, never a request per object. Uploads are whole-object puts (on a
local folder: a temporary name, then a rename), downloads land beside the
cache object under a temporary name, are verified against their md5 and only
then renamed into place: an interrupted transfer leaves nothing half-written.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exq.engine.data import progress
from exq.engine.data.cache import Cache
from exq.engine.data.hashing import file_md5, legacy_md5, listing_problem, parse_dir_listing
from exq.engine.data.remote_config import Remote, whole_number
from exq.engine.errors import ConfigError, ExqError

# The extra that brings each kind of remote's file system.
EXTRAS = {"s3": ("s3fs", "s3"), "gs": ("gcsfs", "gs"), "azure": ("adlfs", "azure")}
EXTRAS |= {"ssh": ("sshfs", "ssh"), "http": ("aiohttp", "http"), "https": ("aiohttp", "http")}
READ_ONLY = 0o444
DIR_SUFFIX = ".dir"
# Past this many objects to look for, one listing of the remote beats a request each.
QUERY_LIMIT = 256
# An object of a DVC 2 entry goes by "legacy/<md5>": DVC keeps it at
# <remote>/<md5[:2]>/<md5[2:]>, as in its old cache, and its md5 is DVC 2's.
LEGACY = "legacy/"


def object_name(info: Any) -> str:
    """The name of a recorded hash's object, as push and fetch take it."""
    return LEGACY + info.md5 if info.legacy else str(info.md5)


def split_name(name: str) -> tuple[str, bool]:
    """An object name's md5, and whether it is a DVC 2 entry's."""
    return (name[len(LEGACY) :], True) if name.startswith(LEGACY) else (name, False)


def cache_path(cache: Cache, name: str) -> Path:
    """Where the cache keeps the object ``name``."""
    md5, legacy = split_name(name)
    return cache.obj_path(md5, legacy)


def default_jobs() -> int:
    """Transfers at once when not told: they wait on the network, not the CPU."""
    return 4 * (os.cpu_count() or 1)


class RemoteError(ExqError):
    """A remote cannot be reached, read or written."""


@dataclass
class Storage:
    """A remote opened: its file system and the folder objects live under."""

    remote: Remote
    fs: Any
    root: str

    @property
    def is_local(self) -> bool:
        return self.remote.scheme in ("", "file")

    @property
    def renames(self) -> bool:
        """Whether an upload goes to a temporary name first: a file system's
        write is seen half done, an object store's single put is not."""
        return self.is_local or self.remote.scheme in ("ssh", "sftp")

    def jobs(self, asked: int) -> int:
        """Transfers at once: as asked (-j), else the remote's ``jobs`` option, else
        :func:`default_jobs`."""
        if asked:
            return asked
        value = self.remote.options.get("jobs")
        return whole_number(self.remote.name, "jobs", value) if value else default_jobs()

    def object_path(self, name: str) -> str:
        md5, legacy = split_name(name)
        folder = self.root if legacy else f"{self.root}/files/md5"
        return f"{folder}/{md5[:2]}/{md5[2:]}"


def _fsspec(remote: Remote) -> Any:
    module, extra = EXTRAS.get(remote.scheme, ("fsspec", "remote"))
    try:
        import fsspec

        if module != "fsspec":
            __import__(module)
    except ImportError:
        raise ConfigError(
            f"remote '{remote.name}' ({remote.url}) needs {module}: pip install 'exq[{extra}]'"
        ) from None
    return fsspec


def _s3_options(name: str, options: dict[str, str]) -> dict[str, Any]:
    """DVC's S3 option names as s3fs takes them."""
    kwargs: dict[str, Any] = {}
    client: dict[str, Any] = {}
    if "access_key_id" in options:
        kwargs["key"] = options["access_key_id"]
    if "secret_access_key" in options:
        kwargs["secret"] = options["secret_access_key"]
    if "session_token" in options:
        kwargs["token"] = options["session_token"]
    if "profile" in options:
        kwargs["profile"] = options["profile"]
    if "endpointurl" in options:
        client["endpoint_url"] = options["endpointurl"]
    if "region" in options:
        client["region_name"] = options["region"]
    if options.get("use_ssl", "").lower() == "false":
        kwargs["use_ssl"] = False
    if "credentialpath" in options:
        os.environ.setdefault("AWS_SHARED_CREDENTIALS_FILE", options["credentialpath"])
    if client:
        kwargs["client_kwargs"] = client
    # Unset, botocore's own 60 s, as DVC has them, not s3fs's 15 s read timeout: a
    # server may take longer to complete a multipart upload of a few GB, and a
    # client that gives up and asks again races its own first request.
    kwargs["config_kwargs"] = {
        key: _seconds(name, key, options[key]) if key in options else None
        for key in ("read_timeout", "connect_timeout")
    }
    return kwargs


def _ssh_options(options: dict[str, str]) -> dict[str, Any]:
    """DVC's SSH option names as sshfs (asyncssh) takes them.

    The server's key is checked against ``~/.ssh/known_hosts`` (and ssh's
    config), as ssh does: sshfs alone would trust any server.
    """
    kwargs: dict[str, Any] = {"known_hosts": ()}  # (): asyncssh's own lookup
    if "user" in options:
        kwargs["username"] = options["user"]
    if "port" in options:
        kwargs["port"] = _number(options, "port", int)
    if "keyfile" in options:
        kwargs["client_keys"] = [os.path.expanduser(options["keyfile"])]
    for name in ("password", "passphrase"):
        if name in options:
            kwargs[name] = options[name]
    if "timeout" in options:
        kwargs["connect_timeout"] = _number(options, "timeout")
    if options.get("allow_agent", "").lower() == "false":
        kwargs["agent_path"] = None
    return kwargs


def _number(options: dict[str, str], name: str, kind: type[float] | type[int] = float) -> Any:
    try:
        return kind(options[name])
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"ssh remote option {name}: '{options[name]}' is not {what}") from None


def _options(remote: Remote) -> dict[str, Any]:
    if remote.scheme == "s3":
        return _s3_options(remote.name, remote.options)
    if remote.scheme in ("ssh", "sftp"):
        return _ssh_options(remote.options)
    return {}


def _seconds(name: str, key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"remote '{name}': {key} must be seconds, not '{value}'") from None


def _check_url(remote: Remote) -> None:
    """Refuse a URL that names no place: 'file://' would be the current folder."""
    rest = remote.url.split("://", 1)[1] if remote.scheme else remote.url
    if remote.scheme == "file":
        missing = "folder" if not rest else None
    else:
        host = rest.split("/", 1)[0]
        missing = None if host or not remote.scheme else _PLACE.get(remote.scheme, "host")
    if missing:
        raise ConfigError(f"remote '{remote.name}' ({remote.url}) names no {missing}")


# What the first part of a URL names, by scheme (others: a host).
_PLACE = {"s3": "bucket", "gs": "bucket", "azure": "container"}


def open_storage(remote: Remote) -> Storage:
    """The remote's file system, or one line saying why it cannot be used."""
    _check_url(remote)
    fsspec = _fsspec(remote)
    if "jobs" in remote.options:
        whole_number(remote.name, "jobs", remote.options["jobs"])
    if remote.scheme in ("", "file"):
        path = remote.url.removeprefix("file://")
        return Storage(remote, fsspec.filesystem("file"), os.path.abspath(path))
    kwargs = _options(remote)
    try:
        fs, root = fsspec.core.url_to_fs(remote.url, **kwargs)
    except (ValueError, ImportError) as exc:
        raise ConfigError(f"remote '{remote.name}': cannot use {remote.url}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - connecting (sshfs does it here) fails in its own words
        raise _refused(remote, exc) from exc
    return Storage(remote, fs, root.rstrip("/"))


def _refused(remote: Remote, exc: BaseException) -> RemoteError:
    return RemoteError(
        f"remote '{remote.name}' ({remote.url}): {_first_line(exc)}", hint=_hint(remote, exc)
    )


def _hint(remote: Remote, exc: BaseException) -> str | None:
    """What to do about a failure whose remedy is known."""
    if type(exc).__name__ == "HostKeyNotVerifiable":
        return "trust it as ssh does: in ~/.ssh/known_hosts (connect once with ssh)"
    text = str(exc)
    if remote.scheme == "s3" and ("locate credentials" in text or "Partial credentials" in text):
        return (
            f"give them with 'exq remote modify --local {remote.name} access_key_id ...' and "
            f"'exq remote modify --local {remote.name} secret_access_key ...', or name a "
            "profile or credentialpath"
        )
    return None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _explain(storage: Storage, exc: BaseException) -> RemoteError:
    return _refused(storage.remote, exc)


def listing(storage: Storage) -> dict[str, int]:
    """Every object the remote holds (``<hex>`` or ``<hex>.dir``) and its size, in one listing."""
    top = f"{storage.root}/files/md5"
    try:
        found = storage.fs.find(top, detail=True)
    except FileNotFoundError:
        return {}
    except Exception as exc:  # noqa: BLE001 - any library's failure becomes one line
        raise _explain(storage, exc) from exc
    names = {}
    for path, info in found.items():
        parts = path.rstrip("/").rsplit("/", 2)
        if len(parts) == 3 and len(parts[1]) == 2 and ".tmp" not in parts[2]:
            names[parts[1] + parts[2]] = int(info.get("size") or 0)
    return names


def known_on_remote(storage: Storage, names: Iterable[str], jobs: int) -> dict[str, int]:
    """Which of ``names`` the remote holds, and their sizes: a request each (at
    ``jobs`` at once) when they are few, else one listing of the whole remote."""
    wanted = set(names)
    legacy = {n for n in wanted if n.startswith(LEGACY)}
    sizes: dict[str, int] = {}
    if len(wanted - legacy) > QUERY_LIMIT:
        found = listing(storage)
        sizes = {n: found[n] for n in wanted - legacy if n in found}
        wanted = legacy
    if len(legacy) > QUERY_LIMIT:
        sizes.update(_legacy_listing(storage, legacy, jobs))
        wanted -= legacy

    def ask(name: str) -> None:
        try:
            info = storage.fs.info(storage.object_path(name))
        except FileNotFoundError:
            return
        except Exception as exc:  # noqa: BLE001 - any library's failure becomes one line
            raise _explain(storage, exc) from exc
        sizes[name] = int(info.get("size") or 0)

    _run(jobs, sorted(wanted), ask)
    return sizes


def _legacy_listing(storage: Storage, names: set[str], jobs: int) -> dict[str, int]:
    """Which of these DVC 2 objects the remote holds: one listing per prefix folder
    they use (the remote's root holds them, beside anything else it holds)."""
    sizes: dict[str, int] = {}

    def list_prefix(prefix: str) -> None:
        try:
            found = storage.fs.ls(f"{storage.root}/{prefix}", detail=True)
        except FileNotFoundError:
            return
        except Exception as exc:  # noqa: BLE001 - any library's failure becomes one line
            raise _explain(storage, exc) from exc
        for info in found:
            name = LEGACY + prefix + info["name"].rstrip("/").rsplit("/", 1)[-1]
            if name in names:
                sizes[name] = int(info.get("size") or 0)

    _run(jobs, sorted({split_name(n)[0][:2] for n in names}), list_prefix)
    return sizes


def _run(jobs: int, work: Iterable[Any], fn: Any) -> None:
    items = list(work)
    if jobs <= 1 or len(items) <= 1:
        for item in items:
            fn(item)
        return
    with ThreadPoolExecutor(jobs) as pool:
        for _ in pool.map(fn, items):
            pass


def push(storage: Storage, cache: Cache, names: list[str], jobs: int) -> int:
    """Upload these objects from the cache; the number sent."""
    sizes = {name: os.path.getsize(cache_path(cache, name)) for name in names}

    def send(name: str) -> None:
        target = storage.object_path(name)
        local = str(cache_path(cache, name))
        try:
            if storage.renames:
                storage.fs.makedirs(os.path.dirname(target), exist_ok=True)
                tmp = f"{target}.{uuid.uuid4().hex}.tmp"
                storage.fs.put_file(local, tmp)
                _rename(storage, tmp, target)
            else:
                storage.fs.put_file(local, target)  # one PUT: whole or nothing
        except Exception as exc:  # noqa: BLE001
            raise _explain(storage, exc) from exc
        task.advance(sizes[name])

    # A folder's .dir listing goes last, once every file it lists is there: DVC
    # (and exq) take a .dir on the remote to mean its whole folder is.
    files = [n for n in names if not n.endswith(DIR_SUFFIX)]
    listings = [n for n in names if n.endswith(DIR_SUFFIX)]
    with progress.task(f"push to {storage.remote.name}", len(names), sum(sizes.values())) as task:
        _run(jobs, files, send)
        _run(jobs, listings, send)
    return len(names)


def _rename(storage: Storage, tmp: str, target: str) -> None:
    if storage.is_local:
        os.replace(tmp, target)
    else:
        storage.fs.mv(tmp, target)


def fetch(storage: Storage, cache: Cache, names: dict[str, int], jobs: int) -> int:
    """Download these objects (name: size) into the cache, each verified; the number fetched."""

    def get(name: str) -> None:
        obj = cache_path(cache, name)
        obj.parent.mkdir(parents=True, exist_ok=True)
        tmp = obj.with_name(f"{obj.name}.{uuid.uuid4().hex}.tmp")
        md5, legacy = split_name(name)
        try:
            storage.fs.get_file(storage.object_path(name), str(tmp))
            if (legacy_md5(tmp) if legacy else file_md5(tmp)) != md5.removesuffix(DIR_SUFFIX):
                raise RemoteError(
                    f"remote '{storage.remote.name}': object {name} is corrupt "
                    f"(its md5 does not match); not fetched"
                )
            if name.endswith(DIR_SUFFIX):
                _check_listing(storage, name, tmp)
            os.chmod(tmp, READ_ONLY)
            os.replace(tmp, obj)
        except RemoteError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _explain(storage, exc) from exc
        finally:
            Path(tmp).unlink(missing_ok=True)
        task.advance(names[name])

    total = sum(names.values())
    with progress.task(f"fetch from {storage.remote.name}", len(names), total) as task:
        _run(jobs, names, get)
    return len(names)


def _check_listing(storage: Storage, name: str, path: Path) -> None:
    """Refuse a folder's listing that would put files outside it (a checkout writes
    where its relpaths say) or name objects by paths."""
    try:
        problem = listing_problem(parse_dir_listing(path.read_bytes()))
    except ValueError:
        problem = "it is no listing"
    if problem:
        raise RemoteError(f"remote '{storage.remote.name}': object {name}: {problem}; not fetched")


def reachable(storage: Storage) -> None:
    """Raise the one line that says why, if the remote cannot be read (one request)."""
    try:
        storage.fs.ls(f"{storage.root}/files/md5", detail=False)
    except FileNotFoundError:
        return
    except Exception as exc:  # noqa: BLE001 - any library's failure becomes one line
        raise _explain(storage, exc) from exc


def send_missing(
    storage: Storage, cache: Cache, names: Iterable[str], on_remote: dict[str, int], jobs: int
) -> list[str]:
    """Push those of ``names`` the cache holds and the remote lacks (``on_remote``:
    what is known there already, which learns what this finds and sends); the
    names pushed."""
    held = {n for n in names if cache_path(cache, n).is_file()}
    on_remote.update(known_on_remote(storage, held - on_remote.keys(), jobs))
    send = sorted(held - on_remote.keys())
    push(storage, cache, send, jobs)
    on_remote.update((n, os.path.getsize(cache_path(cache, n))) for n in send)
    return send


def fetch_missing(
    storage: Storage, cache: Cache, names: Iterable[str], on_remote: dict[str, int], jobs: int
) -> list[str]:
    """Fetch those of ``names`` the cache lacks and the remote holds, then the
    files their ``.dir`` listings name; the names fetched (``on_remote`` as in
    :func:`send_missing`)."""
    wanted = set(names)
    got = _fetch_absent(storage, cache, wanted, on_remote, jobs)
    listed: set[str] = set()
    for name in wanted:
        if name.endswith(DIR_SUFFIX) and cache_path(cache, name).is_file():
            try:
                listed.update(
                    md5 for _, md5 in parse_dir_listing(cache_path(cache, name).read_bytes())
                )
            except ValueError:
                continue  # not a listing: its folder's stage runs again
    return got + _fetch_absent(storage, cache, listed - wanted, on_remote, jobs)


def _fetch_absent(
    storage: Storage, cache: Cache, names: set[str], on_remote: dict[str, int], jobs: int
) -> list[str]:
    absent = {n for n in names if not cache_path(cache, n).is_file()}
    on_remote.update(known_on_remote(storage, absent - on_remote.keys(), jobs))
    there = {n: on_remote[n] for n in sorted(absent) if n in on_remote}
    fetch(storage, cache, there, jobs)
    return list(there)
