"""DVC 3's hash formats, checked against values the real dvc 3.67.1 produced."""

from __future__ import annotations

import json

import pytest

from exq.engine.data.hashing import (
    HashInfo,
    IgnoreRules,
    bytes_md5,
    dir_hash,
    dir_listing_bytes,
    listing_problem,
    parse_dir_listing,
)

# `dvc add tree` on this tree (see tests/integration/engine/data/test_hashing_tree.py) gave
# md5 2dc3c8996af29199a383aafb9d2ba894.dir, size 36, nfiles 9, and this object:
DVC_TREE_LISTING = (
    b'[{"md5": "8ca2ed590cf2ea2404f2e67641bcdf50", "relpath": "a-b"},'
    b' {"md5": "b1946ac92492d2347c6235b4d2611184", "relpath": "a.txt"},'
    b' {"md5": "9fbbaa4cc515bc46e0c12e82a31df736", "relpath": "a/z"},'
    b' {"md5": "d02c4c4cde7ae76252540d116a40f23a", "relpath": "a0"},'
    b' {"md5": "9dd4e461268c8034f5c8564e155c67a6", "relpath": "b/x"},'
    b' {"md5": "d41d8cd98f00b204e9800998ecf8427e", "relpath": "empty"},'
    b' {"md5": "a7e3167904713e16203bf1397e93aa16", "relpath": "sub/crlf.txt"},'
    b' {"md5": "6627415e807ee33c7302917216e7da68", "relpath": "sub/deeper/d.bin"},'
    b' {"md5": "7b774effe4a349c6dd82ad4f4f21d34c", "relpath": "\\u00fc name.txt"}]'
)
DVC_TREE_FILES = [  # (relpath, md5, size), deliberately not in sorted order
    ("\u00fc name.txt", "7b774effe4a349c6dd82ad4f4f21d34c", 1),
    ("sub/deeper/d.bin", "6627415e807ee33c7302917216e7da68", 4),
    ("a0", "d02c4c4cde7ae76252540d116a40f23a", 4),
    ("a/z", "9fbbaa4cc515bc46e0c12e82a31df736", 5),
    ("a.txt", "b1946ac92492d2347c6235b4d2611184", 6),
    ("a-b", "8ca2ed590cf2ea2404f2e67641bcdf50", 3),
    ("b/x", "9dd4e461268c8034f5c8564e155c67a6", 1),
    ("empty", "d41d8cd98f00b204e9800998ecf8427e", 0),
    ("sub/crlf.txt", "a7e3167904713e16203bf1397e93aa16", 12),
]


def test_dir_hash_reproduces_dvc_value() -> None:
    info, data = dir_hash(DVC_TREE_FILES)
    assert data == DVC_TREE_LISTING
    assert info == HashInfo("2dc3c8996af29199a383aafb9d2ba894.dir", 36, 9)
    assert info.isdir


def test_listing_sorts_by_plain_string_not_by_path_parts() -> None:
    # "a.txt" < "a/z" < "a0" as strings; sorting by parts would put "a/z" first.
    data = dir_listing_bytes([("a0", "3" * 32), ("a/z", "2" * 32), ("a.txt", "1" * 32)])
    assert [rel for rel, _ in parse_dir_listing(data)] == ["a.txt", "a/z", "a0"]


@pytest.mark.parametrize(
    "rel",
    [
        'quote " and back\\slash',
        "tab\tnew\nline",
        "caf\u00e9/\u6587\u4ef6",
        "bad \udcff byte",
        "\U0001f600",
    ],
)
def test_listing_escapes_names_as_json_dumps_does(rel: str) -> None:
    # DVC writes the listing with json.dumps (ASCII escapes): the same bytes, name for name
    pairs = [(rel, "0" * 32), ("plain", "1" * 32)]
    expected = json.dumps(
        [{"md5": md5, "relpath": r} for r, md5 in sorted(pairs)], sort_keys=True
    ).encode()
    assert dir_listing_bytes(pairs) == expected
    assert parse_dir_listing(expected) == sorted(pairs)


