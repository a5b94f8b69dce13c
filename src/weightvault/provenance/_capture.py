"""Provenance capture: how a model artifact was made, recorded so it can be rebuilt.

A :class:`Provenance` records the git commit of the model repository and
whether its tree was dirty, the datasets the DVC pipeline used (DVC's md5 from
``dvc.lock`` cross-walked to a sha256 the vault computes itself, because md5
alone proves nothing), the training run id, an environment fingerprint, the
creator, the run's timestamps and, for fine-tunes, the parent artifact.

Every field is either present or named in ``missing``. By default a missing
field is an error; ``allow_incomplete=True`` records it instead. A dataset
whose bytes do not match the md5 in ``dvc.lock`` is never recorded: the
workspace changed since DVC hashed it, so the cross-walk would be a lie.

Directory digest: for a directory dataset, ``sha256`` is the sha256 of the
``sha256sum``-style listing of its files, ``"<sha256>  <relpath>\\n"`` per file
sorted by relpath (byte order), so a shell can check it with
``find . -type f | sed 's|^./||' | LC_ALL=C sort | xargs sha256sum | sha256sum``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from weightvault._fs import hash_file, walk_tree
from weightvault.errors import IntegrityError, InvalidInputError

__all__ = [
    "MISSABLE_FIELDS",
    "SCHEMA",
    "DatasetDigest",
    "FileDigest",
    "Provenance",
    "capture_provenance",
    "dataset_digests",
    "environment_fingerprint",
    "git_state",
    "installed_packages",
]

SCHEMA = "weightvault.provenance/v1"
DEFAULT_DATASET_DIRS: tuple[str, ...] = ("data",)
MISSABLE_FIELDS = ("git_commit", "git_dirty", "datasets", "run_id", "lock_file", "creator")
"""Fields that can be missing; ``lock_file`` stands for the environment's lock-file hash."""

