"""``weightvault dr drill``: rehearse disaster recovery on a scratch vault, never on live data.

The drill is one logged operation in the live vault (``dr.drill_run``), written
as steps the CLI runs in a row and the ``dr-drill`` flow runs as tasks:

1. ``scratch_settings``: a scratch vault beside the live one: its own temporary
   home (keystore, catalog, log, trust root made by the normal ``init``) and
   bucket prefix ``<live prefix>-drill-<id>`` on the same endpoint, refused
   (DrillError) when any of its buckets is a live bucket;
2. ``choose``: the sample (``--artifacts`` or the newest ``--sample N`` hot and
   warm artifacts; cold ones are reported, not rehearsed: their objects are
   under compliance retention);
3. ``copy``: each one read from the live vault (a logged ``artifact.read``) and
   put into the scratch vault's hot tier;
4. ``lose_catalog`` + ``restore_catalog``: the scratch catalog deleted, rebuilt
   from the scratch store and log, each artifact verified: "store";
5. ``lose_objects`` + ``restore_objects``: the scratch tier's ciphertext deleted;
   ``recover --restore`` for each artifact (a rebuild kit is needed): "rebuild",
   else "lost" with the reason;
6. ``cleanup``: every scratch object and bucket removed (what object lock keeps
   is named in the report), the scratch home deleted.
"""

from __future__ import annotations

import contextlib
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
from weightvault.errors import DrillError, DrillVerifyError, VaultError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.lifecycle.rebuild import rebuild_catalog
from weightvault.lifecycle.recover import recover
from weightvault.logs import get_logger, register_secret
from weightvault.store import EmbeddedStore, bucket_roles
from weightvault.store.layout import files_prefix

log = get_logger(__name__)

KIND = "dr.drill_run"
DEFAULT_SAMPLE = 2
MAX_SAMPLE = 50
REHEARSED_TIERS = ("hot", "warm")


@dataclass
class ArtifactDrill:
    """One artifact's rehearsal: where it came from and how it came back from each loss."""

    artifact_id: str
    name: str
    tier: str
    content_digest: str
    scratch_id: str | None = None
    copy_seconds: float = 0.0
    catalog_loss: dict[str, Any] = field(default_factory=dict)
    object_loss: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report row."""
        return {
            "artifact_id": self.artifact_id,
            "name": self.name,
            "tier": self.tier,
            "content_digest": self.content_digest,
            "scratch_id": self.scratch_id,
            "copy_seconds": round(self.copy_seconds, 3),
            "catalog_loss": self.catalog_loss,
            "object_loss": self.object_loss,
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

    def to_dict(self) -> dict[str, Any]:
        """The published report (JSON)."""
        rows = [a.to_dict() for a in self.artifacts]
        final = [a.object_loss.get("how", "lost") for a in self.artifacts]
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
                "object_loss_recovered": sum(1 for f in final if f != "lost"),
                "lost": sum(1 for f in final if f == "lost"),
                "seconds": round(self.seconds, 3),
                "seconds_per_artifact": round(self.seconds / len(rows), 3) if rows else None,
            },
            "rebuild": self.rebuild,
            "cleanup": self.cleanup,
        }


# -- 1. the scratch vault --------------------------------------------------------


def scratch_settings(live: Settings, drill_id: str, home: Path) -> Settings:
    """The scratch vault's settings: own home and bucket prefix, same endpoint.

    An embedded live store is reached at its running endpoint with its admin
    credential (the scratch home has no store of its own). DrillError when a
    scratch bucket would be a live one.
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
    settings = replace(live, home=home, store=store, catalog_url=f"sqlite:///{home / 'catalog.db'}")
    check_scratch(live, settings)
    return settings


def check_scratch(live: Settings, scratch: Settings) -> None:
    """Refuse a scratch vault that shares a bucket, home or catalog with the live one."""
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
            reason = (
                "cold: its objects are under compliance retention and cannot be destroyed; "
                "rehearse escrow with `weightvault escrow decrypt`"
                if row.tier == "cold"
                else f"{row.tier}: not rehearsed"
            )
            skipped.append({"artifact_id": row.id, "tier": row.tier, "reason": reason})
    if not chosen:
        raise DrillError("the drill has no hot or warm artifact to rehearse")
    return chosen, skipped


