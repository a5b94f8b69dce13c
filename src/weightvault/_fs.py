"""File helpers shared by the core: private atomic writes, hashing, one tree walker, staging.

The walker's one symlink policy: symbolic links are listed as such and never
followed. Callers decide what a link means to them (ingest refuses it, the
format scan reports it as a finding), but none reads through one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
import stat
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from weightvault.errors import (
    DiskFullError,
    InvalidInputError,
    OutputUnwritableError,
    SourceUnreadableError,
    UnsafeNameError,
    VaultError,
)
from weightvault.processes import ProcessRef, is_running

__all__ = [
    "FileDigest",
    "TreeEntry",
    "create_private_file",
    "hash_file",
    "local_write_error",
    "make_private_dir",
    "regular_files",
    "shown_path",
    "source_read_error",
    "staged_output",
    "sweep_stale_staging",
    "walk_tree",
    "write_private",
]

_BLOCK = 1 << 20
_FULL = (errno.ENOSPC, errno.EDQUOT)
# Bidi embeddings, overrides, isolates and marks: they make a listed name read
# differently from the bytes stored (CVE-2021-42574, "Trojan Source").
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKS = frozenset("\u0085\u2028\u2029")
STAGING_MARKER = ".weightvault-staging.json"
# A staging directory is marked right after it is created; one without a marker
# this old was left by a writer killed in between (or by a version without markers).
_UNMARKED_GRACE = 60.0


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` safe to print on one line: undecodable bytes, controls and bidi escaped."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() and ch not in _BIDI else ascii(ch)[1:-1] for ch in text)


def _unsafe_name(name: str) -> str | None:
    """Why ``name`` cannot be stored as a file name, or None."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    for ch in name:
        if unicodedata.category(ch) == "Cc" or ch in _LINE_BREAKS:
            return "holds a newline or control character"
        if ch in _BIDI:
            return "holds a bidirectional-text control character"
    return None


def source_read_error(exc: OSError, path: Path) -> VaultError:
    """The one-line error for a source file or directory that could not be read."""
    reason = exc.strerror or type(exc).__name__
    return SourceUnreadableError(f"cannot read {shown_path(path)}: {reason}")


def local_write_error(exc: OSError, path: Path) -> VaultError:
    """The one-line error for a local write under ``path`` that failed."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in _FULL:
        return DiskFullError(f"no space left on the file system of {shown_path(path)}")
    return OutputUnwritableError(f"cannot write {shown_path(path)}: {reason}")


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) if needed and make it 0700, tightening an existing one.

    A vault home made before, or by hand with the default umask, is 0755: every
    file in it would be reachable by other users.
    """
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if stat.S_IMODE(path.stat().st_mode) != 0o700:
            path.chmod(0o700)
    except OSError as exc:
        raise local_write_error(exc, path) from None


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if missing; make an existing one 0600.

    An existing file is never opened: closing any descriptor of a SQLite
    database drops every POSIX lock this process holds on it, under the feet
    of its open connections ("disk I/O error").
    """
    try:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                raise OSError(errno.ELOOP, "is a symbolic link", str(path)) from None
            if stat.S_IMODE(os.stat(path).st_mode) != 0o600:
                os.chmod(path, 0o600)
            return
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
    except OSError as exc:
        raise local_write_error(exc, path) from None


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename) with mode 0600."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
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
    except OSError as exc:
        if exc.errno in _FULL:
            raise DiskFullError(f"no space left on the file system of {shown_path(path)}") from None
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
    and never followed; sockets, devices and FIFOs have kind ``other``. A
    directory that cannot be listed is SourceUnreadableError, naming it: a
    walk never silently leaves part of a tree out.
    """
    found: list[TreeEntry] = []
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as entries:
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
        except OSError as exc:
            raise source_read_error(exc, directory) from None
    return sorted(found, key=lambda e: e.relpath)


