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

Enough to rebuild (schema v2): the model repository's remote URL (credentials
stripped), the DVC stages that produced the outputs (command, deps and outs
with their md5s, a digest of their params, from ``dvc.lock``), the DVC remote
they were pushed to (from ``.dvc/config``, never ``config.local``), and the
training environment's own lock files found in the model repository
(``uv.lock``, ``poetry.lock``, ``requirements*.txt``, a conda environment, ...),
each hashed. ``environment`` describes that training environment (its primary
lock file and Python requirement); the ingesting process's own interpreter and
packages are recorded apart, as ``ingest_host``, because they are not how the
model was made. v1 documents (before these fields) still parse.

Directory digest: for a directory dataset, ``sha256`` is the sha256 of the
``sha256sum``-style listing of its files, ``"<sha256>  <relpath>\\n"`` per file
sorted by relpath (byte order), so a shell can check it with
``find . -type f | sed 's|^./||' | LC_ALL=C sort | xargs sha256sum | sha256sum``.
"""

from __future__ import annotations

import configparser
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from weightvault._fs import hash_file, walk_tree
from weightvault._json import canonical_json
from weightvault.errors import IntegrityError, InvalidInputError

__all__ = [
    "LOCK_FILE_NAMES",
    "MISSABLE_FIELDS",
    "SCHEMA",
    "DatasetDigest",
    "DvcStage",
    "FileDigest",
    "LockFile",
    "Provenance",
    "capture_provenance",
    "dataset_digests",
    "dvc_remote",
    "dvc_stages",
    "environment_fingerprint",
    "git_remote",
    "git_state",
    "git_toplevel",
    "installed_packages",
    "lock_files",
    "public_url",
]

SCHEMA = "weightvault.provenance/v2"
SCHEMAS = ("weightvault.provenance/v1", SCHEMA)
LOCK_FILE_NAMES: tuple[str, ...] = (
    "uv.lock",
    "poetry.lock",
    "pdm.lock",
    "Pipfile.lock",
    "conda-lock.yml",
    "environment.yml",
    "environment.yaml",
    "requirements.lock",
)
"""Training-environment lock files looked for in the model repository, primary first;
``requirements*.txt`` files come after them, sorted."""
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
class DvcStage:
    """One stage of ``dvc.lock``: how an output was made, as DVC recorded it."""

    name: str
    cmd: str
    deps: tuple[tuple[str, str], ...]
    outs: tuple[tuple[str, str], ...]
    #: sha256 of the RFC 8785 JSON of the stage's recorded params (None without params)
    params_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: name, cmd, deps and outs as ``{path, md5}`` lists, params_sha256."""
        return {
            "name": self.name,
            "cmd": self.cmd,
            "deps": [{"path": p, "md5": m} for p, m in self.deps],
            "outs": [{"path": p, "md5": m} for p, m in self.outs],
            "params_sha256": self.params_sha256,
        }

    @classmethod
    def from_dict(cls, data: Any) -> DvcStage:
        """Parse :meth:`to_dict` output; raise :class:`InvalidInputError` if malformed."""
        doc = _mapping(data, "dvc stage")

        def pairs(key: str) -> tuple[tuple[str, str], ...]:
            items = [_mapping(i, f"dvc stage {key}") for i in _list(doc.get(key), key)]
            return tuple(
                (_text(i.get("path"), "path"), _match(i.get("md5"), _MD5_RE, "md5")) for i in items
            )

        return cls(
            name=_text(doc.get("name"), "dvc stage name"),
            cmd=_text(doc.get("cmd"), "dvc stage cmd"),
            deps=pairs("deps"),
            outs=pairs("outs"),
            params_sha256=_optional(
                doc.get("params_sha256"), lambda v: _match(v, _HEX_RE, "params_sha256")
            ),
        )


