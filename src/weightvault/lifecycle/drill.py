"""``weightvault dr drill``: rehearse disaster recovery on a scratch vault, never on live data.

The drill is one logged operation in the live vault (``dr.drill_run``), written
as steps the CLI runs in a row and the ``dr-drill`` flow runs as tasks:

1. ``scratch_settings``: a scratch vault beside the live one: its own temporary
   home (keystore, catalog, log, trust root made by the normal ``init``) and
   bucket prefix ``<live prefix>-drill-<id>`` on the same endpoint, refused
   (DrillError) when any of its buckets is a live bucket; no tier of it keeps
   object retention (its cold bucket is locked but retains nothing), so the
   clean-up can remove everything; an escrow split of its own (k-of-n shares
   kept in memory only);
2. ``choose``: the sample (``--artifacts`` or the newest ``--sample N`` hot,
   warm and cold artifacts);
3. ``copy``: each one read from the live vault (a logged ``artifact.read``; the
   rebuild kit read under the drill's own logged run), put into the scratch hot
   tier with the live provenance and kit, and moved to its live tier through the
   real promotion steps, the admission being the live log's record of the live
   promotion;
4. ``lose_catalog`` + ``restore_catalog``: the scratch catalog deleted, rebuilt
   from the scratch store and log, each artifact verified: "store";
5. ``lose_objects`` + ``restore_objects`` (hot and warm): every version of the
   model files' ciphertext deleted (the kit's objects stay); ``recover --restore`` from the kit, the
   datasets pulled from a scratch DVC remote holding copies of the live
   remote's objects (read-only on live): "rebuild", else "lost" with the reason;
6. ``lose_keys`` + ``restore_from_escrow`` (cold): the scratch keystore, master
   key and catalog deleted; each cold artifact decrypted from the store with k
   escrow shares alone (``lifecycle.escrow.escrow_decrypt``): "escrow";
7. ``cleanup``: every scratch object and bucket removed (what object lock keeps
   is named in the report), the scratch home deleted.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from weightvault._fs import make_private_dir
from weightvault._time import iso, utcnow
from weightvault.artifacts import Vault
from weightvault.catalog import ArtifactRow
from weightvault.config import Settings
from weightvault.errors import DrillError, DrillVerifyError, NotFoundError, VaultError
from weightvault.lifecycle import ingest
from weightvault.lifecycle import promote as promotion
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.lifecycle.escrow import EscrowSplit, escrow_decrypt, split_escrow_key
from weightvault.lifecycle.rebuild import rebuild_catalog
from weightvault.lifecycle.recover import recover
from weightvault.logs import get_logger, register_secret
from weightvault.provenance import OMS_SIGNATURE_NAME, Provenance
from weightvault.records import REBUILD_KIT
from weightvault.store import DvcRemote, EmbeddedStore, bucket_roles
from weightvault.store.layout import files_prefix

log = get_logger(__name__)

KIND = "dr.drill_run"
DEFAULT_SAMPLE = 2
MAX_SAMPLE = 50
REHEARSED_TIERS = ("hot", "warm", "cold")
#: the promotions that bring a scratch copy (put into hot) to its live tier
PROMOTION_PATH = {"hot": (), "warm": ("warm",), "cold": ("warm", "cold")}
#: what the scratch promotions record as their policy: the live vault's admission
LIVE_ADMISSION = "live-admission"
ESCROW_THRESHOLD = 2
ESCROW_SHARES = 3
_DIR_LIMIT = 64 * 1024 * 1024
_MD5 = re.compile(r"[0-9a-f]{32}(\.dir)?")


@dataclass
class ArtifactDrill:
    """One artifact's rehearsal: where it came from and how it came back from each loss."""

    artifact_id: str
    name: str
    tier: str
    content_digest: str
    scratch_id: str | None = None
    scratch_tier: str | None = None
    kit: bool = False
    #: (path, DVC md5) of each dataset the provenance records
    datasets: tuple[tuple[str, str], ...] = ()
    copy_seconds: float = 0.0
    copy_error: str | None = None
    catalog_loss: dict[str, Any] = field(default_factory=dict)
    tier_loss: dict[str, Any] = field(default_factory=dict)

    @property
    def came_back(self) -> str:
        """How it came back from the loss of its tier (or keys): store|rebuild|escrow|lost."""
        return str(self.tier_loss.get("how", "lost"))

    def to_dict(self) -> dict[str, Any]:
        """The report row."""
        reason = self.tier_loss.get("reason") or self.catalog_loss.get("reason")
        return {
            "artifact_id": self.artifact_id,
            "name": self.name,
            "tier": self.tier,
            "content_digest": self.content_digest,
            "scratch_id": self.scratch_id,
            "scratch_tier": self.scratch_tier,
            "kit": self.kit,
            "copy_seconds": round(self.copy_seconds, 3),
            "catalog_loss": self.catalog_loss,
            "tier_loss": self.tier_loss,
            "came_back": self.came_back,
            "seconds": self.tier_loss.get("seconds"),
            "verify": self.tier_loss.get("verify", "not run"),
            "reason": reason,
        }


