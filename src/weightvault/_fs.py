"""File helpers shared by the core: private atomic writes, hashing, one tree walker, staging.

The walker's one symlink policy: symbolic links are listed as such and never
followed. Callers decide what a link means to them (ingest refuses it, the
format scan reports it as a finding), but none reads through one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from weightvault.errors import InvalidInputError

__all__ = [
    "FileDigest",
    "TreeEntry",
    "hash_file",
    "regular_files",
    "staged_output",
    "walk_tree",
    "write_private",
]

_BLOCK = 1 << 20


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename) with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@dataclass(frozen=True)
class FileDigest:
    """What one read of a file gives: its sha256, size and (when asked) DVC's md5."""

    sha256: str
    size: int
    md5: str | None = None


def hash_file(path: Path, *, md5: bool = False) -> FileDigest:
    """Hash a file in one streaming pass (1 MiB blocks)."""
    sha = hashlib.sha256()
    legacy = hashlib.md5(usedforsecurity=False) if md5 else None
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            sha.update(block)
            if legacy is not None:
                legacy.update(block)
            size += len(block)
    return FileDigest(sha.hexdigest(), size, legacy.hexdigest() if legacy is not None else None)


@dataclass(frozen=True)
class TreeEntry:
    """One non-directory entry of a tree."""

    relpath: str
    path: Path
    kind: Literal["file", "symlink", "other"]


def walk_tree(root: Path) -> list[TreeEntry]:
    """Every non-directory entry under ``root``, sorted by POSIX relative path.

    Symbolic links (to files or directories) are listed with kind ``symlink``
    and never followed; sockets, devices and FIFOs have kind ``other``.
    """
    found: list[TreeEntry] = []
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                path = Path(entry.path)
                rel = path.relative_to(root).as_posix()
                if entry.is_symlink():
                    found.append(TreeEntry(rel, path, "symlink"))
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                elif entry.is_file(follow_symlinks=False):
                    found.append(TreeEntry(rel, path, "file"))
                else:
                    found.append(TreeEntry(rel, path, "other"))
    return sorted(found, key=lambda e: e.relpath)


def regular_files(source: Path) -> list[tuple[str, Path]]:
    """(relative path, path) of ``source`` itself or of every file under it.

    InvalidInputError, naming the entry, for a symbolic link, a special file,
    a missing source or an empty directory.
    """
    try:
        mode = source.lstat().st_mode
    except FileNotFoundError:
        raise InvalidInputError(f"{source} does not exist or is not a file or directory") from None
    if stat.S_ISLNK(mode):
        raise InvalidInputError(f"{source} is a symbolic link; refusing to follow it")
    if stat.S_ISREG(mode):
        return [(source.name, source)]
    if not stat.S_ISDIR(mode):
        raise InvalidInputError(f"{source} does not exist or is not a file or directory")
    found = []
    for entry in walk_tree(source):
        if entry.kind == "symlink":
            raise InvalidInputError(f"{entry.path} is a symbolic link; refusing to follow it")
        if entry.kind != "file":
            raise InvalidInputError(f"{entry.path} is not a regular file")
        found.append((entry.relpath, entry.path))
    if not found:
        raise InvalidInputError(f"{source} contains no files")
    return found


@contextlib.contextmanager
def staged_output(out: Path) -> Iterator[Path]:
    """A staging directory beside ``out`` that becomes ``out`` only if the block succeeds.

    ``out`` must not exist or be an empty directory (InvalidInputError). On any
    failure the staging directory is removed and ``out`` is left as it was.
    """
    out = out.absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInputError(f"output {out} exists and is not an empty directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield staging
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
