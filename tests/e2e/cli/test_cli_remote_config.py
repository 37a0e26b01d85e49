"""``exq remote ...`` writes .dvc/config and .dvc/config.local as ``dvc remote ...`` does.

The same commands go to exq in one project and to the real DVC in another;
the two projects' config files must come out byte for byte the same. Comments
and other sections of the files stay where they were.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.e2e.conftest import exq, write
from tests.e2e.exp_helpers import init_repo

COMMANDS = [
    ["remote", "add", "-d", "store", "/srv/dvc-store"],
    ["remote", "add", "cloud", "s3://bucket/some/path"],
    ["remote", "modify", "cloud", "endpointurl", "http://127.0.0.1:9000"],
    ["remote", "modify", "cloud", "region", "eu-west-1"],
    ["remote", "modify", "--local", "cloud", "access_key_id", "AKIAEXAMPLE"],
    ["remote", "modify", "--local", "cloud", "secret_access_key", "s3cr3t"],
    ["remote", "modify", "store", "jobs", "4"],
    ["remote", "add", "nearby", "../shared/store"],
    ["remote", "add", "home", "~/dvc-store"],
    ["remote", "modify", "nearby", "url", "../other,store"],
    ["remote", "default", "cloud"],
    ["remote", "modify", "cloud", "--unset", "region"],
    ["remote", "add", "--local", "mine", "/home/me/store"],
    ["remote", "remove", "store"],
    ["remote", "default", "--unset"],
]


def _files(root: Path) -> dict[str, str | None]:
    dvc = root / ".dvc"
    return {
        name: (dvc / name).read_text() if (dvc / name).exists() else None
        for name in ("config", "config.local")
    }


def test_remote_commands_write_the_files_dvc_writes(tmp_path: Path, dvc_bin: str) -> None:
    ours = init_repo(tmp_path / "ours")
    theirs = init_repo(tmp_path / "theirs")
    for command in COMMANDS:
        exq(*command, cwd=ours)
        subprocess.run([dvc_bin, *command], cwd=theirs, check=True, capture_output=True)
        assert _files(ours) == _files(theirs), command
    # What DVC wrote, exq reads: the remotes and the default.
    _, listing, _ = exq("remote", "list", cwd=theirs)
    assert listing.split("\n")[0].split("\t")[:2] == ["cloud", "s3://bucket/some/path"]
    assert "/home/me/store" in listing


def test_edits_keep_comments_and_other_sections(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "repo")
    config = root / ".dvc" / "config"
    config.write_text("# project settings\n[core]\n    autostage = true  # why not\n[cache]\n")
    exq("remote", "add", "-d", "store", "/srv/store", cwd=root)
    exq("remote", "modify", "store", "jobs", "8", cwd=root)
    assert config.read_text() == (
        "# project settings\n[core]\n    autostage = true  # why not\n    remote = store\n"
        "[cache]\n['remote \"store\"']\n    url = /srv/store\n    jobs = 8\n"
    )
    _, default, _ = exq("remote", "default", cwd=root)
    assert default.strip() == "store"


def test_bad_remote_commands_give_one_line_and_change_nothing(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "repo")
    exq("remote", "add", "store", "s3://bucket/x", cwd=root)
    before = _files(root)
    for command, words in [
        (["remote", "add", "store", "/elsewhere"], "exists already"),
        (["remote", "modify", "store", "colour", "blue"], "unknown option 'colour'"),
        (["remote", "modify", "nope", "url", "/x"], "no remote named 'nope'"),
        (["remote", "default", "nope"], "no remote named 'nope'"),
        (["remote", "remove", "nope"], "no remote named 'nope'"),
        (["remote", "modify", "store", "--unset", "url"], "remote remove"),
        # values of the kind DVC takes for the option
        (["remote", "modify", "store", "jobs", "many"], "jobs"),
        (["remote", "modify", "store", "jobs", "0"], "jobs"),
        (["remote", "modify", "store", "verify", "maybe"], "verify"),
        (["remote", "modify", "store", "read_timeout", "soon"], "read_timeout"),
        # credentials go to config.local, never to the file git commits
        (["remote", "modify", "store", "secret_access_key", "s3cr3t"], "--local"),
        (["remote", "modify", "store", "access_key_id", "AKIAEXAMPLE"], "--local"),
        (["remote", "add", "box", "ssh://me:s3cr3t@host/store"], "--local"),
        (["remote", "modify", "store", "url", "https://me:s3cr3t@host/x"], "--local"),
    ]:
        code, _, stderr = exq(*command, cwd=root, check=False)
        assert code != 0, command
        assert words in stderr and len(stderr.strip().splitlines()) == 1, stderr
        assert _files(root) == before, command


def test_inline_comments_are_read_as_dvc_reads_them(tmp_path: Path, dvc_bin: str) -> None:
    root = init_repo(tmp_path / "repo")
    store = tmp_path / "store"
    (root / ".dvc" / "config").write_text(
        "[core]  # settings\n"
        "    remote = store  # the shared one\n"
        "['remote \"store\"']\n"
        f"    url = {store}  # on the NAS\n"
        "    jobs = 2#two at once\n"
        "['remote \"quoted\"']\n"
        "    url = '/srv/a#b'  # a hash in the path\n"
    )
    dvc_listing = subprocess.run(
        [dvc_bin, "remote", "list"], cwd=root, check=True, capture_output=True, text=True
    ).stdout
    assert dvc_listing.split() == ["store", str(store), "(default)", "quoted", "/srv/a#b"]
    _, listing, _ = exq("remote", "list", cwd=root)
    assert listing.split() == dvc_listing.split()
    _, default, _ = exq("remote", "default", cwd=root)
    assert default.strip() == "store"
    (root / "f").write_text("hi\n")
    exq("add", "f", cwd=root)
    exq("push", cwd=root)
    assert [p.name for p in (store / "files" / "md5").iterdir()] == ["76"]


def test_a_remote_of_config_local_is_changed_with_local(tmp_path: Path) -> None:
    # Written to .dvc/config, the option (or default) would name a remote that a
    # clone, which has no config.local, cannot find: every remote command there
    # would fail on the url-less section.
    root = init_repo(tmp_path / "repo")
    exq("remote", "add", "--local", "mine", "/home/me/store", cwd=root)
    before = _files(root)
    for command in (["remote", "modify", "mine", "jobs", "3"], ["remote", "default", "mine"]):
        code, _, stderr = exq(*command, cwd=root, check=False)
        assert code != 0, command
        assert "--local" in stderr and "'mine'" in stderr, stderr
        assert len(stderr.strip().splitlines()) == 1, stderr
        assert _files(root) == before, command
    # a url config.local sets over config's may go, config's stays
    exq("remote", "add", "shared", "/srv/shared", cwd=root)
    exq("remote", "modify", "--local", "shared", "url", "/mnt/shared", cwd=root)
    exq("remote", "modify", "--local", "--unset", "shared", "url", cwd=root)
    exq("remote", "remove", "shared", cwd=root)
    exq("remote", "modify", "--local", "mine", "jobs", "3", cwd=root)
    exq("remote", "default", "--local", "mine", cwd=root)
    _, listing, _ = exq("remote", "list", cwd=root)
    assert listing.split() == ["mine", "/home/me/store", "(default)"]


def test_remote_names_dvc_allows_are_listed(tmp_path: Path, dvc_bin: str) -> None:
    root = init_repo(tmp_path / "repo")
    for name in ('we"ird', "my store"):
        subprocess.run([dvc_bin, "remote", "add", name, "/srv/x"], cwd=root, check=True)
    _, listing, _ = exq("remote", "list", cwd=root)
    assert [line.split("\t")[0] for line in listing.splitlines()] == ['we"ird', "my store"]


def test_a_remote_without_url_is_named_with_its_file(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "repo")
    (root / ".dvc" / "config.local").write_text("['remote \"half\"']\n    region = us-east-1\n")
    code, _, stderr = exq("remote", "list", cwd=root, check=False)
    assert code == 1 and stderr.strip() == "ERROR: .dvc/config.local: remote 'half' has no url"


def test_remotes_of_dvcs_global_and_system_config_are_read(tmp_path: Path, dvc_bin: str) -> None:
    # DVC reads remotes (and core.remote) from the machine's and the user's config
    # too, below the project's; 'dvc remote add --global' writes the user's.
    root = init_repo(tmp_path / "repo")
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "home-config"),
        "XDG_CONFIG_DIRS": str(tmp_path / "etc-xdg"),
    }
    dvc_env = {**os.environ, **env}
    store = tmp_path / "store"
    for args in (["--global", "-d", "mine", str(store)], ["--system", "shared", "/srv/shared"]):
        subprocess.run([dvc_bin, "remote", "add", *args], cwd=root, env=dvc_env, check=True)
    _, listing, _ = exq("remote", "list", cwd=root, env=env)
    assert sorted(listing.splitlines()) == [f"mine\t{store}\t(default)", "shared\t/srv/shared"]
    write(root / "data.txt", "data\n")
    exq("add", "data.txt", cwd=root, env=env)
    exq("push", cwd=root, env=env)
    assert (store / "files" / "md5").is_dir()
    exq("remote", "default", "shared", cwd=root, env=env)  # the project's choice wins
    _, default, _ = exq("remote", "default", cwd=root, env=env)
    assert default.strip() == "shared"
    code, _, err = exq("remote", "remove", "mine", cwd=root, env=env, check=False)
    assert code == 1 and "home-config/dvc/config" in err and len(err.splitlines()) == 1, err