@dataclass
class DrillRun:
    """The scratch vault of one drill and what it rehearsed."""

    drill_id: str
    settings: Settings
    started: str
    artifacts: list[ArtifactDrill] = field(default_factory=list)
    not_rehearsed: list[dict[str, str]] = field(default_factory=list)
    rebuild: dict[str, Any] = field(default_factory=dict)
    cleanup: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    scratch: Vault | None = None
    escrow: EscrowSplit | None = None

    @property
    def workspace(self) -> Path:
        """The drill's private directory beside the scratch home (plaintext while copied)."""
        return self.settings.home.parent / "work"

    def to_dict(self) -> dict[str, Any]:
        """The published report (JSON)."""
        rows = [a.to_dict() for a in self.artifacts]
        final = [a.came_back for a in self.artifacts]
        by_path: dict[str, list[float]] = {}
        for a in self.artifacts:
            if a.came_back != "lost":
                by_path.setdefault(a.came_back, []).append(float(a.tier_loss.get("seconds", 0)))
        return {
            "drill_id": self.drill_id,
            "started": self.started,
            "scratch_prefix": self.settings.store.bucket_prefix,
            "artifacts": rows,
            "not_rehearsed": self.not_rehearsed,
            "summary": {
                "rehearsed": len(rows),
                "catalog_loss_recovered": sum(
                    1 for a in self.artifacts if a.catalog_loss.get("how") == "store"
                ),
                "recovered": {how: final.count(how) for how in ("rebuild", "escrow")},
                "lost": final.count("lost"),
                "seconds": round(self.seconds, 3),
                "seconds_per_artifact": round(self.seconds / len(rows), 3) if rows else None,
                "seconds_to_recover": {
                    how: round(sum(t) / len(t), 3) for how, t in sorted(by_path.items())
                },
            },
            "rebuild": self.rebuild,
            "cleanup": self.cleanup,
        }


# -- 1. the scratch vault --------------------------------------------------------


def scratch_settings(live: Settings, drill_id: str, home: Path) -> Settings:
    """The scratch vault's settings: own home and bucket prefix, same endpoint.

    An embedded live store is reached at its running endpoint with its admin
    credential (the scratch home has no store of its own). No tier keeps
    retention (``retention_days = 0``): the scratch cold bucket is versioned and
    locked as the live one, but COMPLIANCE retention on its objects would outlive
    the drill. DrillError when a scratch bucket would be a live one.
    """
    prefix = f"{live.store.bucket_prefix}-drill-{drill_id}"
    store = replace(live.store, bucket_prefix=prefix)
    if live.store.embedded:
        server = EmbeddedStore.of(live)
        creds = server.credentials()
        register_secret(creds.secret_key)
        store = replace(
            store,
            endpoint=server.endpoint(),
            access_key=creds.access_key,
            secret_key=creds.secret_key,
            role="admin",
        )
    tiers = {name: replace(tier, retention_days=0) for name, tier in live.tiers.items()}
    settings = replace(
        live,
        home=home,
        store=store,
        tiers=tiers,
        catalog_url=f"sqlite:///{home / 'catalog.db'}",
    )
    check_scratch(live, settings)
    return settings


