"""Recover: rebuild an artifact from its rebuild kit, compare it, certify it, restore it.

One logged operation, ``artifact.recovered`` (its intent in the log before any
effect), written as named steps that ``weightvault recover ID`` runs in a row
(:func:`recover`) and the ``recover`` flow runs as Prefect tasks:

1. :func:`plan`: the manifest and signed statement are authenticated, the
   rebuild kit's entries found (RebuildKitError without one); ``--restore`` of
   a cold artifact is refused here (object lock: use escrow);
2. :func:`workspace`: a fresh private directory (:func:`cleanup` removes it);
3. :func:`unpack_kit`: the kit's files decrypted (each checked against the
   manifest) and ``kit.json`` read;
4. :func:`source`: a clone of the stored ``git bundle`` (else of the recorded
   remote), checked out at the recorded commit;
5. :func:`environment`: the recorded lock file (its sha256 checked against the
   statement; any format :mod:`weightvault.lifecycle.locks` turns into exact
   pins: requirements, uv, poetry, pdm, Pipfile) made into an environment:
   ``current`` when the running interpreter already has every pin, else an
   ``isolated`` venv (``uv venv`` + ``uv pip install --offline``);
   EnvironmentLockError when it cannot be satisfied offline;
6. :func:`datasets`: ``dvc pull`` of the recorded datasets from the vault's DVC
   remote, each checked by md5 and sha256 (DatasetMismatchError names the
   dataset and both digests);
7. :func:`reproduce`: ``dvc repro`` with the environment first on PATH;
8. :func:`compare`: every model file against the manifest (sha256 and size);
   for safetensors that differ, which tensors (``gates.diff_safetensors``)
   against the stored copy when it can still be read;
9. :func:`certify`: on a match, a reproducibility certificate (an in-toto
   statement, predicate ``https://weightvault.dev/attestations/reproducibility/v1``)
   signed by the vault's key, stored and bound to the operation's outcome;
10. :func:`restore` (``--restore``, only after a match): the rebuilt files
    re-encrypted under a fresh DEK to new objects, the manifest and statement
    rewritten through the re-encryption journal of ``lifecycle.rekey`` (the
    same commit point and roll-forward), the new state recorded in the log.

Nothing stored is replaced before the comparison matched.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.metadata
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from weightvault._fs import hash_file
from weightvault._json import canonical_json
from weightvault._time import iso
from weightvault.artifacts import (
    Operation,
    StatementRef,
    Vault,
    trusted_statement,
    write_statement,
)
from weightvault.config import child_environment
from weightvault.crypto import chunked
from weightvault.crypto.binding import file_context, manifest_mac
from weightvault.errors import (
    AuditError,
    DatasetMismatchError,
    EnvironmentLockError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    RebuildKitError,
    ReproducibilityError,
    RetentionError,
    StatementError,
    VaultError,
)
from weightvault.gates import TensorDiff, diff_safetensors
from weightvault.lifecycle.kit import BUNDLE_PATH, KIT_DOC_PATH, KitDocument, lock_path
from weightvault.lifecycle.locks import pins as lock_pins
from weightvault.lifecycle.locks import requirements_for
from weightvault.lifecycle.rekey import (
    CLAIM,
    JOURNAL_TYPE,
    resign_statement,
    roll_forward,
    sweep_unreferenced,
)
from weightvault.lifecycle.rotation import rotating_keys
from weightvault.records import REBUILD_KIT, FileEntry, Manifest
from weightvault.store import DvcRemote, configure_dvc_remote, dvc_remote
from weightvault.store.layout import files_prefix, rekey_journal_key

__all__ = [
    "CERTIFICATE_KIND",
    "KIND",
    "Comparison",
    "EnvironmentInfo",
    "RecoverPlan",
    "RecoverReport",
    "certificates",
    "certify",
    "cleanup",
    "compare",
    "datasets",
    "environment",
    "finish",
    "outcome_details",
    "plan",
    "recover",
    "reproduce",
    "restore",
    "source",
    "unpack_kit",
    "workspace",
]

KIND = "artifact.recovered"
CERTIFICATE_KIND = "reproducibility"
ENVIRONMENT_MODES = ("auto", "current", "isolated")
_TIMEOUT = 3600.0


@dataclass(frozen=True)
class RecoverPlan:
    """What a recovery works from: the authenticated manifest and statement (no key)."""

    artifact_id: str
    tier: str
    name: str
    manifest: Manifest
    provenance: dict[str, Any]
    restore: bool
    op: Operation | None = None
    #: the catalog's tier (``quarantine`` for a quarantined artifact; ``tier`` is where its
    #: objects are)
    placed: str = ""

    @property
    def content_digest(self) -> str:
        """The artifact's content digest."""
        return self.manifest.content_digest