@dataclass(frozen=True)
class LockFile:
    """One lock file of the training environment, by its path in the model repository."""

    path: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        """JSON-safe dict with keys path and sha256."""
        return {"path": self.path, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: Any) -> LockFile:
        """Parse :meth:`to_dict` output; raise :class:`InvalidInputError` if malformed."""
        doc = _mapping(data, "lock file")
        return cls(
            _text(doc.get("path"), "lock file path"), _match(doc.get("sha256"), _HEX_RE, "sha256")
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
    git_remote: str | None = None
    dvc_stages: tuple[DvcStage, ...] = ()
    dvc_remote: str | None = None
    lock_files: tuple[LockFile, ...] = ()
    ingest_host: Mapping[str, str] = field(default_factory=dict, hash=False)
    #: set for an adopted artifact (``lifecycle.adopt``): its provenance was recovered
    #: after the fact, not captured where it was made: what was found, where, what is missing
    backfilled: Mapping[str, Any] | None = field(default=None, hash=False)

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
            "git_remote": self.git_remote,
            "dvc_stages": [stage.to_dict() for stage in self.dvc_stages],
            "dvc_remote": self.dvc_remote,
            "lock_files": [lock.to_dict() for lock in self.lock_files],
            "ingest_host": dict(sorted(self.ingest_host.items())),
        } | ({} if self.backfilled is None else {"backfilled": dict(self.backfilled)})

    @classmethod
    def from_dict(cls, data: Any) -> Provenance:
        """Parse :meth:`to_dict` output; raise :class:`InvalidInputError` if malformed."""
        doc = _mapping(data, "provenance")
        if doc.get("schema") not in SCHEMAS:
            raise InvalidInputError(f"provenance schema is not one of {', '.join(SCHEMAS)}")
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
        host = _mapping(doc.get("ingest_host", {}), "ingest_host")
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
            git_remote=_optional(doc.get("git_remote"), lambda v: _text(v, "git_remote")),
            dvc_stages=tuple(
                DvcStage.from_dict(d) for d in _list(doc.get("dvc_stages", []), "dvc_stages")
            ),
            dvc_remote=_optional(doc.get("dvc_remote"), lambda v: _text(v, "dvc_remote")),
            lock_files=tuple(
                LockFile.from_dict(d) for d in _list(doc.get("lock_files", []), "lock_files")
            ),
            ingest_host={_text(k, "key"): _text(v, "ingest_host") for k, v in host.items()},
            backfilled=None
            if doc.get("backfilled") is None
            else _mapping(doc["backfilled"], "backfilled"),
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

    ``lock_file`` defaults to the first of :data:`LOCK_FILE_NAMES` (then
    ``requirements*.txt``) in ``repo``, never the vault's own; ``creator`` to ``$USER``, then
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

    locks = lock_files(repo)
    environment: dict[str, str] = {}
    try:
        primary = lock_file or (repo / locks[0].path if locks else None)
        if primary is None:
            names = ", ".join((*LOCK_FILE_NAMES, "requirements*.txt"))
            raise _MissingFieldError("lock_file", f"the model repository has none of {names}")
        environment |= _lock_fingerprint(primary)
    except _MissingFieldError as exc:
        gaps.append(exc)
    environment |= _python_requirement(repo)

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
        git_remote=git_remote(repo) if commit is not None else None,
        dvc_stages=dvc_stages(repo),
        dvc_remote=dvc_remote(repo),
        lock_files=locks,
        ingest_host=environment_fingerprint(None),
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


def git_toplevel(path: Path) -> Path | None:
    """The top of the git work tree ``path`` sits in, or None (no git, no work tree)."""
    try:
        found = _git(path, "rev-parse", "--show-toplevel")
    except _MissingFieldError:
        return None
    top = found.stdout.strip()
    return Path(top) if found.returncode == 0 and top else None


def git_remote(repo: Path) -> str | None:
    """The URL of the remote HEAD's branch tracks, else ``origin``, else the only remote.

    Credentials in the URL (``https://user:token@host/...``) are removed.
    """
    remote = None
    upstream = _git(repo, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}")
    if upstream.returncode == 0 and "/" in upstream.stdout:
        remote = upstream.stdout.strip().split("/", 1)[0]
    names = _git(repo, "remote")
    known = names.stdout.split() if names.returncode == 0 else []
    if remote not in known:
        remote = "origin" if "origin" in known else (known[0] if len(known) == 1 else None)
    if remote is None:
        return None
    url = _git(repo, "remote", "get-url", remote)
    return public_url(url.stdout.strip()) if url.returncode == 0 and url.stdout.strip() else None