def check_scratch(live: Settings, scratch: Settings) -> None:
    """Refuse a scratch vault that shares a bucket, home or catalog with the live one."""
    if live.store.single_bucket or scratch.store.single_bucket:
        raise DrillError(
            "the drill needs the bucket-per-role layout: in the single-bucket layout "
            f"([store] bucket {live.store.single_bucket or scratch.store.single_bucket}) its "
            "scratch vault would use the live prefixes; refusing to run"
        )
    live_buckets = {live.store.bucket(r) for r in bucket_roles()}
    shared = sorted(live_buckets & {scratch.store.bucket(r) for r in bucket_roles()})
    if scratch.store.bucket_prefix == live.store.bucket_prefix or shared:
        raise DrillError(
            f"the drill's scratch prefix {scratch.store.bucket_prefix!r} reaches live buckets "
            f"({', '.join(shared) or live.store.bucket_prefix}); refusing to run"
        )
    if scratch.home.resolve() == live.home.resolve() or scratch.catalog_url == live.catalog_url:
        raise DrillError("the drill's scratch home or catalog is the live one; refusing to run")


def open_scratch(live: Vault, settings: Settings) -> Vault:
    """``init`` the scratch vault (buckets, keystore, log keys) and open it as the live actor.

    No capability probe: the live vault proved the endpoint, and the probe's
    object-lock objects would outlive the drill by a day.
    """
    init_vault(settings, start_store=False, identity=str(live.identity.path), probe=False)
    return Vault.open(settings, identity=live.identity)


def split_scratch_escrow(scratch: Vault) -> EscrowSplit:
    """The scratch vault's own escrow split; its shares stay in this process's memory."""
    split = split_escrow_key(scratch.keys, threshold=ESCROW_THRESHOLD, shares=ESCROW_SHARES)
    for share in split.shares:
        register_secret(share)
    return split


# -- 2. the sample ----------------------------------------------------------------


def choose(
    live: Vault, sample: int = DEFAULT_SAMPLE, artifact_ids: tuple[str, ...] = ()
) -> tuple[list[ArtifactRow], list[dict[str, str]]]:
    """The artifacts to rehearse and those named but not rehearsed (with the reason)."""
    if not 1 <= sample <= MAX_SAMPLE:
        raise DrillError(f"--sample must be 1 to {MAX_SAMPLE}, not {sample}")
    skipped: list[dict[str, str]] = []
    if artifact_ids:
        rows = [live.resolve(a) for a in artifact_ids]
    else:
        rows = [r for r in live.catalog.list_artifacts() if r.tier in REHEARSED_TIERS]
        rows = rows[:sample]
    chosen = []
    for row in rows:
        if row.tier in REHEARSED_TIERS:
            chosen.append(row)
        else:
            reason = f"{row.tier}: not rehearsed (no reads until it is released)"
            skipped.append({"artifact_id": row.id, "tier": row.tier, "reason": reason})
    if not chosen:
        raise DrillError("the drill has no hot, warm or cold artifact to rehearse")
    return chosen, skipped


# -- 3. copy ------------------------------------------------------------------------


def _signed_for_oms(vault: Vault, artifact_id: str) -> bool:
    """Whether the artifact's logged put made an OMS signature (which get writes out)."""
    return any(
        isinstance(e.event.details.get("oms_signature"), dict)
        for e in vault.history(artifact_id, {"artifact.ingested"})
    )


def _read_kit(
    live: Vault, row: ArtifactRow, dest: Path
) -> tuple[list[tuple[str, Path]], Provenance | None, dict[str, str]]:
    """The live artifact's rebuild kit (decrypted, each file checked), provenance, labels."""
    manifest, dek = live.load_manifest(row.id, row.tier)
    try:
        statement = live.verify_statement(row.id, row.tier, manifest)
        files: list[tuple[str, Path]] = []
        for i, entry in enumerate(manifest.files_with_role(REBUILD_KIT)):
            target = dest / f"{i:06d}"
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as fh:
                live.decrypt_file(row, entry, dek, fh)
            files.append((entry.path, target))
    finally:
        del dek
    extra = statement["predicate"]["buildDefinition"]["externalParameters"].get("extra", {})
    raw = extra.get("provenance")
    # The parent is a live artifact id the scratch vault does not hold.
    provenance = replace(Provenance.from_dict(raw), parent=None) if raw else None
    return files, provenance, dict(manifest.labels)