def _check_readable(path: Path) -> None:
    """Open ``path`` and read its first byte: permissions and I/O errors show before a put."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            os.pread(fd, 1, 0)
        finally:
            os.close(fd)
    except OSError as exc:
        raise source_read_error(exc, path) from None


def regular_files(source: Path) -> list[tuple[str, Path]]:
    """(relative path, path) of ``source`` itself or of every file under it.

    InvalidInputError, naming the entry (escaped), for a symbolic link, a
    special file, a missing source or an empty directory; UnsafeNameError for
    a name that is not UTF-8 or holds newlines, control or bidi characters;
    SourceUnreadableError for a file or directory that cannot be read. Every
    file is opened and its first byte read here, so a put that would fail on
    one of them fails before anything is stored.
    """
    shown = shown_path(source)
    try:
        mode = source.lstat().st_mode
    except FileNotFoundError:
        raise InvalidInputError(f"{shown} does not exist or is not a file or directory") from None
    except OSError as exc:
        raise source_read_error(exc, source) from None
    if stat.S_ISLNK(mode):
        raise InvalidInputError(f"{shown} is a symbolic link; refusing to follow it")
    if stat.S_ISREG(mode):
        found = [(source.name, source)]
    elif stat.S_ISDIR(mode):
        found = []
        for entry in walk_tree(source):
            if entry.kind == "symlink":
                raise InvalidInputError(
                    f"{shown_path(entry.path)} is a symbolic link; refusing to follow it"
                )
            if entry.kind != "file":
                raise InvalidInputError(f"{shown_path(entry.path)} is not a regular file")
            found.append((entry.relpath, entry.path))
        if not found:
            raise InvalidInputError(f"{shown} contains no files")
    else:
        raise InvalidInputError(f"{shown} does not exist or is not a file or directory")
    for rel, path in found:
        _check_name(rel, path)
        _check_readable(path)
    return found


def _check_name(rel: str, path: Path) -> None:
    why = _unsafe_name(rel)
    if why is not None:
        raise UnsafeNameError(f"file name {shown_path(path)} {why}; rename it to store it")


def _staging_prefix(out: Path) -> str:
    return f".{out.name}.partial-"


def _writer_of(staging: Path) -> ProcessRef | None:
    """The process named by a staging directory's marker (None: no readable marker)."""
    try:
        raw = json.loads((staging / STAGING_MARKER).read_bytes())
    except (OSError, ValueError):
        return None
    return ProcessRef.from_dict(raw.get("writer") if isinstance(raw, dict) else None)


def _is_stale(staging: Path) -> bool:
    """Whether ``staging`` is our staging directory and its writer is gone."""
    try:
        st = staging.lstat()
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        return False
    writer = _writer_of(staging)
    if writer is None:
        return time.time() - st.st_mtime > _UNMARKED_GRACE
    return not is_running(writer)


def sweep_stale_staging(registry: Path | None, near: Path | None = None) -> list[Path]:
    """Remove staging directories (unverified plaintext) whose writer is gone.

    ``registry`` is the vault's list of staging directories (one 0600 entry
    each); ``near`` an output path whose siblings ``.<name>.partial-*`` are
    checked too. Returns the directories removed.
    """
    removed: list[Path] = []
    candidates: list[tuple[Path, Path | None]] = []
    if registry is not None and registry.is_dir():
        for entry in registry.glob("*.json"):
            try:
                raw = json.loads(entry.read_bytes())
                candidates.append((Path(raw["staging"]), entry))
            except (OSError, ValueError, KeyError, TypeError):
                with contextlib.suppress(OSError):
                    entry.unlink()
    if near is not None:
        near = near.absolute()
        with contextlib.suppress(OSError):
            candidates += [(p, None) for p in near.parent.glob(_staging_prefix(near) + "*")]
    for staging, listed in candidates:
        if staging.exists() or staging.is_symlink():
            if not _is_stale(staging):
                continue
            shutil.rmtree(staging, ignore_errors=True)
            if staging.exists():
                continue
            removed.append(staging)
        if listed is not None:
            with contextlib.suppress(OSError):
                listed.unlink()
    return removed


@contextlib.contextmanager
def staged_output(out: Path, registry: Path | None = None) -> Iterator[Path]:
    """A staging directory beside ``out`` that becomes ``out`` only if the block succeeds.

    ``out`` must not exist or be an empty directory (InvalidInputError). On any
    failure the staging directory is removed and ``out`` is left as it was.
    The block writes into ``data`` inside a 0700 staging directory that also
    holds a marker naming this process; with ``registry`` (a directory in the
    vault home) it is listed there too, so :func:`sweep_stale_staging` removes
    it if this process dies before the end. Stale staging of an earlier writer
    of ``out`` is removed first.
    """
    out = out.absolute()
    sweep_stale_staging(registry, out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInputError(f"output {shown_path(out)} exists and is not an empty directory")
    entry: Path | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(out), dir=out.parent))
    except OSError as exc:
        raise local_write_error(exc, out) from None
    data = staging / "data"
    try:
        marker = {"writer": ProcessRef.of(os.getpid()).to_dict(), "staging": str(staging)}
        body = json.dumps(marker).encode()
        if registry is not None:
            entry = registry / f"{secrets.token_hex(8)}.json"
            write_private(entry, body)
        write_private(staging / STAGING_MARKER, body)
        data.mkdir(mode=0o700)
        yield data
        if out.exists():
            out.rmdir()
        data.rename(out)
        shutil.rmtree(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if entry is not None:
            with contextlib.suppress(OSError):
                entry.unlink()
