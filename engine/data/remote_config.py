"""DVC's data remotes in ``.dvc/config`` and ``.dvc/config.local``: read them, edit them.

DVC keeps each remote in a section ``['remote "NAME"']`` and the default one in
``core.remote``; credentials belong in ``config.local`` (git ignores it). Edits
here change only the lines they concern, so comments and every other section
stay as they were (DVC itself drops comments when it rewrites the file); what
they write is otherwise what ``dvc remote ...`` writes for the same command.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from exq.engine.errors import ConfigError
from exq.engine.writes import atomic_write_text

CONFIG = "config"
LOCAL_CONFIG = "config.local"

_COMMON = {"url", "jobs", "verify", "checksum_jobs", "version_aware", "worktree"}
_SHARED_HTTP = {"ssl_verify", "read_timeout", "connect_timeout", "user", "password"}
# The option names DVC accepts, by the URL's scheme ("" for a local path).
OPTIONS: dict[str, set[str]] = {
    "": {"type", "protected", "shared"},
    "s3": {
        "region", "profile", "credentialpath", "configpath", "endpointurl", "access_key_id",
        "secret_access_key", "session_token", "use_ssl", "allow_anonymous_login", "ssl_verify",
        "sse", "sse_kms_key_id", "sse_customer_algorithm", "sse_customer_key", "acl",
        "grant_read", "grant_read_acp", "grant_write_acp", "grant_full_control",
        "cache_regions", "read_timeout", "connect_timeout", "listobjects",
    },
    "gs": {"projectname", "credentialpath", "endpointurl"},
    "azure": {
        "account_name", "account_key", "connection_string", "sas_token", "tenant_id",
        "client_id", "client_secret", "allow_anonymous_login", "exclude_environment_credential",
        "exclude_visual_studio_code_credential", "exclude_shared_token_cache_credential",
        "exclude_managed_identity_credential", "timeout", "read_timeout", "connect_timeout",
    },
    "ssh": {
        "host", "port", "user", "password", "ask_password", "passphrase", "ask_passphrase",
        "keyfile", "timeout", "gss_auth", "allow_agent", "max_sessions",
    },
    "http": {"auth", "custom_auth_header", "ask_password", "method", *_SHARED_HTTP},
}  # fmt: skip
OPTIONS["https"] = OPTIONS["http"]
# The options whose values DVC checks, by kind.
WHOLE = {"jobs", "checksum_jobs", "max_sessions"}  # a whole number above 0
SECONDS = {"read_timeout", "connect_timeout", "timeout"}
BOOLEAN = {
    "verify", "use_ssl", "allow_anonymous_login", "listobjects", "version_aware", "worktree",
    "ask_password", "ask_passphrase", "gss_auth", "allow_agent", "cache_regions", "protected",
    "exclude_environment_credential", "exclude_visual_studio_code_credential",
    "exclude_shared_token_cache_credential", "exclude_managed_identity_credential",
}  # fmt: skip
# The options that hold secrets: written only to config.local, which git ignores.
CREDENTIALS = {
    "access_key_id", "secret_access_key", "session_token", "sse_customer_key", "password",
    "passphrase", "account_key", "connection_string", "sas_token", "client_secret",
}  # fmt: skip
OPTIONS["file"] = OPTIONS[""]

# configobj's syntax, which DVC reads: a "#" starts a comment after a header or an
# unquoted value (";" does not); a quoted value keeps its "#".
_HEADER = re.compile(r"^\s*\[(?P<name>[^\]]*)\]\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*(?P<key>[^=#;\s][^=]*?)\s*=\s*(?P<value>.*?)\s*$")


def section_of(name: str) -> str:
    return f'remote "{name}"'


def scheme_of(url: str) -> str:
    """The URL's scheme as DVC names remotes by it; "" for a local path."""
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", url)
    if not match or (os.name == "nt" and len(match.group(1)) == 1):
        return ""
    scheme = match.group(1).lower()
    return {"gcs": "gs", "az": "azure", "abfs": "azure", "sftp": "ssh"}.get(scheme, scheme)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _value(raw: str) -> str:
    """A key's value as configobj reads it: quoted, or up to a comment."""
    if raw[:1] in ("'", '"'):
        end = raw.find(raw[0], 1)
        after = raw[end + 1 :].strip()
        if end > 0 and (not after or after.startswith("#")):
            return raw[1:end]
    return raw.split("#", 1)[0].strip()