def _admitted(live: Vault, artifact_id: str, target: str) -> str:
    """Why the scratch copy may enter ``target``: the live log's promotion of the original."""
    found = [e for e in live.history(artifact_id, {"artifact.promoted"}) if e.event.tier == target]
    if not found:
        raise DrillError(f"the live log records no promotion of {artifact_id} into {target}")
    return (
        f"admitted by the live vault: live log entry {found[-1].index} records "
        f"{artifact_id} promoted into {target}"
    )


def promote_copy(scratch: Vault, scratch_id: str, target: str, why: str) -> None:
    """Move a scratch copy one tier up through the real promotion steps.

    Claim, copy, rewrap, attestation, commit, escrow (cold) and source removal
    are the live ones; only the admission is not re-decided: the gates are the
    integrity check and the live vault's recorded admission (``why``).
    """
    details = {"to": target, "justification": why}
    with scratch.artifact_operation("artifact.promotion", scratch_id, details) as op:
        p = promotion.plan(scratch, scratch_id, target, justification=why)
        integrity = promotion.check_integrity(scratch, p)
        gates = (integrity, promotion.Gate(LIVE_ADMISSION, True, (why,)))
        if not integrity.passed:
            promotion.refuse(scratch, p, gates)
        held = promotion.claim(scratch, p)
        try:
            promotion.copy(scratch, p, held)
            promotion.rewrap(scratch, p, held)
            promotion.commit(scratch, p, held, gates, LIVE_ADMISSION)
        except BaseException:
            with contextlib.suppress(VaultError):
                promotion.abandon(scratch, p, held)
            raise
        op.details["policy_digest"] = LIVE_ADMISSION


def copy(live: Vault, scratch: Vault, row: ArtifactRow, ws: Path) -> ArtifactDrill:
    """Copy one live artifact, with its rebuild kit, into the same tier of the scratch vault.

    The model files are read with ``get`` (a logged ``artifact.read`` in the live
    log); the kit's files under the drill's run. The scratch copy is put into hot
    with the live provenance and kit (same content digest), then promoted to the
    live tier (:func:`promote_copy`).
    """
    item = ArtifactDrill(row.id, row.name, row.tier, row.content_digest)
    t = time.monotonic()
    out = ws / row.id
    try:
        live.get(row.id, out / "files")
        if _signed_for_oms(live, row.id):
            # get wrote the OMS signature beside the files: no model file of the copy.
            (out / "files" / OMS_SIGNATURE_NAME).unlink(missing_ok=True)
        kit_files, provenance, labels = _read_kit(live, row, out / "kit")
        item.kit = bool(kit_files)
        if provenance is not None and provenance.datasets:
            item.datasets = tuple((d.path, d.dvc_md5) for d in provenance.datasets if d.dvc_md5)
        result = ingest.put(
            scratch,
            out / "files",
            row.name,
            "hot",
            labels=labels | {"drill-of": row.id},
            provenance=provenance,
            kit_files=kit_files,
        )
        item.scratch_id = result.artifact_id
        for target in PROMOTION_PATH[row.tier]:
            promote_copy(scratch, result.artifact_id, target, _admitted(live, row.id, target))
        item.scratch_tier = scratch.resolve(result.artifact_id).tier
    except VaultError as exc:
        item.copy_error = exc.message
    finally:
        shutil.rmtree(out, ignore_errors=True)
    item.copy_seconds = time.monotonic() - t
    return item


# -- 4. lose and rebuild the catalog ----------------------------------------------------


def _catalog_files(settings: Settings) -> list[Path]:
    db = Path(settings.catalog_url.removeprefix("sqlite:///"))
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def lose_catalog(scratch: Vault) -> int:
    """Delete the scratch catalog; how many files went."""
    with contextlib.suppress(Exception):
        scratch.catalog.engine.dispose()
    gone = 0
    for path in _catalog_files(scratch.settings):
        if path.exists():
            path.unlink()
            gone += 1
    return gone