_CHUNK = 1 << 20
_SHA_RE = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
_HEX_RE = re.compile(r"[0-9a-f]{64}")
_MD5_RE = re.compile(r"[0-9a-f]{32}(\.dir)?")
_GIT_TIMEOUT = 60.0
_GIT_LOCATION_VARS = frozenset(
    {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR"}
)
"""Inherited variables that would point git at another repository than ``repo``."""


class _MissingFieldError(InvalidInputError):
    """A provenance field cannot be obtained; ``capture_provenance`` may record it."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"provenance field {name} is missing: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class FileDigest:
    """One file of a directory dataset."""

    relpath: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DatasetDigest:
    """One crosswalk row: a DVC-tracked dataset's md5 and the vault's sha256."""

    path: str
    dvc_md5: str
    sha256: str
    size: int
    files: tuple[FileDigest, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with keys path, dvc_md5, sha256, size, files."""
        return {
            "path": self.path,
            "dvc_md5": self.dvc_md5,
            "sha256": self.sha256,
            "size": self.size,
            "files": [
                {"relpath": f.relpath, "sha256": f.sha256, "size": f.size} for f in self.files
            ],
        }

    @classmethod
    def from_dict(cls, data: Any) -> DatasetDigest:
        """Parse :meth:`to_dict` output; raise :class:`InvalidInputError` if malformed."""
        doc = _mapping(data, "dataset")
        files = [_mapping(item, "dataset file") for item in _list(doc.get("files"), "files")]
        return cls(
            path=_text(doc.get("path"), "dataset path"),
            dvc_md5=_match(doc.get("dvc_md5"), _MD5_RE, "dvc_md5"),
            sha256=_match(doc.get("sha256"), _HEX_RE, "sha256"),
            size=_count(doc.get("size"), "size"),
            files=tuple(
                FileDigest(
                    relpath=_text(f.get("relpath"), "relpath"),
                    sha256=_match(f.get("sha256"), _HEX_RE, "sha256"),
                    size=_count(f.get("size"), "size"),
                )
                for f in files
            ),
        )


@dataclass(frozen=True)
class Provenance:
    """How an artifact was made. ``None`` fields (except ``parent``) are in ``missing``."""

    git_commit: str | None
    git_dirty: bool | None
    datasets: tuple[DatasetDigest, ...] | None
    run_id: str | None
    environment: Mapping[str, str] = field(hash=False)
    creator: str | None
    started_at: datetime
    finished_at: datetime
    parent: str | None = None
    missing: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """True when no field is missing."""
        return not self.missing

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with stable key names; timestamps are ISO 8601 UTC strings."""
        return {
            "schema": SCHEMA,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "datasets": None if self.datasets is None else [d.to_dict() for d in self.datasets],
            "run_id": self.run_id,
            "environment": dict(sorted(self.environment.items())),
            "creator": self.creator,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "parent": self.parent,
            "missing": list(self.missing),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Provenance:
        """Parse :meth:`to_dict` output; raise :class:`InvalidInputError` if malformed."""
        doc = _mapping(data, "provenance")
        if doc.get("schema") != SCHEMA:
            raise InvalidInputError(f"provenance schema is not {SCHEMA}")
        unknown = set(doc) - {"schema", *cls.__dataclass_fields__}
        if unknown:
            raise InvalidInputError(f"provenance has unknown keys {sorted(unknown)}")
        missing = tuple(_text(m, "missing") for m in _list(doc.get("missing"), "missing"))
        if not set(missing) <= set(MISSABLE_FIELDS):
            raise InvalidInputError(f"provenance names unknown missing fields {missing}")
        env = _mapping(doc.get("environment"), "environment")
        dirty = doc.get("git_dirty")
        if dirty is not None and not isinstance(dirty, bool):
            raise InvalidInputError("provenance git_dirty is not a boolean")
        datasets = doc.get("datasets")
        prov = cls(
            git_commit=_optional(doc.get("git_commit"), lambda v: _match(v, _SHA_RE, "commit")),
            git_dirty=dirty,
            datasets=None
            if datasets is None
            else tuple(DatasetDigest.from_dict(d) for d in _list(datasets, "datasets")),
            run_id=_optional(doc.get("run_id"), lambda v: _text(v, "run_id")),
            environment={_text(k, "key"): _text(v, "environment") for k, v in env.items()},
            creator=_optional(doc.get("creator"), lambda v: _text(v, "creator")),
            started_at=_parse_time(doc.get("started_at"), "started_at"),
            finished_at=_parse_time(doc.get("finished_at"), "finished_at"),
            parent=_optional(doc.get("parent"), lambda v: _text(v, "parent")),
            missing=missing,
        )
        absent = {
            name for name in MISSABLE_FIELDS if name != "lock_file" and getattr(prov, name) is None
        }
        if "lock_file_sha256" not in prov.environment:
            absent.add("lock_file")
        if absent != set(missing):
            raise InvalidInputError("provenance missing list does not match its empty fields")
        return prov


def capture_provenance(
    repo: Path,
    *,
    run_id: str | None,
    creator: str | None,
    lock_file: Path | None,
    parent: str | None,
    allow_incomplete: bool,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    dataset_dirs: Sequence[str] = DEFAULT_DATASET_DIRS,
    clock: Callable[[], datetime] | None = None,
) -> Provenance:
    """Capture the provenance of an artifact built from the model repository ``repo``.

    ``lock_file`` defaults to ``repo/uv.lock``; ``creator`` to ``$USER``, then
    ``git config user.email``. ``started_at``/``finished_at`` are the training
    run's times (timezone-aware); they default to the start and end of this
    capture. Datasets are the ``dvc.lock`` entries under ``dataset_dirs``.

    Raises :class:`InvalidInputError` naming every missing field unless
    ``allow_incomplete``; :class:`IntegrityError` if a dataset's bytes do not
    match its md5 in ``dvc.lock``.
    """
    now = clock or _utc_now
    start = _as_utc(started_at, "started_at") if started_at is not None else now()
    gaps: list[_MissingFieldError] = []

    commit: str | None = None
    dirty: bool | None = None
    try:
        commit, dirty = git_state(repo)
    except _MissingFieldError as exc:
        gaps += [exc, _MissingFieldError("git_dirty", exc.reason)]

    datasets: tuple[DatasetDigest, ...] | None = None
    try:
        datasets = dataset_digests(repo, dataset_dirs=dataset_dirs)
    except _MissingFieldError as exc:
        gaps.append(exc)

    run = _label(run_id, "run_id")
    if run is None:
        gaps.append(_MissingFieldError("run_id", "no training run id was given"))

    environment = environment_fingerprint(None)
    try:
        environment |= _lock_fingerprint(lock_file or repo / "uv.lock")
    except _MissingFieldError as exc:
        gaps.append(exc)

    who = _label(creator, "creator") or _label(os.environ.get("USER"), "USER")
    who = who or _git_config_email(repo)
    if who is None:
        gaps.append(_MissingFieldError("creator", "none given, $USER unset, no git user.email"))

    if gaps and not allow_incomplete:
        detail = "; ".join(f"{gap.name} ({gap.reason})" for gap in gaps)
        raise InvalidInputError(f"provenance is incomplete, missing: {detail}") from None
    end = _as_utc(finished_at, "finished_at") if finished_at is not None else now()
    if end < start:
        raise InvalidInputError("provenance finished_at is before started_at")
    return Provenance(
        git_commit=commit,
        git_dirty=dirty,
        datasets=datasets,
        run_id=run,
        environment=environment,
        creator=who,
        started_at=start,
        finished_at=end,
        parent=_label(parent, "parent"),
        missing=tuple(sorted({gap.name for gap in gaps}, key=MISSABLE_FIELDS.index)),
    )


def git_state(repo: Path) -> tuple[str, bool]:
    """Return ``(HEAD commit SHA, dirty)``; untracked (not ignored) files count as dirty.

    Raises :class:`InvalidInputError` if git is absent, ``repo`` is not a work
    tree, or it has no commit.
    """
    inside = _git(repo, "rev-parse", "--is-inside-work-tree")
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        said = (inside.stderr.strip().splitlines() or ["not a work tree"])[0]
        raise _MissingFieldError("git_commit", f"git in {repo} said {said!r}")
    head = _git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    sha = head.stdout.strip()
    if head.returncode != 0 or not _SHA_RE.fullmatch(sha):
        raise _MissingFieldError("git_commit", f"the git repository {repo} has no commit")
    status = _git(
        repo, "status", "--porcelain=v1", "--untracked-files=all", "--ignore-submodules=none", "-z"
    )
    if status.returncode != 0:
        raise _MissingFieldError("git_commit", f"git status failed in {repo}")
    return sha, bool(status.stdout)


def dataset_digests(
    repo: Path, *, dataset_dirs: Sequence[str] = DEFAULT_DATASET_DIRS
) -> tuple[DatasetDigest, ...]:
    """Cross-walk every dataset in ``repo/dvc.lock`` (entries under ``dataset_dirs``).

    Each file is read once for both md5 and sha256, and the md5 is checked
    against ``dvc.lock`` (for a directory, DVC's ``.dir`` md5 is recomputed).
    Raises :class:`InvalidInputError` if there is no dataset to record or
    ``dvc.lock`` is malformed, :class:`IntegrityError` on an md5 mismatch.
    """
    lock_path = repo / "dvc.lock"
    if not lock_path.is_file():
        raise _MissingFieldError("datasets", f"no dvc.lock in {repo}")
    prefixes = [PurePosixPath(d).parts for d in dataset_dirs]
    selected = {
        path: md5
        for path, md5 in _lock_entries(lock_path).items()
        if any(PurePosixPath(path).parts[: len(p)] == p for p in prefixes)
    }
    if not selected:
        wanted = ", ".join(dataset_dirs)
        raise _MissingFieldError("datasets", f"dvc.lock lists no dataset under {wanted}")
    root = repo.resolve()
    return tuple(_crosswalk(root, path, md5) for path, md5 in sorted(selected.items()))


def environment_fingerprint(lock_file: Path | None) -> dict[str, str]:
    """Python version and implementation, platform, installed-package-set hash, lock hash.

    ``lock_file_sha256`` is present only when ``lock_file`` is given. Raises
    :class:`InvalidInputError` if the given lock file cannot be read.
    """
    packages = installed_packages()
    env = {
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages_count": str(len(packages)),
        "packages_sha256": hashlib.sha256("\n".join(packages).encode()).hexdigest(),
    }
    if lock_file is not None:
        env |= _lock_fingerprint(lock_file)
    return env


def installed_packages() -> list[str]:
    """Sorted, de-duplicated ``name==version`` lines of the installed distributions."""
    lines = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            lines.add(f"{re.sub(r'[-_.]+', '-', name).lower()}=={dist.version}")
    return sorted(lines)


def _lock_fingerprint(lock_file: Path) -> dict[str, str]:
    """``lock_file`` (its name) and ``lock_file_sha256`` of a dependency lock file."""
    try:
        digest = hash_file(lock_file).sha256
    except OSError as exc:
        raise _MissingFieldError("lock_file", f"cannot read {lock_file}") from exc
    return {"lock_file": lock_file.name, "lock_file_sha256": digest}


def _lock_entries(lock_path: Path) -> dict[str, str]:
    """Map each deps/outs path with an md5 in ``dvc.lock`` to that md5."""
    try:
        doc = yaml.safe_load(lock_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidInputError(f"{lock_path} is not readable YAML") from exc
    stages = doc.get("stages") if isinstance(doc, dict) else None
    if not isinstance(stages, dict):
        raise InvalidInputError(f"{lock_path} has no stages mapping")
    entries: dict[str, str] = {}
    for stage_name, stage in stages.items():
        if not isinstance(stage, dict):
            raise InvalidInputError(f"{lock_path} stage {stage_name} is not a mapping")
        items = [stage.get("deps") or [], stage.get("outs") or []]
        if not all(isinstance(group, list) for group in items):
            raise InvalidInputError(f"{lock_path} stage {stage_name} has malformed deps/outs")
        for item in items[0] + items[1]:
            if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                raise InvalidInputError(f"{lock_path} stage {stage_name} has a malformed entry")
            md5, path = item.get("md5"), item["path"]
            if md5 is None:
                continue
            if not isinstance(md5, str) or not _MD5_RE.fullmatch(md5):
                raise InvalidInputError(f"{lock_path} has a malformed md5 for {path}")
            if item.get("hash") != "md5":
                raise InvalidInputError(f"{lock_path} entry {path} uses DVC 2 md5; run dvc commit")
            if entries.setdefault(path, md5) != md5:
                raise IntegrityError(f"{lock_path} records two md5s for {path}; run dvc repro")
    return entries


def _crosswalk(root: Path, path: str, dvc_md5: str) -> DatasetDigest:
    """Hash one dvc.lock dataset entry and check it against DVC's md5."""
    rel = PurePosixPath(path)
    target = (root / rel).resolve()
    if rel.is_absolute() or ".." in rel.parts or not target.is_relative_to(root):
        raise InvalidInputError(f"dvc.lock path {path} is outside the repository")
    if not target.exists():
        raise _MissingFieldError("datasets", f"{path} from dvc.lock is not in the workspace")
    if not dvc_md5.endswith(".dir"):
        found = hash_file(target, md5=True)
        if found.md5 != dvc_md5:
            raise IntegrityError(f"{path} does not match its md5 in dvc.lock")
        return DatasetDigest(path=path, dvc_md5=dvc_md5, sha256=found.sha256, size=found.size)
    files, listing = [], []
    for relpath, file_path in _dataset_files(target):
        found = hash_file(file_path, md5=True)
        files.append(FileDigest(relpath=relpath, sha256=found.sha256, size=found.size))
        listing.append({"md5": found.md5, "relpath": relpath})
    dir_md5 = hashlib.md5(json.dumps(listing, sort_keys=True).encode(), usedforsecurity=False)
    if dir_md5.hexdigest() + ".dir" != dvc_md5:
        raise IntegrityError(f"{path} does not match its md5 in dvc.lock")
    lines = "".join(f"{f.sha256}  {f.relpath}\n" for f in files)
    digest = hashlib.sha256(lines.encode()).hexdigest()
    size = sum(f.size for f in files)
    return DatasetDigest(path=path, dvc_md5=dvc_md5, sha256=digest, size=size, files=tuple(files))


def _dataset_files(directory: Path) -> list[tuple[str, Path]]:
    """Every file of a DVC dataset directory; a link or special file is refused."""
    found = []
    for entry in walk_tree(directory):
        if entry.kind != "file":
            raise InvalidInputError(
                f"dataset entry {entry.relpath!r} is a {entry.kind}, not a regular file"
            )
        if "\n" in entry.relpath or "\\" in entry.relpath:
            raise InvalidInputError(f"dataset file name {entry.relpath!r} cannot be listed")
        found.append((entry.relpath, entry.path))
    return found


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run git read-only in ``repo``, without optional locks or fsmonitor hooks."""
    git = shutil.which("git")
    if git is None:
        raise _MissingFieldError("git_commit", "the git executable is not on PATH")
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
    env |= {"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
    argv = [git, "--no-optional-locks", "-c", "core.fsmonitor=false", "-C", str(repo), *args]
    try:
        return subprocess.run(  # noqa: S603 - fixed argv, no shell
            argv, capture_output=True, text=True, check=False, env=env, timeout=_GIT_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _MissingFieldError("git_commit", f"git failed in {repo}") from exc


def _git_config_email(repo: Path) -> str | None:
    """``git config user.email`` as seen from ``repo``, or None."""
    try:
        result = _git(repo, "config", "--get", "user.email")
    except _MissingFieldError:
        return None
    return _label(result.stdout, "user.email") if result.returncode == 0 else None


def _label(value: str | None, name: str) -> str | None:
    """Strip a one-line label; empty is None; control characters are refused."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > 256 or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidInputError(f"{name} must be one printable line of at most 256 characters")
    return value


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInputError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_time(value: Any, name: str) -> datetime:
    try:
        return _as_utc(datetime.fromisoformat(_text(value, name)), name)
    except ValueError as exc:
        raise InvalidInputError(f"provenance {name} is not an ISO 8601 timestamp") from exc


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInputError(f"provenance {name} is not a mapping")
    return value


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInputError(f"provenance {name} is not a list")
    return value


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"provenance {name} is not a non-empty string")
    return value


def _match(value: Any, pattern: re.Pattern[str], name: str) -> str:
    text = _text(value, name)
    if not pattern.fullmatch(text):
        raise InvalidInputError(f"provenance {name} is malformed")
    return text


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"provenance {name} is not a non-negative integer")
    return value


def _optional(value: Any, parse: Callable[[Any], str]) -> str | None:
    return None if value is None else parse(value)
