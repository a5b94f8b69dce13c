"""The rebuild kit: what an artifact keeps, encrypted beside its files, to be rebuilt.

At ingest from a model repository (``docs/disaster-recovery.md``) three kinds
of file join the artifact's manifest with the role ``rebuild-kit``, encrypted
under the artifact's DEK and bound to their path like every file:

- ``.weightvault/rebuild-kit/source.bundle``: ``git bundle create`` of the
  recorded commit (HEAD), so a rebuild does not need the git host;
- ``.weightvault/rebuild-kit/lock/<path>``: the bytes of each lock file the
  provenance records (its sha256 is in the signed statement already);
- ``.weightvault/rebuild-kit/kit.json``: what the kit is (commit, remote,
  where in the repository the artifact's files were, the lock files).

They are not content: the content digest covers the model files only, ``get``
writes only those, ``verify``, promotion, rekey and export carry every file.
The signed statement names the kit's digests (its manifest file list).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from weightvault._fs import hash_file
from weightvault._json import canonical_json, parse_canonical
from weightvault.errors import InvalidInputError, RebuildKitError
from weightvault.provenance import Provenance
from weightvault.records import check_relpath

__all__ = [
    "BUNDLE_PATH",
    "KIT_DOC_PATH",
    "KIT_PREFIX",
    "KIT_TYPE",
    "KitDocument",
    "build_kit",
    "check_no_kit_paths",
    "kit_summary",
    "lock_path",
]

KIT_TYPE = "weightvault.rebuild-kit/v1"
KIT_PREFIX = ".weightvault/rebuild-kit/"
KIT_DOC_PATH = KIT_PREFIX + "kit.json"
BUNDLE_PATH = KIT_PREFIX + "source.bundle"
_GIT_TIMEOUT = 600.0


def lock_path(path: str) -> str:
    """Where the kit keeps the bytes of the model repository's lock file ``path``."""
    return KIT_PREFIX + "lock/" + check_relpath(path)


@dataclass(frozen=True)
class KitDocument:
    """``kit.json``: what the kit holds and where the artifact came from in the repository."""

    git_commit: str
    git_remote: str | None
    #: the artifact's source inside the model repository (POSIX, "" for the root);
    #: None when the files were not inside it
    artifact_path: str | None
    #: True when the artifact was a single file (``artifact_path`` names the file)
    single_file: bool
    lock_files: tuple[tuple[str, str], ...]

    def to_bytes(self) -> bytes:
        """Canonical JSON."""
        return canonical_json(
            {
                "type": KIT_TYPE,
                "git_commit": self.git_commit,
                "git_remote": self.git_remote,
                "artifact_path": self.artifact_path,
                "single_file": self.single_file,
                "bundle": BUNDLE_PATH,
                "lock_files": [{"path": p, "sha256": s} for p, s in self.lock_files],
            }
        )

    @classmethod
    def parse(cls, data: bytes) -> KitDocument:
        """Parse ``kit.json``; RebuildKitError when it is not one."""
        raw = parse_canonical(data, "rebuild kit")
        try:
            if raw["type"] != KIT_TYPE:
                raise RebuildKitError("the rebuild kit has an unknown type")
            locks = tuple((str(i["path"]), str(i["sha256"])) for i in raw["lock_files"])
            path = raw["artifact_path"]
            return cls(
                git_commit=str(raw["git_commit"]),
                git_remote=None if raw["git_remote"] is None else str(raw["git_remote"]),
                artifact_path=None if path is None else str(path),
                single_file=bool(raw["single_file"]),
                lock_files=locks,
            )
        except (KeyError, TypeError, AttributeError):
            raise RebuildKitError("the rebuild kit document is malformed") from None


def _artifact_path(repo: Path, root: Path) -> str | None:
    try:
        rel = root.resolve().relative_to(repo.resolve())
    except ValueError:
        return None
    return rel.as_posix() if rel.parts else ""


def _bundle(repo: Path, commit: str, target: Path) -> None:
    """``git bundle create`` of HEAD, which must be the recorded commit, into ``target``."""
    git = shutil.which("git")
    if git is None:
        raise RebuildKitError("git is not installed: no source bundle can be made")
    head = subprocess.run(  # noqa: S603 - fixed tool, argument list
        [git, "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=False
    )
    if head.returncode != 0 or head.stdout.strip() != commit:
        raise RebuildKitError(f"{repo}: HEAD is no longer the recorded commit {commit[:12]}")
    with target.open("wb") as out:
        # Streamed to a private file: memory does not grow with the repository.
        proc = subprocess.run(  # noqa: S603 - fixed tool, argument list
            [git, "bundle", "create", "-q", "-", "HEAD"],
            cwd=repo,
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
            timeout=_GIT_TIMEOUT,
        )
    if proc.returncode != 0:
        last = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RebuildKitError(f"git bundle failed in {repo}: {last[0]}")


def build_kit(
    repo: Path, provenance: Provenance, artifact_root: Path, single_file: bool
) -> tuple[Path, list[tuple[str, Path]]]:
    """Write the kit's files into a new private directory.

    Returns the directory (the caller removes it) and ``(manifest path, file)``
    pairs. RebuildKitError when the repository cannot give one (no commit
    recorded, HEAD moved, a lock file that changed since it was recorded).
    """
    if provenance.git_commit is None:
        raise RebuildKitError("the provenance records no git commit: no rebuild kit")
    work = Path(tempfile.mkdtemp(prefix="weightvault-kit-"))
    try:
        files: list[tuple[str, Path]] = []
        bundle = work / "source.bundle"
        _bundle(repo, provenance.git_commit, bundle)
        files.append((BUNDLE_PATH, bundle))
        for i, lock in enumerate(provenance.lock_files):
            source = repo / check_relpath(lock.path)
            copy = work / f"lock-{i}"
            shutil.copyfile(source, copy)
            if hash_file(copy).sha256 != lock.sha256:
                raise RebuildKitError(f"{lock.path} changed since its sha256 was recorded")
            files.append((lock_path(lock.path), copy))
        doc = KitDocument(
            git_commit=provenance.git_commit,
            git_remote=provenance.git_remote,
            artifact_path=_artifact_path(repo, artifact_root),
            single_file=single_file,
            lock_files=tuple((lock.path, lock.sha256) for lock in provenance.lock_files),
        )
        (work / "kit.json").write_bytes(doc.to_bytes())
        files.append((KIT_DOC_PATH, work / "kit.json"))
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise RebuildKitError(f"cannot write the rebuild kit ({type(exc).__name__})") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return work, files


def check_no_kit_paths(paths: Sequence[str]) -> None:
    """Refuse an artifact whose own files would collide with the kit's paths."""
    clash = [p for p in paths if PurePosixPath(p).parts[:1] == (".weightvault",)]
    if clash:
        raise InvalidInputError(f"{clash[0]}: .weightvault/ is reserved for the rebuild kit")


def kit_summary(doc: KitDocument) -> dict[str, Any]:
    """The kit as ``show`` and the recover report name it (no secrets)."""
    return {
        "git_commit": doc.git_commit,
        "git_remote": doc.git_remote,
        "artifact_path": doc.artifact_path,
        "lock_files": [p for p, _ in doc.lock_files],
    }