def _copied(item: ArtifactDrill) -> str:
    if item.scratch_id is None or item.copy_error is not None:
        raise DrillVerifyError(
            f"artifact {item.artifact_id} was never copied: {item.copy_error or 'no copy'}"
        )
    return item.scratch_id


def _check(scratch: Vault, item: ArtifactDrill) -> str:
    """Verify the scratch copy (every file decrypted and hashed); the verify result."""
    report = scratch.verify(_copied(item))
    if report.content_digest != item.content_digest:
        raise DrillVerifyError(
            f"artifact {item.artifact_id} came back as {report.content_digest}, "
            f"not {item.content_digest}"
        )
    return f"ok: {report.files} file(s), {report.bytes} bytes decrypted and hashed"


def restore_catalog(run: DrillRun) -> Vault:
    """Rebuild the scratch catalog from its store and log; verify each artifact."""
    t = time.monotonic()
    scratch = Vault.open(run.settings, identity=run.scratch.identity if run.scratch else None)
    result = rebuild_catalog(scratch)
    rebuilt = time.monotonic() - t
    run.rebuild = {k: result[k] for k in ("artifacts", "events", "log_entries", "damaged")}
    for item in run.artifacts:
        t = time.monotonic()
        try:
            verified = _check(scratch, item)
        except VaultError as exc:
            item.catalog_loss = {"how": "lost", "verify": "failed", "reason": exc.message}
        else:
            item.catalog_loss = {"how": "store", "verify": verified}
        item.catalog_loss["seconds"] = round(rebuilt + time.monotonic() - t, 3)
    return scratch


# -- 5. lose the tier's objects and rebuild them ------------------------------------------


def dvc_object_key(md5: str) -> str | None:
    """Where a DVC 3 remote keeps the object of ``md5`` (``files/md5/ab/cdef...``).

    None for anything but 32 hex digits (and ``.dir``): a ``.dir`` listing read
    from the store names the keys copied, so it cannot name a path outside the
    scratch remote.
    """
    if _MD5.fullmatch(md5) is None:
        return None
    return f"files/md5/{md5[:2]}/{md5[2:]}"


def _fetch(live: Vault, key: str, root: Path) -> Path | None:
    """Copy one object of the live DVC bucket into the scratch remote (a GET only)."""
    target = root / key
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with live.store.open(live.bucket("dvc"), key) as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
    except NotFoundError:
        target.unlink(missing_ok=True)
        return None
    return target


def dataset_remote(live: Vault, items: list[ArtifactDrill], root: Path) -> DvcRemote:
    """A scratch DVC remote (a local directory) with the sample's datasets, copied from live.

    Only the objects the recorded datasets need are read from the live DVC bucket
    (GETs; nothing is written there) and the pipeline code the rebuild runs gets
    no store credential. An object the live remote lacks is left out: the
    rebuild's ``dvc pull`` then fails and the artifact is reported lost with why.
    """
    make_private_dir(root)
    for item in items:
        for _path, md5 in item.datasets:
            key = dvc_object_key(md5)
            listing = _fetch(live, key, root) if key else None
            if listing is None or not md5.endswith(".dir"):
                continue
            if listing.stat().st_size > _DIR_LIMIT:
                continue
            try:
                entries = json.loads(listing.read_bytes())
            except ValueError:
                continue  # DVC's own check fails it at pull, named
            for entry in entries if isinstance(entries, list) else []:
                key = dvc_object_key(str(entry.get("md5"))) if isinstance(entry, dict) else None
                if key is not None:
                    _fetch(live, key, root)
    return DvcRemote(str(root), "", "", "")


def lose_objects(scratch: Vault, item: ArtifactDrill) -> int:
    """Delete every version of each model file's ciphertext of one scratch copy; how many.

    The rebuild kit's objects stay: they are what ``recover`` rebuilds from (a
    loss that takes them too is not recoverable by a rebuild, and is reported so).
    """
    if item.scratch_id is None or item.scratch_tier is None:
        return 0
    bucket = scratch.bucket(item.scratch_tier)
    manifest, dek = scratch.load_manifest(item.scratch_id, item.scratch_tier)
    del dek
    model = {f.object_key for f in manifest.model_files}
    gone = 0
    for obj in list(scratch.store.list(bucket, files_prefix(item.scratch_id), versions=True)):
        if obj.key in model:
            scratch.store.remove(bucket, obj.key, obj.version_id)
            gone += 1
    return gone


