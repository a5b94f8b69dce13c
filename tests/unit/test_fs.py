"""The shared file helpers: one walker and its symlink policy, hashing, staged output."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from tests.support.payloads import weights
from weightvault._fs import hash_file, regular_files, staged_output, walk_tree, write_private
from weightvault.errors import InvalidInputError


def _tree(root: Path) -> Path:
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"a")
    (root / "sub" / "b.bin").write_bytes(b"b" * 10)
    (root / "sub" / "deep" / "c").write_bytes(b"")
    return root


def test_walk_lists_files_sorted_and_never_follows_links(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    (root / "link-dir").symlink_to(outside, target_is_directory=True)
    (root / "link-file").symlink_to(outside / "secret")
    os.mkfifo(root / "pipe")
    entries = walk_tree(root)
    assert [(e.relpath, e.kind) for e in entries] == [
        ("a.txt", "file"),
        ("link-dir", "symlink"),
        ("link-file", "symlink"),
        ("pipe", "other"),
        ("sub/b.bin", "file"),
        ("sub/deep/c", "file"),
    ]
    assert all("secret" not in e.relpath for e in entries)


@pytest.mark.parametrize("kind", ["file-link", "dir-link", "fifo"])
def test_regular_files_refuses_anything_else_by_name(tmp_path: Path, kind: str) -> None:
    root = _tree(tmp_path / "t")
    odd = root / "sub" / "odd"
    if kind == "file-link":
        odd.symlink_to(root / "a.txt")
    elif kind == "dir-link":
        odd.symlink_to(root / "sub" / "deep", target_is_directory=True)
    else:
        os.mkfifo(odd)
    with pytest.raises(InvalidInputError, match=str(odd)):
        regular_files(root)


def test_regular_files_of_a_file_a_link_and_nothing(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    assert regular_files(root / "a.txt") == [("a.txt", root / "a.txt")]
    (tmp_path / "l").symlink_to(root)
    with pytest.raises(InvalidInputError, match="symbolic link"):
        regular_files(tmp_path / "l")
    with pytest.raises(InvalidInputError, match="does not exist"):
        regular_files(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="contains no files"):
        regular_files(tmp_path / "empty")


def test_hash_file_matches_hashlib_in_one_pass(tmp_path: Path) -> None:
    data = weights(3 * (1 << 20) + 7)
    path = tmp_path / "f"
    path.write_bytes(data)
    found = hash_file(path, md5=True)
    assert found.sha256 == hashlib.sha256(data).hexdigest()
    assert found.md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert found.size == len(data)
    assert hash_file(path).md5 is None


def test_staged_output_appears_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "out"

    def interrupted() -> None:
        with staged_output(out) as staging:
            (staging / "half").write_bytes(b"x")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        interrupted()
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    with staged_output(out) as staging:
        (staging / "whole").write_bytes(b"x")
    assert (out / "whole").read_bytes() == b"x"
    with pytest.raises(InvalidInputError, match="not an empty directory"), staged_output(out):
        pass
    assert (out / "whole").exists()


def test_write_private_is_0600_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "d" / "secret.json"
    write_private(path, b"one")
    write_private(path, b"two")
    assert path.read_bytes() == b"two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret.json"]


def test_sweep_removes_staging_whose_writer_is_gone_and_keeps_a_live_ones(tmp_path: Path) -> None:
    import json

    from weightvault._fs import STAGING_MARKER, sweep_stale_staging

    out = tmp_path / "out"
    registry = tmp_path / "home" / "staging"
    with staged_output(out, registry) as data:
        (data / "plain").write_bytes(b"unverified")
        live = data.parent
        # A second staging whose marker names a process that is gone (pid 1, wrong start).
        dead = tmp_path / ".out.partial-dead"
        (dead / "data").mkdir(parents=True)
        (dead / "data" / "plain").write_bytes(b"unverified")
        marker = {"writer": {"pid": 1, "started": 1.0}, "staging": str(dead)}
        (dead / STAGING_MARKER).write_text(json.dumps(marker))
        write_private(registry / "dead.json", json.dumps(marker).encode())
        assert sweep_stale_staging(registry) == [dead]
        assert not dead.exists()
        assert live.exists()
        assert not (registry / "dead.json").exists()
    assert (out / "plain").read_bytes() == b"unverified"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "out"]
    assert list(registry.iterdir()) == []


def test_shown_path_escapes_what_would_break_a_line_or_mislead() -> None:
    from weightvault._fs import shown_path

    assert shown_path("a/b c.bin") == "a/b c.bin"
    assert shown_path(os.fsdecode(b"w\xff\n\x1b\xe2\x80\xae.bin")) == "w\\xff\\n\\x1b\\u202e.bin"
