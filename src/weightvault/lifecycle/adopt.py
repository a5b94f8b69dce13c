"""Adoption: take stock of model artifacts that already exist, then bring them in.

``weightvault adopt SOURCE`` and the ``adopt`` flow run the same named steps:

1. :func:`open_source` makes the source readable as local files: a directory
   tree as it is; a Hugging Face cache (``models--org--name/snapshots/<rev>/``,
   whose files are links into ``blobs/``) and an S3 prefix (read through the
   vault's S3 client, the minio SDK, on any endpoint) are staged into a private
   directory of the vault home first;
2. :func:`inventory` recognises the candidate artifacts and, for each, its
   files, sizes and formats *by content* (``gates.scan_file``: a pickle is
   walked, never loaded), its content digest, the provenance that can be
   recovered (git remote and commit when it sits in a work tree, the HF repo
   id and revision, the MLflow run), what is missing, what the gates would
   say (the ingest screen, and the promotion policy for warm), and whether
   the vault already holds that content (the signed log says so, not the
   catalog alone). Nothing is stored: this is the dry run;
3. :func:`adopt_candidate` ingests one candidate through the ordinary put
   (``lifecycle.ingest``): encrypted, scanned (unsafe content is committed
   straight into quarantine, never loaded), signed and recorded in the log,
   with provenance marked **backfilled**: what was recovered, from where, and
   what is missing. The policy (rule ``backfilled``) lets such an artifact
   reach warm only with signed approvals (``approve ID --to warm``) and cold
   only once re-attested by a reproducibility certificate;
4. :func:`adopt` runs them in a row.

Resumable and idempotent: each candidate's content digest is known before
anything is uploaded, and content the vault already holds is recognised and
skipped, so a run killed midway continues where it stopped, and a second run
stores nothing twice.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml

from weightvault._fs import hash_file, make_private_dir, shown_path, walk_tree
from weightvault.artifacts import Vault
from weightvault.errors import (
    AdoptSourceError,
    IntegrityError,
    VaultError,
)
from weightvault.gates import evaluate, loader_hazard, scan_file
from weightvault.lifecycle import ingest
from weightvault.lifecycle.check import policy_input
from weightvault.provenance import Provenance, capture_provenance, git_toplevel
from weightvault.records import digest_of
from weightvault.store import ObjectStore

__all__ = [
    "ADOPTED_LABEL",
    "SOURCE_KINDS",
    "AdoptReport",
    "Adopted",
    "Candidate",
    "CandidateFile",
    "Inventory",
    "Source",
    "adopt",
    "adopt_candidate",
    "inventory",
    "open_source",
]

SourceKind = Literal["dir", "hf", "mlflow", "s3"]
SOURCE_KINDS: tuple[SourceKind, ...] = ("dir", "hf", "mlflow", "s3")
#: the label every adopted artifact carries: the kind of source it came from
ADOPTED_LABEL = "adopted-from"

#: formats whose presence makes a directory a model artifact
_MODEL_FORMATS = frozenset(
    {"safetensors", "pickle", "torch-zip", "joblib", "dill", "npy", "npy-pickle", "gguf", "onnx"}
)
#: directories never part of an artifact (version control, caches)
_SKIPPED_DIRS = frozenset({".git", ".dvc", ".hg", ".svn", "__pycache__", ".cache"})
_HF_REPO = re.compile(r"models--[A-Za-z0-9][A-Za-z0-9._-]*")
_HF_REVISION = re.compile(r"[0-9a-f]{40}")
_MLFLOW_RUN = re.compile(r"[0-9a-f]{32}")
_STAGING = "adopt-staging"


# -- the source ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """An opened source: local files under ``root`` and where they came from."""

    kind: SourceKind
    #: what the user named (a path or ``s3://bucket/prefix``), as shown in reports
    location: str
    root: Path
    #: for an S3 source: endpoint, bucket, prefix and the ETag of each staged object
    s3: dict[str, Any] = field(default_factory=dict)


def _detect_kind(path: Path) -> SourceKind:
    """A Hugging Face cache, an MLflow root or a plain directory tree, by its layout."""
    if _HF_REPO.fullmatch(path.name) or any(
        _HF_REPO.fullmatch(p.name) and (p / "snapshots").is_dir() for p in _children(path)
    ):
        return "hf"
    if _mlflow_runs(path):
        return "mlflow"
    return "dir"


def _children(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []


@contextlib.contextmanager
def open_source(
    vault: Vault,
    location: str,
    kind: SourceKind | Literal["auto"] = "auto",
    *,
    s3_client: ObjectStore | None = None,
) -> Iterator[Source]:
    """Open ``location`` for :func:`inventory`; staged copies are removed on exit.

    ``s3://BUCKET/PREFIX`` is read with ``s3_client`` (default: the vault's own
    store client, for a bucket of the same endpoint). AdoptSourceError if the
    location is not a source of the kind asked for.
    """
    if location.startswith("s3://") or kind == "s3":
        with _staged_s3(vault, location, s3_client or vault.store) as source:
            yield source
        return
    path = Path(location).expanduser()
    if not path.is_dir() or path.is_symlink():
        raise AdoptSourceError(f"adopt: {shown_path(path)} is not a directory")
    found = _detect_kind(path) if kind == "auto" else kind
    if found == "hf" and not (
        _HF_REPO.fullmatch(path.name) or any(_HF_REPO.fullmatch(p.name) for p in _children(path))
    ):
        raise AdoptSourceError(
            f"adopt: {shown_path(path)} is not a Hugging Face cache (no models--ORG--NAME)"
        )
    if found == "mlflow" and not _mlflow_runs(path):
        raise AdoptSourceError(
            f"adopt: {shown_path(path)} is not an MLflow artifact root "
            "(no EXPERIMENT/RUN/artifacts)"
        )
    yield Source(found, str(path), path.resolve())


def _staging_dir(vault: Vault) -> Path:
    parent = vault.settings.home / _STAGING
    make_private_dir(parent)
    path = parent / secrets.token_hex(8)
    path.mkdir(mode=0o700)
    return path


@contextlib.contextmanager
def _staged_s3(vault: Vault, location: str, client: ObjectStore) -> Iterator[Source]:
    """Download ``s3://bucket/prefix`` (streamed, object by object) into a private directory."""
    rest = location.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise AdoptSourceError(f"adopt: {location!r} names no bucket (s3://BUCKET/PREFIX)")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    staging = _staging_dir(vault)
    etags: dict[str, str] = {}
    try:
        for obj in client.list(bucket, prefix):
            rel = obj.key.removeprefix(prefix)
            if not rel or rel.endswith("/"):
                continue
            _check_object_name(obj.key, rel)
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with client.open(bucket, obj.key) as stream, target.open("xb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
            etags[rel] = obj.etag
        if not etags:
            raise AdoptSourceError(f"adopt: {location} holds no objects")
        endpoint = client.endpoint
        yield Source(
            "s3",
            f"s3://{bucket}/{prefix}",
            staging,
            {"endpoint": endpoint, "bucket": bucket, "prefix": prefix, "etags": etags},
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_object_name(key: str, rel: str) -> None:
    parts = PurePosixPath(rel).parts
    if rel.startswith("/") or any(p in {"", ".", ".."} for p in parts) or "\\" in rel:
        raise AdoptSourceError(f"adopt: object key {key!r} cannot be a file name")


# -- the inventory ------------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateFile:
    """One file of a candidate: where it is, what its content is, its hash."""

    path: str
    size: int
    format: str
    verdict: str
    sha256: str
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "path": self.path,
            "size": self.size,
            "format": self.format,
            "verdict": self.verdict,
            "sha256": self.sha256,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class Candidate:
    """One artifact found in the source, and everything the dry run can say of it."""

    #: where in the source it is (stable across runs): a relative path or ``org/name@rev``
    key: str
    name: str
    #: how it was recognised
    recognised: str
    root: Path
    #: (path in the artifact, local file) of every file it holds
    sources: tuple[tuple[str, Path], ...]
    files: tuple[CandidateFile, ...]
    content_digest: str
    #: what was recovered, by kind: git, huggingface, mlflow, s3
    recovered: dict[str, Any]
    #: what it will be stored with: backfilled, its missing fields named
    provenance: Provenance
    #: "admit", or "quarantine" (loading a file can run code)
    ingest_gate: str
    #: the promotion policy's reasons for warm, as of now (none: it would pass)
    warm_gate: tuple[str, ...]
    #: the artifact already holding this content, as the signed log records it
    stored_as: str | None = None
    #: why it cannot be adopted as it is (a symbolic link, a special file), or None
    problem: str | None = None

    @property
    def missing(self) -> tuple[str, ...]:
        """The provenance fields nothing recovered."""
        return self.provenance.missing

    @property
    def total_size(self) -> int:
        """Sum of the file sizes."""
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (no local paths of staged copies)."""
        return {
            "key": self.key,
            "name": self.name,
            "recognised": self.recognised,
            "files": [f.to_dict() for f in self.files],
            "bytes": self.total_size,
            "content_digest": self.content_digest,
            "recovered": self.recovered,
            "missing": list(self.missing),
            "gates": {"ingest": self.ingest_gate, "warm": list(self.warm_gate)},
            "stored_as": self.stored_as,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class Inventory:
    """What :func:`inventory` found in a source."""

    kind: SourceKind
    location: str
    candidates: tuple[Candidate, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON form: what ``adopt --dry-run --json`` prints and ``--inventory FILE`` writes."""
        return {
            "source": {"kind": self.kind, "location": self.location},
            "candidates": [c.to_dict() for c in self.candidates],
        }


def inventory(vault: Vault, source: Source) -> Inventory:
    """Recognise every candidate artifact in ``source``; nothing is stored."""
    if source.kind == "hf":
        found = _hf_candidates(source.root)
    elif source.kind == "mlflow":
        found = _mlflow_candidates(source.root)
    else:
        found = _tree_candidates(source.root)
    if not found:
        raise AdoptSourceError(f"adopt: found no model artifact in {source.location}")
    candidates = [_describe(vault, source, *c) for c in found]
    return Inventory(source.kind, source.location, tuple(candidates))


# A recognised candidate before it is described: key, name, how, root, recovered, files,
# and why it cannot be stored as it is (or None).
_Found = tuple[str, str, str, Path, dict[str, Any], list[tuple[str, Path]], str | None]


def _files_under(root: Path) -> tuple[list[tuple[str, Path]], str | None]:
    """(relative path, path) of the files of a candidate directory, and the first problem."""
    files: list[tuple[str, Path]] = []
    problem = None
    for entry in walk_tree(root):
        if set(PurePosixPath(entry.relpath).parts[:-1]) & _SKIPPED_DIRS:
            continue
        if entry.kind != "file":
            problem = problem or f"{entry.relpath} is a {entry.kind}, which is never followed"
            continue
        files.append((entry.relpath, entry.path))
    return files, problem


def _is_model_file(path: Path) -> bool:
    try:
        return scan_file(path).format.value in _MODEL_FORMATS
    except OSError:
        return False


def _tree_candidates(root: Path) -> list[_Found]:
    """Each top-most directory holding a model file (by content) is one candidate."""
    holders: set[Path] = set()
    for entry in walk_tree(root):
        parts = PurePosixPath(entry.relpath).parts
        if set(parts[:-1]) & _SKIPPED_DIRS or entry.kind != "file":
            continue
        if _is_model_file(entry.path):
            holders.add(entry.path.parent)
    tops = sorted(h for h in holders if not any(p in holders for p in h.parents))
    found: list[_Found] = []
    for top in tops:
        key = top.relative_to(root).as_posix() if top != root else "."
        name = top.name if top != root else root.name
        files, problem = _files_under(top)
        found.append((key, name, "a directory holding model files", top, {}, files, problem))
    return found


def _hf_repos(root: Path) -> list[Path]:
    if _HF_REPO.fullmatch(root.name):
        return [root]
    return [p for p in _children(root) if _HF_REPO.fullmatch(p.name)]


def _hf_candidates(root: Path) -> list[_Found]:
    """Each ``models--org--name/snapshots/<revision>/`` is one candidate."""
    found: list[_Found] = []
    for repo in _hf_repos(root):
        # The hub's cache spells org/name as models--org--name.
        repo_id = "/".join(repo.name.removeprefix("models--").split("--"))
        refs = _hf_refs(repo)
        for snapshot in _children(repo / "snapshots"):
            revision = snapshot.name
            if not _HF_REVISION.fullmatch(revision):
                continue
            files = _hf_files(repo, snapshot)
            recovered = {
                "huggingface": {
                    "repo_id": repo_id,
                    "revision": revision,
                    "refs": sorted(r for r, rev in refs.items() if rev == revision),
                }
            }
            found.append(
                (
                    f"{repo_id}@{revision}",
                    repo_id,
                    "a Hugging Face cache snapshot",
                    snapshot,
                    recovered,
                    files,
                    None,
                )
            )
    return found


def _hf_refs(repo: Path) -> dict[str, str]:
    refs: dict[str, str] = {}
    for entry in walk_tree(repo / "refs") if (repo / "refs").is_dir() else []:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if entry.kind == "file":
                refs[entry.relpath] = entry.path.read_text().strip()
    return refs


def _hf_files(repo: Path, snapshot: Path) -> list[tuple[str, Path]]:
    """The snapshot's files: each link must point into the repo's own ``blobs/``."""
    blobs = (repo / "blobs").resolve()
    files = []
    for entry in walk_tree(snapshot):
        path = entry.path
        if entry.kind == "symlink":
            target = path.resolve()
            if blobs not in target.parents or not target.is_file():
                raise AdoptSourceError(
                    f"adopt: {shown_path(path)} links outside the cache's blobs/; refusing it"
                )
            path = target
        elif entry.kind != "file":
            continue
        files.append((entry.relpath, path))
    return files


def _mlflow_runs(root: Path) -> list[tuple[Path, Path]]:
    """(run directory, its artifacts/) of every ``EXPERIMENT/RUN/artifacts`` under ``root``."""
    runs = []
    for experiment in _children(root):
        for run in _children(experiment):
            if _MLFLOW_RUN.fullmatch(run.name) and (run / "artifacts").is_dir():
                runs.append((run, run / "artifacts"))
    return runs


def _mlflow_candidates(root: Path) -> list[_Found]:
    """Each run's artifacts holding a model is a candidate; ``meta.yaml`` and tags recovered."""
    found: list[_Found] = []
    for run, artifacts in _mlflow_runs(root):
        files, problem = _files_under(artifacts)
        if not any(_is_model_file(p) for _rel, p in files):
            continue
        info = _mlflow_meta(run)
        name = str(info.get("run_name") or run.name)
        how = "an MLflow run's artifacts" + (
            " (an MLflow model)"
            if any(PurePosixPath(r).name == "MLmodel" for r, _ in files)
            else ""
        )
        key = f"{run.parent.name}/{run.name}"
        found.append((key, name, how, artifacts, {"mlflow": info}, files, problem))
    return found


def _mlflow_meta(run: Path) -> dict[str, Any]:
    """What MLflow's file store says of the run (``meta.yaml``, the git tags); never code."""
    info: dict[str, Any] = {"run_id": run.name, "experiment_id": run.parent.name}
    with contextlib.suppress(OSError, yaml.YAMLError, UnicodeDecodeError):
        meta = yaml.safe_load((run / "meta.yaml").read_text())
        if isinstance(meta, dict):
            for key in ("run_name", "user_id", "status", "start_time", "end_time"):
                if isinstance(meta.get(key), str | int):
                    info[key] = meta[key]
    for tag, name in (("mlflow.source.git.commit", "git_commit"), ("mlflow.source.name", "source")):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            value = (run / "tags" / tag).read_text().strip()
            if value:
                info[name] = value[:200]
    return info


def _recover_git(root: Path) -> tuple[Provenance | None, dict[str, Any]]:
    """Provenance of a candidate sitting in a git work tree (best effort), and what it says."""
    top = git_toplevel(root)
    if top is None:
        return None, {}
    try:
        prov = capture_provenance(
            top, run_id=None, creator=None, lock_file=None, parent=None, allow_incomplete=True
        )
    except VaultError:
        return None, {}
    if prov.git_commit is None:
        return None, {}
    # capture_provenance names the one running it as creator: of an adopted model, unknown.
    prov = replace(prov, creator=None, missing=_with(prov.missing, "creator"))
    return prov, {
        "git": {
            "commit": prov.git_commit,
            "dirty": prov.git_dirty,
            "remote": prov.git_remote,
            "path": root.relative_to(top).as_posix() or ".",
        }
    }


def _with(missing: tuple[str, ...], name: str) -> tuple[str, ...]:
    return missing if name in missing else (*missing, name)


def _describe(
    vault: Vault,
    source: Source,
    key: str,
    name: str,
    how: str,
    root: Path,
    recovered: dict[str, Any],
    files: list[tuple[str, Path]],
    problem: str | None,
) -> Candidate:
    """Scan, hash and judge one candidate."""
    scanned = []
    for rel, path in files:
        result = scan_file(path, name=rel)
        hashed = hash_file(path)
        verdict = "hazard" if loader_hazard(result) else result.verdict
        scanned.append(
            CandidateFile(
                rel, hashed.size, result.format.value, verdict, hashed.sha256, result.reasons
            )
        )
    recovered = dict(recovered)
    in_git: Provenance | None = None
    # A staged copy (HF, S3) sits in the vault home: only files read in place have a work tree.
    if source.kind in {"dir", "mlflow"}:
        in_git, git = _recover_git(root)
        recovered |= git
    if source.kind == "s3":
        recovered["s3"] = {
            "endpoint": source.s3["endpoint"],
            "bucket": source.s3["bucket"],
            "prefix": source.s3["prefix"] + ("" if key == "." else key + "/"),
        }
    provenance = _backfilled(source, key, how, recovered, scanned, in_git)
    digest = digest_of((f.path, f.size, f.sha256) for f in scanned)
    gate = "quarantine" if any(f.verdict == "hazard" for f in scanned) else "admit"
    return Candidate(
        key=key,
        name=name,
        recognised=how,
        root=root,
        sources=tuple(files),
        files=tuple(scanned),
        content_digest=digest,
        recovered=recovered,
        provenance=provenance,
        ingest_gate=gate,
        warm_gate=tuple(_warm_reasons(vault, scanned, provenance)),
        stored_as=_stored_as(vault, digest),
        problem=problem,
    )


def _backfilled(
    source: Source,
    key: str,
    how: str,
    recovered: dict[str, Any],
    files: list[CandidateFile],
    prov: Provenance | None,
) -> Provenance:
    """The provenance an adopted candidate is stored with (``prov``, what a work tree around
    it gave, if any), marked backfilled."""
    mlflow = recovered.get("mlflow") or {}
    if prov is None:
        now = datetime.now(UTC)
        run_id = mlflow.get("run_id")
        missing = ["git_commit", "git_dirty", "datasets", "lock_file", "creator"]
        if run_id is None:
            missing.insert(3, "run_id")
        prov = Provenance(
            git_commit=None,
            git_dirty=None,
            datasets=None,
            run_id=run_id,
            environment={},
            creator=None,
            started_at=now,
            finished_at=now,
            missing=tuple(missing),
        )
    elif mlflow.get("run_id") and prov.run_id is None:
        prov = replace(
            prov, run_id=mlflow["run_id"], missing=tuple(m for m in prov.missing if m != "run_id")
        )
    return replace(
        prov,
        backfilled={
            "source": source.kind,
            "location": key,
            "recognised": how,
            "recovered": recovered,
            "missing": list(prov.missing),
            "files": len(files),
        },
    )


def _warm_reasons(vault: Vault, files: list[CandidateFile], prov: Provenance) -> list[str]:
    """What the promotion policy would say of warm today (before validation and approval):
    the input ``weightvault check`` builds, for backfilled provenance."""
    document = policy_input(
        [{"path": f.path, "format": f.format, "size": f.size, "sha256": f.sha256} for f in files],
        prov,
        "missing",
        [],
        tier="warm",
        certificate_tiers=vault.settings.certificate_tiers,
        approvals_required=vault.settings.approvals_required,
        backfilled=True,
    )
    return evaluate(document, vault.settings.policy_dir).reasons


def _stored_as(vault: Vault, digest: str) -> str | None:
    """The artifact whose ingest the signed log records with this content digest, if any.

    A catalog row only finds it: the log's ingest outcome (proved included in the
    signed checkpoint by ``Vault.history``) must name the same digest.
    """
    for row in vault.catalog.find_by_digest(digest):
        try:
            logged = vault.history(row.id, {"artifact.ingested"})
        except IntegrityError:
            continue
        if any(e.event.details.get("content_digest") == digest for e in logged):
            return row.id
    return None


# -- the ingest ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Adopted:
    """What became of one candidate."""

    key: str
    name: str
    #: "adopted", "quarantined", "present" (already in the vault), "skipped" or "failed"
    status: str
    artifact_id: str | None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "key": self.key,
            "name": self.name,
            "status": self.status,
            "artifact_id": self.artifact_id,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class AdoptReport:
    """The inventory and, unless it was a dry run, what became of each candidate."""

    inventory: Inventory
    results: tuple[Adopted, ...] = ()
    dry_run: bool = False

    @property
    def failed(self) -> tuple[Adopted, ...]:
        """The candidates that could not be adopted."""
        return tuple(r for r in self.results if r.status in {"failed", "skipped"})

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.status] = counts.get(r.status, 0) + 1
        return {
            **self.inventory.to_dict(),
            "dry_run": self.dry_run,
            "results": [r.to_dict() for r in self.results],
            "counts": counts,
        }


def _stage(vault: Vault, candidate: Candidate) -> Path:
    """A private directory holding exactly the candidate's files (hard links, else copies)."""
    staging = _staging_dir(vault)
    for rel, path in candidate.sources:
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.link(path, target, follow_symlinks=False)
        except OSError:
            shutil.copyfile(path, target, follow_symlinks=False)
        if not stat.S_ISREG(target.lstat().st_mode):
            raise AdoptSourceError(f"adopt: {rel} of {candidate.key} is not a regular file")
    return staging


def adopt_candidate(
    vault: Vault, source: Source, candidate: Candidate, *, workers: int = 2
) -> Adopted:
    """Ingest one candidate with backfilled provenance; content already stored is skipped."""
    if candidate.problem is not None:
        return Adopted(candidate.key, candidate.name, "skipped", None, candidate.problem)
    stored = _stored_as(vault, candidate.content_digest)
    if stored is not None:
        return Adopted(candidate.key, candidate.name, "present", stored, "content already stored")
    staging = _stage(vault, candidate)
    try:
        result = ingest.put(
            vault,
            staging,
            candidate.name,
            "hot",
            labels={ADOPTED_LABEL: source.kind},
            provenance=candidate.provenance,
            workers=workers,
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if result.duplicate_of:
        return Adopted(candidate.key, candidate.name, "present", result.artifact_id, "duplicate")
    if result.quarantined:
        return Adopted(
            candidate.key, candidate.name, "quarantined", result.artifact_id, result.quarantined
        )
    return Adopted(candidate.key, candidate.name, "adopted", result.artifact_id)


def adopt(
    vault: Vault,
    location: str,
    kind: SourceKind | Literal["auto"] = "auto",
    *,
    dry_run: bool = False,
    s3_client: ObjectStore | None = None,
    on_inventory: Callable[[Inventory], None] | None = None,
    on_result: Callable[[Adopted], None] | None = None,
) -> AdoptReport:
    """Every step in a row: open, take stock, then (unless ``dry_run``) ingest each candidate.

    A candidate that fails is recorded as failed and the rest go on; what was
    adopted stays. ``on_inventory`` and ``on_result`` report progress.
    """
    with open_source(vault, location, kind, s3_client=s3_client) as source:
        found = inventory(vault, source)
        if on_inventory is not None:
            on_inventory(found)
        if dry_run:
            return AdoptReport(found, dry_run=True)
        results = []
        for candidate in found.candidates:
            try:
                done = adopt_candidate(vault, source, candidate)
            except VaultError as exc:
                done = Adopted(candidate.key, candidate.name, "failed", None, exc.message)
            results.append(done)
            if on_result is not None:
                on_result(done)
        return AdoptReport(found, tuple(results))