def _quote(value: str) -> str:
    # Characters configobj would read as a list, a comment or stripped space.
    if any(ch in value for ch in ",#") or value != value.strip():
        return f'"{value}"' if '"' not in value else f"'{value}'"
    return value


@dataclass
class IniFile:
    """An INI file's lines, edited in place: untouched lines are kept byte for byte."""

    path: Path
    lines: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> IniFile:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from exc
        return cls(path, text.splitlines())

    def sections(self) -> dict[str, dict[str, str]]:
        result: dict[str, dict[str, str]] = {}
        current: dict[str, str] | None = None
        for number, line in enumerate(self.lines, 1):
            stripped = line.strip()
            if not stripped or stripped[0] in "#;":
                continue
            header = _HEADER.match(line)
            if header:
                current = result.setdefault(_unquote(header.group("name").strip()), {})
                continue
            pair = _KEY.match(line)
            if pair is None or current is None:
                raise ConfigError(f"{self.path}:{number}: cannot be read: {stripped!r}")
            current[pair.group("key")] = _value(pair.group("value"))
        return result

    def _span(self, section: str) -> tuple[int, int] | None:
        """Line indexes of the section: its header, and one past its last key line."""
        start = None
        end = 0
        for index, line in enumerate(self.lines):
            header = _HEADER.match(line)
            if header:
                if start is not None:
                    break
                if _unquote(header.group("name").strip()) == section:
                    start = index
                    end = index + 1
            elif start is not None and _KEY.match(line) and line.strip()[0] not in "#;":
                end = index + 1
        return None if start is None else (start, end)

    def _key_index(self, section: str, key: str) -> int | None:
        span = self._span(section)
        if span is None:
            return None
        for index in range(span[0] + 1, span[1]):
            pair = _KEY.match(self.lines[index])
            if pair and self.lines[index].strip()[0] not in "#;" and pair.group("key") == key:
                return index
        return None

    def set(self, section: str, key: str, value: str) -> None:
        line = f"    {key} = {_quote(value)}"
        existing = self._key_index(section, key)
        if existing is not None:
            self.lines[existing] = line
            return
        span = self._span(section)
        if span is None:
            header = f"[{section}]" if re.fullmatch(r"[\w.-]+", section) else f"['{section}']"
            if section == "core":  # DVC writes core first
                self.lines[:0] = [header, line]
            else:
                self.lines += [header, line]
        else:
            self.lines.insert(span[1], line)

    def unset(self, section: str, key: str) -> bool:
        index = self._key_index(section, key)
        if index is None:
            return False
        del self.lines[index]
        if not self.sections().get(section):
            self.remove(section)  # as DVC, no empty section stays behind
        return True

    def remove(self, section: str) -> bool:
        span = self._span(section)
        if span is None:
            return False
        del self.lines[span[0] : span[1]]
        return True

    def save(self) -> None:
        text = "\n".join(self.lines) + "\n" if self.lines else ""
        atomic_write_text(self.path, text)


@dataclass(frozen=True)
class Remote:
    """One remote: its name, URL (a local path made absolute) and options."""

    name: str
    url: str
    options: dict[str, str]

    @property
    def scheme(self) -> str:
        return scheme_of(self.url)


def _files(dvc_dir: Path) -> tuple[IniFile, IniFile]:
    return IniFile.read(dvc_dir / CONFIG), IniFile.read(dvc_dir / LOCAL_CONFIG)


def _remote_sections(ini: IniFile) -> dict[str, dict[str, str]]:
    found = {}
    for section, values in ini.sections().items():
        match = re.fullmatch(r'\s*remote\s*"(?P<name>.+)"\s*', section)
        if match:
            found[match.group("name")] = values
    return found