# -- 3. copy ------------------------------------------------------------------------


def copy(live: Vault, scratch: Vault, row: ArtifactRow, ws: Path) -> ArtifactDrill:
    """Read one live artifact (logged) and put it into the scratch vault's hot tier."""
    item = ArtifactDrill(row.id, row.name, row.tier, row.content_digest)
    t = time.monotonic()
    out = ws / row.id
    try:
        live.get(row.id, out)
        result = ingest.put(scratch, out, row.name, "hot", labels={"drill-of": row.id})
    finally:
        shutil.rmtree(out, ignore_errors=True)
    item.scratch_id = result.artifact_id
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


def _check(scratch: Vault, item: ArtifactDrill) -> None:
    if item.scratch_id is None:
        raise DrillVerifyError(f"artifact {item.artifact_id} was never copied")
    report = scratch.verify(item.scratch_id)
    if report.content_digest != item.content_digest:
        raise DrillVerifyError(
            f"artifact {item.artifact_id} came back as {report.content_digest}, "
            f"not {item.content_digest}"
        )


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
            _check(scratch, item)
        except VaultError as exc:
            item.catalog_loss = {"how": "lost", "reason": exc.message}
        else:
            item.catalog_loss = {"how": "store"}
        item.catalog_loss["seconds"] = round(rebuilt + time.monotonic() - t, 3)
    return scratch


# -- 5. lose the tier's objects and restore them ------------------------------------------


def lose_objects(scratch: Vault, item: ArtifactDrill) -> int:
    """Delete every ciphertext object of one scratch artifact; how many went."""
    if item.scratch_id is None:
        return 0
    bucket = scratch.bucket("hot")
    gone = 0
    for obj in list(scratch.store.list(bucket, files_prefix(item.scratch_id))):
        scratch.store.remove(bucket, obj.key)
        gone += 1
    return gone


def restore_objects(scratch: Vault, item: ArtifactDrill, destroyed: int) -> None:
    """``recover --restore`` the lost artifact from its rebuild kit, then verify it."""
    t = time.monotonic()
    entry: dict[str, Any] = {"destroyed_objects": destroyed}
    try:
        if item.scratch_id is None:
            raise DrillVerifyError(f"artifact {item.artifact_id} was never copied")
        recover(scratch, item.scratch_id, restore_files=True)
        _check(scratch, item)
    except VaultError as exc:
        entry |= {"how": "lost", "reason": f"not rebuildable: {exc.message}"}
    else:
        entry["how"] = "rebuild"
    entry["seconds"] = round(time.monotonic() - t, 3)
    item.object_loss = entry


# -- 6. clean up ------------------------------------------------------------------------


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
        f"({s['seconds_per_artifact']} s per artifact).",
        "",
        "| artifact | tier | catalog lost: came back | s | objects lost: came back | s | reason |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in report["artifacts"]:
        c, o = a["catalog_loss"], a["object_loss"]
        reason = o.get("reason") or c.get("reason") or ""
        lines.append(
            f"| {a['artifact_id']} ({a['name']}) | {a['tier']} | {c.get('how')} | "
            f"{c.get('seconds')} | {o.get('how')} | {o.get('seconds')} | "
            f"{reason.replace('|', '/')} |"
        )
    for n in report["not_rehearsed"]:
        lines.append(f"| {n['artifact_id']} | {n['tier']} | not rehearsed | | | | {n['reason']} |")
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
            ws = run.settings.home.parent / "copy"
            make_private_dir(ws)
            run.artifacts = [copy(live, run.scratch, row, ws) for row in rows]
            lose_catalog(run.scratch)
            run.scratch = restore_catalog(run)
            for item in run.artifacts:
                restore_objects(run.scratch, item, lose_objects(run.scratch, item))
            run.seconds = time.monotonic() - started
            report = run.to_dict()
            op.details.update({"summary": report["summary"]})
    finally:
        run.cleanup = cleanup(run)
        shutil.rmtree(run.settings.home.parent, ignore_errors=True)
    report = run.to_dict()
    report["markdown"] = markdown(report)
    return report