def restore_objects(
    scratch: Vault, item: ArtifactDrill, destroyed: int, remote: DvcRemote | None = None
) -> None:
    """``recover --restore`` the lost copy from its rebuild kit, then verify it."""
    t = time.monotonic()
    entry: dict[str, Any] = {"destroyed": "model objects", "destroyed_objects": destroyed}
    try:
        recover(scratch, _copied(item), restore_files=True, remote=remote)
        entry["verify"] = _check(scratch, item)
    except VaultError as exc:
        entry |= {"how": "lost", "reason": f"not rebuildable: {exc.message}"}
    else:
        entry["how"] = "rebuild"
    entry["seconds"] = round(time.monotonic() - t, 3)
    item.tier_loss = entry


# -- 6. lose the keys and restore from escrow -----------------------------------------------


def lose_keys(scratch: Vault) -> int:
    """Delete the scratch keystore, master key and catalog (the home's keys); how many went."""
    gone = lose_catalog(scratch)
    for path in (scratch.settings.keystore_path, scratch.settings.master_key_path):
        if path.exists():
            path.unlink()
            gone += 1
    return gone


def restore_from_escrow(run: DrillRun, item: ArtifactDrill, destroyed: int) -> None:
    """Decrypt a cold copy with the store and k escrow shares alone; check its digest."""
    t = time.monotonic()
    entry: dict[str, Any] = {
        "destroyed": "keystore, master key and catalog",
        "files_lost": destroyed,
    }
    out = run.workspace / f"escrow-{item.artifact_id}"
    try:
        if run.escrow is None or run.scratch is None:
            raise DrillVerifyError("the scratch vault has no escrow split")
        restored = escrow_decrypt(
            run.settings,
            _copied(item),
            run.escrow.shares[: run.escrow.threshold],
            out,
            store=run.scratch.store,
        )
        if restored.content_digest != item.content_digest:
            raise DrillVerifyError(
                f"artifact {item.artifact_id} came back from escrow as {restored.content_digest}, "
                f"not {item.content_digest}"
            )
    except VaultError as exc:
        entry |= {"how": "lost", "verify": "failed", "reason": f"not from escrow: {exc.message}"}
    else:
        entry |= {
            "how": "escrow",
            "verify": (
                f"ok: {restored.files} file(s), {restored.bytes} bytes decrypted with "
                f"{run.escrow.threshold} of {len(run.escrow.shares)} escrow shares and hashed"
            ),
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)
    entry["seconds"] = round(time.monotonic() - t, 3)
    item.tier_loss = entry


# -- 7. clean up ------------------------------------------------------------------------


def cleanup(run: DrillRun) -> dict[str, Any]:
    """Remove every scratch object version and bucket, then the scratch home.

    What the store keeps (object lock, or a bucket it will not delete) is named
    in ``left`` with the reason.
    """
    left: dict[str, str] = {}
    removed = 0
    if run.scratch is not None:
        store = run.scratch.store
        for role in bucket_roles():
            bucket = run.settings.store.bucket(role)
            kept = 0
            try:
                for obj in list(store.list(bucket, versions=True)):
                    try:
                        store.remove(bucket, obj.key, obj.version_id)
                        removed += 1
                    except VaultError:
                        kept += 1
                if kept:
                    left[bucket] = f"{kept} object version(s) kept by object lock"
                else:
                    store.client.remove_bucket(bucket)
            except Exception as exc:  # the drill reports what it could not remove
                code = getattr(exc, "code", None) or type(exc).__name__
                left[bucket] = f"not removed: {code}"
        with contextlib.suppress(Exception):
            run.scratch.catalog.engine.dispose()
    shutil.rmtree(run.settings.home, ignore_errors=True)
    return {
        "objects_removed": removed,
        "left": left,
        "home_removed": not run.settings.home.exists(),
    }