@dataclass(frozen=True)
class EnvironmentInfo:
    """The environment the stages ran in."""

    mode: str  # "current" (verified equal to the lock) or "isolated"
    bin_dir: str
    lock_file: str
    lock_sha256: str
    seconds: float


@dataclass(frozen=True)
class Comparison:
    """Every model file of the rebuild against the manifest."""

    files: tuple[dict[str, Any], ...]
    tensors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def matched(self) -> bool:
        """True when every file is bit-identical (sha256 and size)."""
        return all(f["match"] for f in self.files)

    @property
    def differing(self) -> list[str]:
        """Paths of the files that differ (or are missing)."""
        return [str(f["path"]) for f in self.files if not f["match"]]


@dataclass(frozen=True)
class RecoverReport:
    """The outcome of a recovery (no key material)."""

    artifact_id: str
    content_digest: str
    matched: bool
    restored: bool
    certificate: dict[str, str] | None
    source: str
    environment: str
    datasets: tuple[dict[str, Any], ...]
    stages: tuple[str, ...]
    timings: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "artifact_id": self.artifact_id,
            "content_digest": self.content_digest,
            "matched": self.matched,
            "restored": self.restored,
            "certificate": self.certificate,
            "source": self.source,
            "environment": self.environment,
            "datasets": list(self.datasets),
            "stages": list(self.stages),
            "timings": dict(self.timings),
        }


# -- 1. plan -----------------------------------------------------------------


def plan(vault: Vault, artifact_id: str, *, restore: bool = False) -> RecoverPlan:
    """Record the intent, authenticate manifest and statement, find the rebuild kit."""
    try:
        row = vault.resolve(artifact_id)
    except (NotFoundError, InvalidInputError) as exc:
        with contextlib.suppress(AuditError):
            requested = {"requested": artifact_id[:100], "restore": restore}
            vault.finish(vault.begin(KIND, None, None, requested), exc)
        raise
    # The steps run apart (a flow's tasks): the intent is recorded here, the outcome
    # by :func:`finish`.
    begun = vault.begin(KIND, row.id, row.tier, {"restore": restore})
    try:
        tier = row.tier
        if tier == "quarantine":
            # Containment quarantines a corrupted artifact first: it is rebuilt and restored
            # where the log records its objects, and stays quarantined (reads refused).
            tier = vault.logged_state(row.id).require().tier
        if restore and tier == "cold":
            raise RetentionError(
                f"artifact {row.id} is cold: its objects are object-locked and cannot be "
                "rewritten in place; restore it from escrow (`weightvault escrow decrypt`)"
            )
        manifest, dek = vault.load_manifest(row.id, tier)
        del dek
        statement = vault.verify_statement(row.id, tier, manifest)
        extra = statement["predicate"]["buildDefinition"]["externalParameters"].get("extra", {})
        provenance = dict(extra.get("provenance") or {})
        if not manifest.files_with_role(REBUILD_KIT):
            raise RebuildKitError(
                f"artifact {row.id} has no rebuild kit (ingested without its model repository)"
            )
        if not provenance.get("git_commit"):
            raise RebuildKitError(f"artifact {row.id}: its statement records no git commit")
    except BaseException as exc:
        vault.finish(begun, exc)
        raise
    return RecoverPlan(row.id, tier, row.name, manifest, provenance, restore, begun, row.tier)


# -- 2. workspace --------------------------------------------------------------


def workspace() -> Path:
    """A fresh private (0700) directory for one recovery."""
    return Path(tempfile.mkdtemp(prefix="weightvault-recover-"))


def cleanup(ws: Path) -> None:
    """Remove a recovery's workspace (plaintext of the rebuild included)."""
    shutil.rmtree(ws, ignore_errors=True)


# -- 3. the kit ----------------------------------------------------------------