def public_url(url: str) -> str:
    """``url`` without a password or token in its user part (scp-style git URLs are kept)."""
    parts = urlsplit(url)
    if not parts.scheme or parts.netloc == "" or "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def dvc_stages(repo: Path) -> tuple[DvcStage, ...]:
    """The stages ``dvc.lock`` records (command, deps and outs with md5s), sorted by name.

    Empty without a ``dvc.lock``; :class:`InvalidInputError` if it is malformed.
    """
    lock_path = repo / "dvc.lock"
    if not lock_path.is_file():
        return ()
    stages = _lock_stages(lock_path)
    out = []
    for name, stage in sorted(stages.items()):
        cmd = stage.get("cmd")
        if isinstance(cmd, list) and all(isinstance(c, str) for c in cmd):
            cmd = " && ".join(cmd)
        if not isinstance(cmd, str) or not cmd:
            raise InvalidInputError(f"{lock_path} stage {name} has no command")
        params = stage.get("params")
        digest = hashlib.sha256(canonical_json(params)).hexdigest() if params else None
        out.append(
            DvcStage(
                name=str(name),
                cmd=cmd,
                deps=_md5_pairs(stage.get("deps") or []),
                outs=_md5_pairs(stage.get("outs") or []),
                params_sha256=digest,
            )
        )
    return tuple(out)


def dvc_remote(repo: Path) -> str | None:
    """The URL of the DVC default remote from ``.dvc/config`` (credentials stripped).

    ``.dvc/config.local`` is never read: it is where credentials live.
    """
    config = configparser.ConfigParser(interpolation=None)
    try:
        config.read_string((repo / ".dvc" / "config").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, configparser.Error):
        return None
    name = config.get("core", "remote", fallback=None)
    if not name:
        return None
    for section in (f'remote "{name}"', f"'remote \"{name}\"'"):
        if config.has_option(section, "url"):
            return public_url(config.get(section, "url").strip())
    return None


def lock_files(repo: Path) -> tuple[LockFile, ...]:
    """Every training-environment lock file at the top of ``repo``, primary first, hashed."""
    found = [repo / name for name in LOCK_FILE_NAMES]
    found += sorted(repo.glob("requirements*.txt"))
    out = []
    for path in found:
        if path.is_file() and not path.is_symlink():
            out.append(LockFile(path.name, hash_file(path).sha256))
    return tuple(out)


def _python_requirement(repo: Path) -> dict[str, str]:
    """The training environment's Python requirement: ``.python-version``, else pyproject's."""
    pinned = repo / ".python-version"
    if pinned.is_file():
        lines = pinned.read_text(encoding="utf-8", errors="replace").split()
        value = _label(lines[0], "python version") if lines else None
        if value:
            return {"python_requires": value}
    try:
        project = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    requires = project.get("project", {}).get("requires-python")
    return {"python_requires": requires} if isinstance(requires, str) and requires else {}


def environment_fingerprint(lock_file: Path | None) -> dict[str, str]:
    """This process's Python, platform and installed-package-set hash (+ a lock file's hash).

    This describes the ingesting host (``Provenance.ingest_host``), not the
    training environment.

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


def _lock_stages(lock_path: Path) -> dict[str, Any]:
    """The ``stages`` mapping of ``dvc.lock``."""
    try:
        doc = yaml.safe_load(lock_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidInputError(f"{lock_path} is not readable YAML") from exc
    stages = doc.get("stages") if isinstance(doc, dict) else None
    if not isinstance(stages, dict):
        raise InvalidInputError(f"{lock_path} has no stages mapping")
    return stages


def _md5_pairs(items: Any) -> tuple[tuple[str, str], ...]:
    """(path, md5) of each dvc.lock deps/outs entry that has an md5."""
    if not isinstance(items, list):
        raise InvalidInputError("dvc.lock has malformed deps/outs")
    out = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            md5 = item.get("md5")
            if isinstance(md5, str) and _MD5_RE.fullmatch(md5):
                out.append((item["path"], md5))
    return tuple(out)


def _lock_entries(lock_path: Path) -> dict[str, str]:
    """Map each deps/outs path with an md5 in ``dvc.lock`` to that md5."""
    stages = _lock_stages(lock_path)
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