# -- the report -----------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    """The report as markdown (the CLI and the flow's Prefect artifact)."""
    s = report["summary"]
    lines = [
        f"# DR drill {report['drill_id']}",
        "",
        f"Scratch prefix `{report['scratch_prefix']}`, started {report['started']}: "
        f"{s['rehearsed']} artifact(s) in {s['seconds']} s "
        f"({s['seconds_per_artifact']} s per artifact); recovered {s['recovered']}, "
        f"lost {s['lost']}.",
        "",
        "| artifact | tier | catalog lost | s | lost | came back | s | verify | reason |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for a in report["artifacts"]:
        c, t = a["catalog_loss"], a["tier_loss"]
        reason = str(a.get("reason") or "").replace("|", "/")
        lines.append(
            f"| {a['artifact_id']} ({a['name']}) | {a['tier']} | {c.get('how')} | "
            f"{c.get('seconds')} | {t.get('destroyed', '')} | {a['came_back']} | "
            f"{t.get('seconds')} | {str(a.get('verify')).replace('|', '/')} | {reason} |"
        )
    for n in report["not_rehearsed"]:
        lines.append(
            f"| {n['artifact_id']} | {n['tier']} | not rehearsed | | | | | | {n['reason']} |"
        )
    left = report["cleanup"].get("left") or {}
    lines += ["", f"Scratch removed: {report['cleanup'].get('objects_removed', 0)} object(s)"]
    if left:
        lines.append("; kept by the store: " + ", ".join(f"{b} ({r})" for b, r in left.items()))
    return "\n".join(lines) + "\n"


# -- in a row ---------------------------------------------------------------------------


def begin(live: Vault, drill_id: str | None = None) -> DrillRun:
    """A new drill: its id, scratch home (0700) and scratch settings (checked)."""
    drill_id = drill_id or secrets.token_hex(4)
    home = Path(tempfile.mkdtemp(prefix=f"weightvault-drill-{drill_id}-"))
    make_private_dir(home)
    try:
        settings = scratch_settings(live.settings, drill_id, home / "home")
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)
        raise
    return DrillRun(drill_id, settings, iso(utcnow()))


def rehearse(live: Vault, run: DrillRun, rows: list[ArtifactRow]) -> None:
    """Copy, lose and restore (steps 3-6) on an opened scratch vault."""
    if run.scratch is None:
        raise DrillError("the drill's scratch vault is not open")
    ws = run.workspace
    make_private_dir(ws)
    if any(row.tier == "cold" for row in rows):
        run.escrow = split_scratch_escrow(run.scratch)
    run.artifacts = [copy(live, run.scratch, row, ws) for row in rows]
    lose_catalog(run.scratch)
    run.scratch = restore_catalog(run)
    warm_or_hot = [a for a in run.artifacts if a.tier != "cold"]
    remote = dataset_remote(live, warm_or_hot, ws / "dvc-remote")
    for item in warm_or_hot:
        try:
            destroyed = lose_objects(run.scratch, item)
        except VaultError as exc:
            item.tier_loss = {"how": "lost", "reason": f"not destroyed: {exc.message}"}
            continue
        restore_objects(run.scratch, item, destroyed, remote)
    cold = [a for a in run.artifacts if a.tier == "cold"]
    if cold:
        gone = lose_keys(run.scratch)
        for item in cold:
            restore_from_escrow(run, item, gone)


def run_drill(
    live: Vault, *, sample: int = DEFAULT_SAMPLE, artifact_ids: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Every step above, in a row, as the live log's ``dr.drill_run``; returns the report."""
    rows, skipped = choose(live, sample, artifact_ids)
    run = begin(live)
    asked = {"scratch_prefix": run.settings.store.bucket_prefix, "sample": len(rows)}
    started = time.monotonic()
    try:
        with live.operation(KIND, details=asked) as op:
            run.not_rehearsed = skipped
            run.scratch = open_scratch(live, run.settings)
            rehearse(live, run, rows)
            run.seconds = time.monotonic() - started
            report = run.to_dict()
            op.details.update({"summary": report["summary"]})
    finally:
        run.cleanup = cleanup(run)
        shutil.rmtree(run.settings.home.parent, ignore_errors=True)
    report = run.to_dict()
    report["markdown"] = markdown(report)
    return report