def _decrypt_to(vault: Vault, p: RecoverPlan, entry: FileEntry, target: Path) -> bool:
    """Decrypt one stored file to ``target``; False (nothing left) when it cannot be read."""
    row = replace(vault.resolve(p.artifact_id), tier=p.tier)
    target.parent.mkdir(parents=True, exist_ok=True)
    dek = vault.dek(p.artifact_id, p.tier)
    try:
        with target.open("wb") as fh:
            vault.decrypt_file(row, entry, dek, fh)
    except (IntegrityError, NotFoundError):
        target.unlink(missing_ok=True)
        return False
    finally:
        del dek
    return True


def unpack_kit(vault: Vault, p: RecoverPlan, ws: Path) -> KitDocument:
    """Decrypt the kit's files into ``ws/kit`` (each checked); returns ``kit.json``."""
    for entry in p.manifest.files_with_role(REBUILD_KIT):
        _decrypt_to(vault, p, entry, ws / "kit" / entry.path)
    doc_path = ws / "kit" / KIT_DOC_PATH
    if not doc_path.is_file():
        raise RebuildKitError(f"artifact {p.artifact_id}: its rebuild kit document is lost")
    kit = KitDocument.parse(doc_path.read_bytes())
    if kit.git_commit != p.provenance.get("git_commit"):
        raise RebuildKitError(
            f"artifact {p.artifact_id}: the kit's commit is not the one the statement records"
        )
    return kit


# -- 4. source -----------------------------------------------------------------


def _tool(name: str) -> str:
    """A tool next to the running interpreter (the vault's venv), else on PATH."""
    sibling = Path(sys.executable).parent / name
    found = str(sibling) if sibling.is_file() else shutil.which(name)
    if found is None:
        raise RebuildKitError(f"{name} is not installed: the rebuild cannot run")
    return found


def _run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed tools, argument lists, no shell
        args,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=_TIMEOUT,
    )


def _last_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
    return lines[-1][:300] if lines else f"exit {proc.returncode}"


def _clone(git: str, origin: str, target: Path, commit: str) -> str | None:
    """Clone ``origin`` into ``target`` at ``commit``; None on success, else why not."""
    shutil.rmtree(target, ignore_errors=True)
    env = child_environment(GIT_TERMINAL_PROMPT="0")
    cloned = _run([git, "clone", "-q", "--no-checkout", origin, str(target)], target.parent, env)
    if cloned.returncode != 0:
        return _last_line(cloned)
    checkout = _run([git, "checkout", "-q", "--detach", commit], target, env)
    if checkout.returncode != 0:
        return _last_line(checkout)
    head = _run([git, "rev-parse", "HEAD"], target, env)
    if head.stdout.strip() != commit:
        return f"HEAD is {head.stdout.strip()[:12]}, not {commit[:12]}"
    return None


def source(ws: Path, kit: KitDocument) -> tuple[Path, str]:
    """Restore the model repository at the recorded commit; returns it and where from."""
    git = _tool("git")
    target = ws / "src"
    bundle = ws / "kit" / BUNDLE_PATH
    reasons = []
    if bundle.is_file():
        why = _clone(git, str(bundle), target, kit.git_commit)
        if why is None:
            return target, "bundle"
        reasons.append(f"bundle: {why}")
    else:
        reasons.append("the stored bundle is lost")
    if kit.git_remote:
        why = _clone(git, kit.git_remote, target, kit.git_commit)
        if why is None:
            return target, "remote"
        reasons.append(f"remote {kit.git_remote}: {why}")
    raise RebuildKitError(
        f"the source at {kit.git_commit[:12]} cannot be restored: {'; '.join(reasons)}"
    )


# -- 5. environment ------------------------------------------------------------


def _current_satisfies(pins: dict[str, str]) -> bool:
    for dist, version in pins.items():
        try:
            if importlib.metadata.version(dist) != version:
                return False
        except importlib.metadata.PackageNotFoundError:
            return False
    return True