def machine_configs() -> list[Path]:
    """DVC's system-wide and per-user config files, where DVC looks for them on
    Linux (``dvc config --system``/``--global``): read below the project's, never written."""
    env = os.environ.get
    system = env("DVC_SYSTEM_CONFIG_DIR") or os.path.join(
        (env("XDG_CONFIG_DIRS") or "/etc/xdg").split(":")[0], "dvc"
    )
    user = env("DVC_GLOBAL_CONFIG_DIR") or os.path.join(
        env("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "dvc"
    )
    return [Path(system) / CONFIG, Path(user) / CONFIG]


def _levels(dvc_dir: Path) -> list[IniFile]:
    """Every config file that may hold remotes, lowest first: system, user, project, local."""
    return [IniFile.read(path) for path in machine_configs()] + list(_files(dvc_dir))


def _shown(ini: IniFile, dvc_dir: Path) -> str:
    return f".dvc/{ini.path.name}" if ini.path.parent == dvc_dir else str(ini.path)


def remotes(dvc_dir: Path) -> dict[str, Remote]:
    """Every remote, each file's options over those of the files below it."""
    merged: dict[str, dict[str, str]] = {}
    where: dict[str, str] = {}  # the first file with a section for each remote
    base: dict[str, Path] = {}  # the folder of the file that gave each remote its url
    for ini in _levels(dvc_dir):
        for name, values in _remote_sections(ini).items():
            merged.setdefault(name, {}).update(values)
            where.setdefault(name, _shown(ini, dvc_dir))
            if "url" in values:
                base[name] = ini.path.parent
    found = {}
    for name, options in merged.items():
        url = options.get("url")
        if not url:
            raise ConfigError(f"{where[name]}: remote '{name}' has no url")
        if scheme_of(url) == "" and not os.path.isabs(url):
            # DVC keeps a local path relative to the folder of its config file (.dvc/).
            url = os.path.normpath(base[name] / os.path.expanduser(url))
        found[name] = Remote(name, url, options)
    return found


def default_name(dvc_dir: Path) -> str | None:
    for ini in reversed(_levels(dvc_dir)):
        name = ini.sections().get("core", {}).get("remote")
        if name:
            return name
    return None


def get_remote(dvc_dir: Path, name: str | None) -> Remote:
    """The remote called ``name``, or the default one."""
    chosen = name or default_name(dvc_dir)
    if chosen is None:
        raise ConfigError(
            "no remote given and no default remote set",
            hint="use -r NAME, or set one with 'exq remote default NAME'",
        )
    found = remotes(dvc_dir).get(chosen)
    if found is None:
        raise ConfigError(f".dvc/config: no remote named '{chosen}'")
    return found


def _file_for(dvc_dir: Path, local: bool) -> IniFile:
    return IniFile.read(dvc_dir / (LOCAL_CONFIG if local else CONFIG))


def _stored_url(dvc_dir: Path, url: str) -> str:
    """A relative local path as DVC stores it: relative to the .dvc folder ('~/...'
    as it is: read, it is the user's home)."""
    if scheme_of(url) or os.path.isabs(url) or url.startswith("~"):
        return url
    return os.path.relpath(os.path.abspath(url), dvc_dir)


def _password_in(url: str) -> bool:
    try:
        return urlsplit(url).password is not None
    except ValueError:  # not a URL urllib can read: its file system will say so
        return False


def _keep_out_of_git(name: str, key: str, value: str, *, local: bool) -> None:
    """Refuse a secret bound for the committed ``.dvc/config``."""
    if local:
        return
    if key in CREDENTIALS:
        what = key
    elif key == "url" and scheme_of(value) and _password_in(value):
        what = "the url's password"
    else:
        return
    raise ConfigError(
        f"remote '{name}': {what} is a credential, and .dvc/config is committed with the project",
        hint="write it to .dvc/config.local with --local",
    )


def add(dvc_dir: Path, name: str, url: str, *, default: bool, local: bool, force: bool) -> None:
    _keep_out_of_git(name, "url", url, local=local)
    ini = _file_for(dvc_dir, local)
    if not force and name in _remote_sections(ini):
        raise ConfigError(
            f".dvc/{ini.path.name}: remote '{name}' exists already",
            hint="use --force to replace it",
        )
    ini.remove(section_of(name))
    ini.set(section_of(name), "url", _stored_url(dvc_dir, url))
    if default:
        ini.set("core", "remote", name)
    ini.save()


def whole_number(name: str, key: str, value: str) -> int:
    """A whole-number option's value (above 0), or the one line saying it is not one."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"remote '{name}': {key} must be a whole number above 0, not '{value}'")
    return number


def _check_value(name: str, key: str, value: str) -> None:
    """Refuse, as DVC does, a value that is not of the option's kind."""
    if key in WHOLE:
        whole_number(name, key, value)
    elif key in SECONDS:
        try:
            float(value)
        except ValueError:
            raise ConfigError(f"remote '{name}': {key} must be seconds, not '{value}'") from None
    elif key in BOOLEAN and value.lower() not in ("true", "false"):
        raise ConfigError(f"remote '{name}': {key} must be true or false, not '{value}'")


def _check_option(name: str, url: str, key: str) -> None:
    known = _COMMON | OPTIONS.get(scheme_of(url), set())
    if key not in known:
        raise ConfigError(
            f"remote '{name}': unknown option '{key}' for a {scheme_of(url) or 'local'} remote",
            hint="options: " + ", ".join(sorted(known)),
        )


def _url_in(ini: IniFile, name: str) -> bool:
    return "url" in _remote_sections(ini).get(name, {})


def _refuse_local_only(dvc_dir: Path, name: str) -> None:
    """A remote config.local defines cannot be named in config: a clone, which
    has no config.local, would find a section without a url, or no remote."""
    below_local = _levels(dvc_dir)[:-1]
    if not any(_url_in(ini, name) for ini in below_local):
        raise ConfigError(
            f".dvc/config: remote '{name}' is defined in .dvc/config.local only",
            hint="change it there with --local",
        )


def modify(dvc_dir: Path, name: str, key: str, value: str | None, *, local: bool) -> None:
    """Set (or with ``value`` None, unset) one option of an existing remote."""
    found = remotes(dvc_dir).get(name)
    if found is None:
        raise ConfigError(f".dvc/config: no remote named '{name}'")
    url = value if key == "url" and value is not None else found.url
    _check_option(name, url, key)
    target = dvc_dir / (LOCAL_CONFIG if local else CONFIG)
    others = [ini for ini in _levels(dvc_dir) if ini.path != target]
    if key == "url" and value is None and not any(_url_in(ini, name) for ini in others):
        raise ConfigError(
            f"remote '{name}': its url cannot be unset",
            hint=f"'exq remote remove {name}' removes the remote",
        )
    if not (local or key == "url"):
        _refuse_local_only(dvc_dir, name)
    if value is not None:
        _check_value(name, key, value)
        _keep_out_of_git(name, key, value, local=local)
    ini = _file_for(dvc_dir, local)
    if value is None:
        ini.unset(section_of(name), key)
    else:
        ini.set(section_of(name), key, _stored_url(dvc_dir, value) if key == "url" else value)
    ini.save()


def set_default(dvc_dir: Path, name: str | None, *, local: bool) -> None:
    """Make ``name`` the default remote (None: no default)."""
    if name is not None and name not in remotes(dvc_dir):
        raise ConfigError(f".dvc/config: no remote named '{name}'")
    if name is not None and not local:
        _refuse_local_only(dvc_dir, name)
    ini = _file_for(dvc_dir, local)
    if name is None:
        ini.unset("core", "remote")
    else:
        ini.set("core", "remote", name)
    ini.save()


def remove(dvc_dir: Path, name: str) -> None:
    """Drop the remote from both files (and as default), so neither names a half remote."""
    if name not in remotes(dvc_dir):
        raise ConfigError(f".dvc/config: no remote named '{name}'")
    files = _files(dvc_dir)
    if not any(name in _remote_sections(ini) for ini in files):
        elsewhere = next(i.path for i in _levels(dvc_dir) if name in _remote_sections(i))
        raise ConfigError(
            f"remote '{name}' is defined in {elsewhere}, which exq does not write",
            hint=f"'dvc remote remove --global {name}' (or --system) removes it",
        )
    for ini in files:
        changed = ini.remove(section_of(name))
        if ini.sections().get("core", {}).get("remote") == name:
            changed = ini.unset("core", "remote") or changed
        if changed:
            ini.save()