def test_empty_dir_hash_is_md5_of_empty_list() -> None:
    info, data = dir_hash([])
    assert data == b"[]"
    assert info == HashInfo("d751713988987e9331980363e24189ce.dir", 0, 0)


def test_parse_dir_listing_round_trips_dvc_bytes() -> None:
    pairs = parse_dir_listing(DVC_TREE_LISTING)
    assert dir_listing_bytes(pairs) == DVC_TREE_LISTING
    assert bytes_md5(DVC_TREE_LISTING) == "2dc3c8996af29199a383aafb9d2ba894"


@pytest.mark.parametrize("data", [b"{}", b'[{"md5": "x"}]', b'[{"relpath": "a"}]', b"not json"])
def test_parse_dir_listing_rejects_garbage(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_dir_listing(data)


GOOD = "0" * 32


@pytest.mark.parametrize(
    "pairs",
    [
        [("a", "../../etc/passwd")],  # an md5 is a path in the cache
        [("../out", GOOD)],  # out of the folder
        [("a/../../out", GOOD)],
        [("/etc/x", GOOD)],
    ],
)
def test_a_listing_that_leaves_its_folder_is_a_problem(pairs: list[tuple[str, str]]) -> None:
    assert listing_problem(pairs) is not None
    assert listing_problem([("a/b..c", GOOD), ("d", GOOD + ".dir")]) is None


def test_hashinfo_equality_ignores_isexec() -> None:
    assert HashInfo("abc", 1, isexec=True) == HashInfo("abc", 1)
    assert HashInfo("abc", 1) != HashInfo("abd", 1)
    assert not HashInfo("abc", 1).isdir


DVCIGNORE = [
    "# comment",
    "*.log",
    "!keep.log",
    "cache/",
    "/d7/top_only.txt",
    "d7/sub/**/deep.txt",
    "**/any",
    "d7/docs/*.md",
    "!d7/docs/readme.md",
    "a?c",
    "[xy].dat",
    "nested/dir/",
    "\\#hash",
    "trail.txt   ",
]


@pytest.mark.parametrize(
    ("rel", "isdir", "expected"),
    [
        ("d7/a.log", False, True),
        ("d7/keep.log", False, False),
        ("d7/sub/keep.log", False, False),
        ("d7/cache", True, True),
        ("d7/cache", False, False),  # "cache/" only matches folders
        ("d7/q/cache", True, True),
        ("d7/top_only.txt", False, True),
        ("d7/sub/top_only.txt", False, False),
        ("d7/sub/deep.txt", False, True),  # "/**/" also matches zero folders
        ("d7/sub/x/y/deep.txt", False, True),
        ("d7/deep.txt", False, False),
        ("d7/any", False, True),
        ("d7/sub/any", False, True),
        ("d7/docs/a.md", False, True),
        ("d7/docs/readme.md", False, False),
        ("d7/docs/inner/b.md", False, False),  # "*" does not cross "/"
        ("d7/abc", False, True),
        ("d7/abbc", False, False),
        ("d7/x.dat", False, True),
        ("d7/z.dat", False, False),
        ("nested/dir", True, True),
        ("d7/nested/dir", True, False),  # a middle "/" anchors to the root
        ("d7/#hash", False, True),
        ("d7/trail.txt", False, True),
        ("d7/plain", False, False),
    ],
)
def test_dvcignore_rules_match_what_dvc_skipped(rel: str, isdir: bool, expected: bool) -> None:
    # The file outcomes here are the ones `dvc add d7` produced with this .dvcignore.
    rules = IgnoreRules()
    rules.add_lines("", DVCIGNORE)
    assert rules.ignored(rel, isdir) is expected


def test_deeper_dvcignore_overrides_and_is_scoped() -> None:
    rules = IgnoreRules()
    rules.add_lines("", ["*.bin"])
    rules.add_lines("p", ["!keep.bin", "local"])
    assert rules.ignored("p/keep.bin", False) is False
    assert rules.ignored("q/keep.bin", False) is True
    assert rules.ignored("p/local", False) is True
    assert rules.ignored("local", False) is False