def _lock_bytes(p: RecoverPlan, ws: Path, src: Path) -> tuple[Path, str, str]:
    """The recorded primary lock file (kit copy, else the clone's), its sha256 checked."""
    env = p.provenance.get("environment") or {}
    name, digest = env.get("lock_file"), env.get("lock_file_sha256")
    if not name or not digest:
        raise EnvironmentLockError(f"artifact {p.artifact_id} records no environment lock file")
    recorded = [lf for lf in p.provenance.get("lock_files") or [] if lf.get("sha256") == digest]
    rel = str(recorded[0]["path"]) if recorded else str(name)
    for candidate in (ws / "kit" / lock_path(rel), src / rel):
        if candidate.is_file() and hash_file(candidate).sha256 == digest:
            return candidate, rel, str(digest)
    raise EnvironmentLockError(
        f"the recorded lock {rel} (sha256 {str(digest)[:16]}) is neither in the kit nor the source"
    )


def environment(p: RecoverPlan, ws: Path, src: Path, mode: str = "auto") -> EnvironmentInfo:
    """Recreate the recorded training environment (see the module docstring)."""
    if mode not in ENVIRONMENT_MODES:
        raise InvalidInputError(f"environment mode must be one of {', '.join(ENVIRONMENT_MODES)}")
    start = time.monotonic()
    lock, rel, digest = _lock_bytes(p, ws, src)
    requirements = requirements_for(lock, rel, src, ws / "lock")
    pins = lock_pins(requirements, rel)
    if mode in {"auto", "current"} and _current_satisfies(pins):
        bin_dir = str(Path(sys.executable).parent)
        return EnvironmentInfo("current", bin_dir, rel, digest, time.monotonic() - start)
    if mode == "current":
        raise EnvironmentLockError(
            f"the running interpreter does not have every pin of the recorded lock {rel}"
        )
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is None:
        raise EnvironmentLockError(f"the recorded lock {rel} needs uv to be installed offline")
    venv = ws / "env"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    made = _run([uv, "venv", "-q", "--offline", "--python", python, str(venv)], ws)
    if made.returncode == 0:
        interpreter = str(venv / "bin" / "python")
        install = [uv, "pip", "install", "-q", "--offline", "--python", interpreter]
        made = _run([*install, "-r", str(requirements)], ws)
    if made.returncode != 0:
        raise EnvironmentLockError(
            f"the recorded lock {rel} cannot be satisfied offline: {_last_line(made)}"
        )
    return EnvironmentInfo("isolated", str(venv / "bin"), rel, digest, time.monotonic() - start)


# -- 6. datasets ---------------------------------------------------------------


def _dvc_env(bin_dir: str | None = None) -> dict[str, str]:
    env = child_environment()
    path = env.get("PATH", "")
    if bin_dir is not None:
        path = f"{bin_dir}{os.pathsep}{path}"
    env["PATH"] = path
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def _hash_dataset(target: Path) -> tuple[str, str]:
    """(DVC md5, vault sha256) of a pulled dataset, as provenance capture computes them."""
    import hashlib
    import json

    if target.is_file():
        found = hash_file(target, md5=True)
        return str(found.md5), found.sha256
    files = sorted((p.relative_to(target).as_posix(), p) for p in target.rglob("*") if p.is_file())
    listing, lines = [], []
    for relpath, path in files:
        found = hash_file(path, md5=True)
        listing.append({"md5": found.md5, "relpath": relpath})
        lines.append(f"{found.sha256}  {relpath}\n")
    md5 = hashlib.md5(json.dumps(listing, sort_keys=True).encode(), usedforsecurity=False)
    return md5.hexdigest() + ".dir", hashlib.sha256("".join(lines).encode()).hexdigest()


def datasets(
    vault: Vault, p: RecoverPlan, src: Path, remote: DvcRemote | None = None
) -> tuple[dict[str, Any], ...]:
    """``dvc pull`` the recorded datasets and check each one's md5 and sha256."""
    recorded = [d for d in p.provenance.get("datasets") or [] if isinstance(d, dict)]
    if not recorded:
        return ()
    configure_dvc_remote(src, remote if remote is not None else dvc_remote(vault.settings))
    paths = [str(d["path"]) for d in recorded]
    pulled = _run([_tool("dvc"), "pull", "-q", *paths], src, _dvc_env())
    if pulled.returncode != 0:
        raise DatasetMismatchError(
            f"datasets {', '.join(paths)} cannot be pulled from the DVC remote: "
            f"{_last_line(pulled)}"
        )
    checked = []
    for d in recorded:
        path = str(d["path"])
        target = (src / path).resolve()
        if not target.is_relative_to(src.resolve()) or not target.exists():
            raise DatasetMismatchError(f"dataset {path} is not in the workspace after dvc pull")
        md5, sha256 = _hash_dataset(target)
        if md5 != d.get("dvc_md5") or sha256 != d.get("sha256"):
            raise DatasetMismatchError(
                f"dataset {path} in the DVC remote is not the recorded one: md5 "
                f"{d.get('dvc_md5')} recorded, {md5} pulled; sha256 {d.get('sha256')} "
                f"recorded, {sha256} pulled"
            )
        checked.append({"path": path, "md5": md5, "sha256": sha256})
    return tuple(checked)


# -- 7. reproduce --------------------------------------------------------------


def reproduce(p: RecoverPlan, src: Path, env: EnvironmentInfo) -> tuple[str, ...]:
    """``dvc repro`` with the environment's interpreter first on PATH; the stages run."""
    stages = tuple(
        str(s["name"]) for s in p.provenance.get("dvc_stages") or [] if isinstance(s, dict)
    )
    proc = _run([_tool("dvc"), "repro", "-q"], src, _dvc_env(env.bin_dir))
    if proc.returncode != 0:
        raise ReproducibilityError(f"dvc repro failed: {_last_line(proc)}")
    return stages


# -- 8. compare ----------------------------------------------------------------


def _artifact_root(src: Path, kit: KitDocument) -> Path:
    if kit.artifact_path is None:
        raise RebuildKitError("the artifact's files were not inside its model repository")
    root = (src / kit.artifact_path).resolve()
    if not root.is_relative_to(src.resolve()):
        raise RebuildKitError("the kit names an artifact path outside the repository")
    return root.parent if kit.single_file else root


def compare(vault: Vault, p: RecoverPlan, ws: Path, src: Path, kit: KitDocument) -> Comparison:
    """Every model file against the manifest; differing safetensors diffed by tensor."""
    root = _artifact_root(src, kit)
    files, tensors = [], {}
    for entry in p.manifest.model_files:
        built = root / entry.path
        found = hash_file(built) if built.is_file() else None
        match = found is not None and found.sha256 == entry.sha256 and found.size == entry.size
        files.append(
            {
                "path": entry.path,
                "sha256": entry.sha256,
                "size": entry.size,
                "rebuilt_sha256": found.sha256 if found else None,
                "rebuilt_size": found.size if found else None,
                "match": match,
            }
        )
        if match or found is None or not entry.path.endswith(".safetensors"):
            continue
        stored = ws / "stored" / entry.path
        if _decrypt_to(vault, p, entry, stored):
            try:
                diffs: list[TensorDiff] = diff_safetensors(stored, built)
            except InvalidInputError as exc:
                tensors[entry.path] = [{"name": "*", "reason": exc.message}]
            else:
                tensors[entry.path] = [d.to_dict() | {"where": d.describe()} for d in diffs]
            finally:
                stored.unlink(missing_ok=True)
    return Comparison(tuple(files), tensors)


def _mismatch_message(p: RecoverPlan, comparison: Comparison) -> str:
    parts = []
    for f in comparison.files:
        if f["match"]:
            continue
        if f["rebuilt_sha256"] is None:
            parts.append(f"{f['path']} was not rebuilt")
            continue
        line = (
            f"{f['path']} differs (sha256 {str(f['sha256'])[:16]} stored, "
            f"{str(f['rebuilt_sha256'])[:16]} rebuilt)"
        )
        diffs = comparison.tensors.get(str(f["path"]))
        if diffs:
            shown = ", ".join(str(d.get("where", d.get("name"))) for d in diffs[:3])
            more = f" and {len(diffs) - 3} more" if len(diffs) > 3 else ""
            line += f": tensors {shown}{more}"
        parts.append(line)
    return f"artifact {p.artifact_id} was not reproduced: {'; '.join(parts)}; nothing replaced"


# -- 9. certify ----------------------------------------------------------------


def certify(
    vault: Vault,
    p: RecoverPlan,
    kit: KitDocument,
    origin: str,
    env: EnvironmentInfo,
    checked: tuple[dict[str, Any], ...],
    stages: tuple[str, ...],
    comparison: Comparison,
    timings: dict[str, float],
) -> StatementRef:
    """Sign and store the reproducibility certificate and bind it to the operation."""
    if p.op is None:
        raise IntegrityError("a certificate needs the recovery's logged operation")
    if not comparison.matched:
        raise ReproducibilityError(_mismatch_message(p, comparison))
    predicate = {
        "artifact_id": p.artifact_id,
        "inputs": {
            "git_commit": kit.git_commit,
            "source": origin,
            "datasets": list(checked),
            "environment": {
                "lock_file": env.lock_file,
                "lock_file_sha256": env.lock_sha256,
                "mode": env.mode,
            },
            "stages": list(stages),
        },
        "outputs": {
            "content_digest": p.content_digest,
            "files": [
                {"path": f["path"], "sha256": f["sha256"], "size": f["size"]}
                for f in comparison.files
            ],
        },
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "at": iso(vault.clock()),
        "by": vault.actor,
    }
    return write_statement(
        vault,
        p.op,
        CERTIFICATE_KIND,
        predicate,
        subject_name=p.name,
        subject_sha256=p.content_digest,
    )


# -- 10. restore ---------------------------------------------------------------


def _encrypt(
    vault: Vault, p: RecoverPlan, entry: FileEntry, plain: Path, dek: bytes, key: str
) -> FileEntry:
    length = chunked.ciphertext_size(entry.size)
    with plain.open("rb") as fh:
        reader = chunked.EncryptingReader(fh, dek, file_context(p.artifact_id, entry.path))
        vault.store.put_stream(
            vault.bucket(p.tier), key, reader, length, retain_until=vault.retain_until(p.tier)
        )
    if reader.plaintext_len != entry.size or reader.hexdigest != entry.sha256:
        raise IntegrityError(f"artifact {p.artifact_id} file {entry.path} changed while restoring")
    return replace(entry, ciphertext_size=length, object_key=key)


def restore(
    vault: Vault, p: RecoverPlan, ws: Path, src: Path, kit: KitDocument, comparison: Comparison
) -> int:
    """Put the rebuilt files back under the same id and content digest (fresh DEK).

    Only after a match; every kit file must still be readable (its plaintext is
    in ``ws/kit``). Returns how many files were written.
    """
    if not comparison.matched:
        raise ReproducibilityError(_mismatch_message(p, comparison))
    root = _artifact_root(src, kit)
    sources: list[tuple[FileEntry, Path]] = []
    for entry in p.manifest.files:
        plain = root / entry.path if entry.role is None else ws / "kit" / entry.path
        if not plain.is_file():
            raise RebuildKitError(f"{entry.path} of the rebuild kit is lost: cannot restore it")
        sources.append((entry, plain))
    vault.catalog.claim(p.artifact_id, p.placed or p.tier, CLAIM)
    try:
        doc = _prepare_restore(vault, p, sources)
        # The commit point, as for a re-encryption: from here on it is rolled forward.
        vault.store.put_bytes(
            vault.bucket("envelopes"),
            rekey_journal_key(p.artifact_id, p.tier),
            canonical_json(doc),
        )
    except BaseException:
        # New objects of the attempt go (the manifest still names the old ones).
        with contextlib.suppress(VaultError):
            sweep_unreferenced(vault, p.artifact_id, p.tier, p.manifest)
        vault.catalog.release(p.artifact_id)
        raise
    result = roll_forward(vault, doc, resumed=False)
    if p.op is not None:
        p.op.uses(result.kek, str(doc["signed_by"]))
        p.op.details["state"] = vault.object_state(p.artifact_id, p.tier)
    return len(sources)


def _prepare_restore(
    vault: Vault, p: RecoverPlan, sources: list[tuple[FileEntry, Path]]
) -> dict[str, Any]:
    """Encrypt every file under a fresh DEK to new objects; the journal document."""
    generation = secrets.token_hex(4)
    prefix = files_prefix(p.artifact_id)
    new_dek = secrets.token_bytes(32)
    try:
        wrapped = rotating_keys(vault).wrap_dek(p.tier, p.artifact_id, new_dek)
        entries = [
            _encrypt(vault, p, entry, plain, new_dek, f"{prefix}r{generation}-{i:06d}.c2sp")
            for i, (entry, plain) in enumerate(sources)
        ]
        new_manifest = replace(p.manifest, files=tuple(entries))
        body = new_manifest.to_bytes(manifest_mac(new_dek, new_manifest.body_bytes()))
    finally:
        del new_dek
    statement, signed_by = resign_statement(vault, p.tier, p.manifest, new_manifest)
    return {
        "type": JOURNAL_TYPE,
        "artifact_id": p.artifact_id,
        "tier": p.tier,
        "envelope": wrapped.to_dict(),
        "manifest": base64.b64encode(body).decode(),
        "statement": base64.b64encode(statement).decode(),
        "signed_by": signed_by,
        "old_objects": [f.object_key for f in p.manifest.files],
    }


# -- the outcome ---------------------------------------------------------------


def outcome_details(origin: str, env: EnvironmentInfo, comparison: Comparison) -> dict[str, Any]:
    """What the operation's outcome records of a rebuild (bounded lists)."""
    return {
        "source": origin,
        "environment": env.mode,
        "matched": comparison.matched,
        "differing": comparison.differing[:20],
        "tensors": {k: v[:20] for k, v in list(comparison.tensors.items())[:20]},
    }


def finish(
    vault: Vault, p: RecoverPlan, details: dict[str, Any], error: BaseException | None = None
) -> None:
    """Record the operation's outcome; after a restore, drop its journal once logged."""
    if p.op is None or p.op.outcome is not None:
        return
    p.op.details.update(details)
    vault.finish(p.op, error)
    if error is None and "state" in p.op.details:
        with contextlib.suppress(NotFoundError):
            vault.store.remove(vault.bucket("envelopes"), rekey_journal_key(p.artifact_id, p.tier))


def recover(
    vault: Vault,
    artifact_id: str,
    *,
    restore_files: bool = False,
    environment_mode: str = "auto",
    remote: DvcRemote | None = None,
) -> RecoverReport:
    """Every step above, in a row (``weightvault recover ID [--restore]``)."""
    p = plan(vault, artifact_id, restore=restore_files)
    ws = workspace()
    timings: dict[str, float] = {}
    details: dict[str, Any] = {}
    try:
        t = time.monotonic()
        kit = unpack_kit(vault, p, ws)
        src, origin = source(ws, kit)
        timings["source"] = time.monotonic() - t
        env = environment(p, ws, src, environment_mode)
        timings["environment"] = env.seconds
        t = time.monotonic()
        checked = datasets(vault, p, src, remote)
        timings["datasets"] = time.monotonic() - t
        t = time.monotonic()
        stages = reproduce(p, src, env)
        timings["reproduce"] = time.monotonic() - t
        t = time.monotonic()
        comparison = compare(vault, p, ws, src, kit)
        timings["compare"] = time.monotonic() - t
        details.update(outcome_details(origin, env, comparison))
        ref = certify(vault, p, kit, origin, env, checked, stages, comparison, timings)
        restored = 0
        if p.restore:
            restored = restore(vault, p, ws, src, kit, comparison)
        details.update(restored=restored)
    except BaseException as exc:
        with contextlib.suppress(VaultError):
            finish(vault, p, details, exc)
        raise
    finally:
        cleanup(ws)
    finish(vault, p, details)
    return RecoverReport(
        p.artifact_id,
        p.content_digest,
        True,
        bool(p.restore),
        ref.to_dict(),
        origin,
        env.mode,
        checked,
        stages,
        {k: round(v, 3) for k, v in timings.items()},
    )


def certificates(vault: Vault, artifact_id: str) -> list[dict[str, Any]]:
    """The artifact's reproducibility certificates the signed log records, each verified."""
    row = vault.resolve(artifact_id)
    found = []
    for logged in vault.history(row.id, {KIND}):
        if "statement" not in logged.event.details:
            continue
        try:
            trusted = trusted_statement(
                vault,
                logged,
                kind=CERTIFICATE_KIND,
                what=f"certificate of {row.id}",
                subject_sha256=row.content_digest.removeprefix("sha256:"),
            )
        except StatementError as exc:
            found.append({"index": logged.index, "verified": False, "reason": exc.message})
            continue
        predicate = trusted.predicate
        found.append(
            {
                "index": logged.index,
                "verified": True,
                "at": logged.event.ts,
                "statement": trusted.ref.to_dict(),
                "content_digest": predicate.get("outputs", {}).get("content_digest"),
                "git_commit": predicate.get("inputs", {}).get("git_commit"),
                "restored": bool(logged.event.details.get("restored")),
            }
        )
    return found
