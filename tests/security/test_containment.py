"""Containment on the real store: tier isolation from the signed log, the contain playbook
(grants revoked at the store, artifact quarantined, keys compromised and rekeyed, an incident
bundle that verifies offline), idempotence, and lifting only with signed approvals.

One vault and one artifact for the module; the tests run in file order on that state.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import urllib3
from sqlalchemy import delete, select, update

from tests.conftest import REPO, make_tree
from tests.support.approvals import approved
from tests.support.cli_vault import cli_vault
from tests.support.payloads import weights
from weightvault._json import canonical_json
from weightvault.artifacts import Vault
from weightvault.catalog._catalog import log_entries
from weightvault.config import Settings
from weightvault.errors import (
    ConflictError,
    IncidentBundleError,
    IntegrityError,
    LiftRefusedError,
    QuarantinedError,
    TierIsolatedError,
)
from weightvault.keys import KeyState, create_identity, parse_recipient
from weightvault.lifecycle import ingest
from weightvault.lifecycle.compromise import resolve_key
from weightvault.lifecycle.contain import (
    ContainmentPlan,
    ContainmentResult,
    contain,
    lift_containment,
    verify_incident_bundle,
)
from weightvault.lifecycle.grants import issue_grant, list_grants, revoke_grants_of
from weightvault.lifecycle.isolation import isolate_tier, restore_tier, tier_states
from weightvault.lifecycle.rekey import remaining_on
from weightvault.lifecycle.trust import load_root_file
from weightvault.store import EmbeddedStore
from weightvault.store.layout import grant_files_prefix

CLI = [sys.executable, "-m", "weightvault.cli"]


@dataclass
class World:
    settings: Settings
    vault: Vault
    artifact_id: str
    put_event: str
    grant_url: str
    root: Path
    env: dict[str, str]
    work: Path


@pytest.fixture(scope="module")
def world(s3_server: EmbeddedStore, tmp_path_factory: pytest.TempPathFactory) -> World:
    work = tmp_path_factory.mktemp("contain")
    made_vault = cli_vault(s3_server, work)
    settings, vault, root = made_vault.settings, made_vault.vault, made_vault.root
    src = make_tree(work / "src", {"model.bin": weights(20 * 1024), "config.json": b"{}\n"})
    artifact_id = ingest.put(vault, src, "contained-model").artifact_id
    (row,) = vault.catalog.log_search(
        artifact_id=artifact_id, kind="artifact.ingested", phase="outcome"
    )
    collab = create_identity("mallory", directory=work / "collab-ids")
    issued = issue_grant(
        vault,
        artifact_id,
        parse_recipient(canonical_json(collab.recipient()), "r"),
        timedelta(minutes=30),
    )
    outer = json.loads(issued.grant_file)
    url = json.loads(base64.b64decode(outer["grant"]["payload"]))["files"][0]["url"]
    env = made_vault.env
    return World(settings, vault, artifact_id, str(row["id"]), url, root, env, work)


def _cli(w: World, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args, "--json"], capture_output=True, text=True, cwd=REPO, env=w.env, check=False
    )


def _refusals(vault: Vault, kind: str) -> list[str]:
    rows = vault.catalog.log_search(kind=kind, phase="outcome", outcome="refused")
    return [str(r["reason"]) for r in rows]


# -- tier isolation -----------------------------------------------------------------------


def test_an_isolated_tier_refuses_reads_and_writes_until_restored(world: World) -> None:
    w = world
    isolated = _cli(w, "tier", "isolate", "hot", "--justification", "tier-wide incident drill")
    assert isolated.returncode == 0, isolated.stderr
    index = json.loads(isolated.stdout)["log_index"]
    with pytest.raises(ConflictError, match=rf"already isolated \(log entry {index}\)"):
        isolate_tier(w.vault, "hot", justification="twice")
    assert {s.tier: s.isolated for s in tier_states(w.vault)} == {
        "hot": True,
        "warm": False,
        "cold": False,
    }
    # Another process (the CLI) sees it from the log and refuses the read: exit 68, one line.
    out = w.work / "isolated-get"
    proc = _cli(w, "get", w.artifact_id, "--out", str(out))
    assert proc.returncode == TierIsolatedError.exit_code, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "tier_isolated" in proc.stderr
    assert not out.exists()
    # A new write into the tier is refused before anything is stored.
    src = make_tree(w.work / "new", {"w.bin": b"n" * 1024})
    with pytest.raises(TierIsolatedError, match="tier hot is isolated"):
        ingest.put(w.vault, src, "during-isolation")
    assert not [a for a in w.vault.catalog.list_artifacts() if a.name == "during-isolation"]
    # Both refusals are in the log; containment's own checks still run.
    assert any("tier_isolated" in r for r in _refusals(w.vault, "artifact.read"))
    assert any("tier_isolated" in r for r in _refusals(w.vault, "artifact.ingested"))
    w.vault.verify(w.artifact_id)
    # Unindexed, or with its kind column edited, the isolation is still found (the log).
    with w.vault.catalog.engine.begin() as conn:
        conn.execute(update(log_entries).where(log_entries.c.idx == index).values(kind="x.y"))
    with pytest.raises(TierIsolatedError):
        Vault.open(w.settings).get(w.artifact_id, w.work / "edited-kind")
    with w.vault.catalog.engine.begin() as conn:
        conn.execute(delete(log_entries).where(log_entries.c.idx == index))
    with pytest.raises(TierIsolatedError):
        Vault.open(w.settings).get(w.artifact_id, w.work / "deleted-row")
    restored = restore_tier(w.vault, "hot", justification="drill over")
    assert restored > index
    w.vault.get(w.artifact_id, w.work / "after-restore")
    assert (w.work / "after-restore" / "config.json").read_bytes() == b"{}\n"


def test_a_forged_restore_row_does_not_lift_an_isolation(world: World) -> None:
    w = world
    index = isolate_tier(w.vault, "hot", justification="second drill")
    # The attacker with write access to the catalog turns the newest indexed entry into
    # a `tier.restored` of hot: not in the signed log, so every tiered operation is refused.
    with w.vault.catalog.engine.connect() as conn:
        last = conn.execute(
            select(log_entries.c.idx, log_entries.c.entry).order_by(log_entries.c.idx.desc())
        ).first()
    assert last is not None
    assert last[0] >= index
    forged = json.loads(last[1])
    forged.update(kind="tier.restored", tier="hot", phase="outcome", outcome="ok")
    with w.vault.catalog.engine.begin() as conn:
        conn.execute(
            update(log_entries)
            .where(log_entries.c.idx == last[0])
            .values(kind="tier.restored", tier="hot", entry=canonical_json(forged).decode())
        )
    fresh = Vault.open(w.settings)
    with pytest.raises(IntegrityError, match="isolation state cannot be established"):
        fresh.get(w.artifact_id, w.work / "forged-get")
    assert not (w.work / "forged-get").exists()
    with w.vault.catalog.engine.begin() as conn:
        conn.execute(update(log_entries).where(log_entries.c.idx == last[0]).values(entry=last[1]))
        conn.execute(delete(log_entries).where(log_entries.c.idx == last[0]))
    # With the index honest again (caught up from the tiles) the isolation still holds.
    with pytest.raises(TierIsolatedError):
        Vault.open(w.settings).get(w.artifact_id, w.work / "forged-get")
    restore_tier(w.vault, "hot", justification="second drill over")


def test_grants_revoke_by_recipient_revokes_each_live_grant(world: World) -> None:
    w = world
    eve = create_identity("eve", directory=w.work / "eve-ids")
    recipient = parse_recipient(canonical_json(eve.recipient()), "r")
    ids = [
        issue_grant(w.vault, w.artifact_id, recipient, timedelta(minutes=5)).grant_id
        for _ in range(2)
    ]
    proc = _cli(w, "grants", "revoke", "--recipient", "eve")
    assert proc.returncode == 0, proc.stderr
    done = json.loads(proc.stdout)
    assert sorted(d["grant_id"] for d in done["revoked"]) == sorted(ids)
    states = {g.grant_id: g.state for g in list_grants(w.vault)}
    assert {states[g] for g in ids} == {"revoked"}
    bucket = w.settings.store.bucket("grants")
    assert not any(True for g in ids for _ in w.vault.store.list(bucket, grant_files_prefix(g)))
    # Again: nothing left to revoke, each named as already revoked, nothing logged.
    before = len(w.vault.catalog.log_search(kind="grant.revoked", phase="outcome"))
    skipped = revoke_grants_of(w.vault, recipient="eve")
    assert skipped == ([], sorted(skipped[1]))
    assert sorted(skipped[1]) == sorted(ids)
    assert len(w.vault.catalog.log_search(kind="grant.revoked", phase="outcome")) == before


# -- the playbook -------------------------------------------------------------------------


def test_compromise_keys_marks_the_key_and_rekeys(world: World) -> None:
    w = world
    kek = resolve_key(w.vault, "kek-hot").ref
    plan = ContainmentPlan.from_incident(
        {
            "id": "inc-keys",
            "rule": "key_exfiltration",
            "severity": "high",
            "keys": [kek],
            "actions": ["compromise_keys", "rekey"],
        }
    )
    # Through the CLI, with the incident given as parameters.
    proc = _cli(
        w,
        "contain",
        "--incident",
        "inc-keys",
        "--rule",
        "key_exfiltration",
        "--severity",
        "high",
        "--key",
        kek,
        "--action",
        "compromise_keys",
        "--action",
        "rekey",
        "--out",
        str(w.work / "inc-keys"),
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["failed_at"] is None
    steps = {s["name"]: s for s in result["steps"]}
    assert steps["compromise_keys"]["status"] == "done"
    assert steps["rekey_keys"]["status"] == "done"
    assert steps["compromise_keys"]["log_indexes"]
    assert steps["rekey_keys"]["log_indexes"]
    rec = resolve_key(w.vault, kek)
    assert rec.state == KeyState.COMPROMISED
    assert remaining_on(w.vault, kek) == 0
    # The artifact still reads, under the fresh key version.
    w.vault.verify(w.artifact_id)
    again = contain(w.vault, plan, w.work / "inc-keys")
    assert {s.name: s.status for s in again.steps}["compromise_keys"] == "skipped"
    assert {s.name: s.status for s in again.steps}["rekey_keys"] == "skipped"


@pytest.fixture(scope="module")
def contained(world: World) -> tuple[ContainmentPlan, ContainmentResult]:
    plan = ContainmentPlan.from_incident(
        {
            "id": "inc-7",
            "rule": "read_spike",
            "severity": "medium",
            "artifacts": [world.artifact_id],
            "principals": ["mallory"],
            "actions": ["quarantine", "revoke_grants"],
            "evidence": [world.put_event],
            "summary": "reads of one artifact far above its baseline",
        }
    )
    return plan, contain(world.vault, plan, world.work / "inc-7")


def test_contain_quarantines_revokes_and_bundles_the_evidence(
    world: World, contained: tuple[ContainmentPlan, ContainmentResult]
) -> None:
    w = world
    _, result = contained
    assert result.failed_at is None
    steps = {s.name: s for s in result.steps}
    assert [s.name for s in result.steps] == [
        "revoke_grants",
        "quarantine_artifacts",
        "bundle_evidence",
    ]
    assert all(s.status == "done" and s.log_indexes for s in steps.values())
    # Quarantined: reads refused.
    with pytest.raises(QuarantinedError):
        w.vault.get(w.artifact_id, w.work / "q-get")
    # mallory's grant is revoked at the store: the still validly signed URL is dead.
    assert urllib3.request("GET", w.grant_url, timeout=30.0, retries=False).status == 404
    assert {g.state for g in list_grants(w.vault)} == {"revoked"}
    # The report lists each step with its log indexes; the summary entry is in the log.
    report = result.report
    for s in steps.values():
        assert f"| {s.name} | done | {', '.join(map(str, s.log_indexes))} |" in report
    assert (w.work / "inc-7" / "report-1.md").read_text() == report
    summaries = w.vault.catalog.log_search(kind="incident.contained", phase="outcome", outcome="ok")
    (summary,) = [r for r in summaries if r["entry"]["details"]["incident"] == "inc-7"]
    assert summary["idx"] == result.contained_index
    assert summary["entry"]["details"]["bundle_sha256"] == result.bundle_sha256
    # The bundle verifies offline (no store, no home) against the pinned root.
    bundle = result.bundle
    env = {"PATH": os.environ["PATH"], "HOME": str(w.work / "offline-home")}
    proc = subprocess.run(
        [*CLI, "verify-incident-bundle", str(bundle), "--root", str(w.root), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    checked = json.loads(proc.stdout)
    assert checked["incident_id"] == "inc-7"
    assert checked["evidence"] == 1
    assert checked["sha256"] == result.bundle_sha256


def test_an_edited_incident_bundle_is_refused(
    world: World, contained: tuple[ContainmentPlan, ContainmentResult], tmp_path: Path
) -> None:
    import shutil

    bundle = contained[1].bundle
    assert bundle is not None
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    entry = next((copy / "proofs").glob("*.entry"))
    entry.write_bytes(entry.read_bytes().replace(b'"ok"', b'"no"'))
    with pytest.raises(IncidentBundleError, match="does not match its digest"):
        verify_incident_bundle(copy, load_root_file(world.root))


def test_containing_twice_skips_what_is_done(
    world: World, contained: tuple[ContainmentPlan, ContainmentResult]
) -> None:
    w = world
    plan, _ = contained
    quarantines = len(w.vault.history(w.artifact_id, {"artifact.quarantined"}))
    revocations = len(w.vault.catalog.log_search(kind="grant.revoked", phase="outcome"))
    again = contain(w.vault, plan, w.work / "inc-7")
    statuses = {s.name: s.status for s in again.steps}
    assert statuses["revoke_grants"] == "skipped"
    assert statuses["quarantine_artifacts"] == "skipped"
    assert "already" in {s.name: s.detail for s in again.steps}["quarantine_artifacts"]
    assert len(w.vault.history(w.artifact_id, {"artifact.quarantined"})) == quarantines
    assert len(w.vault.catalog.log_search(kind="grant.revoked", phase="outcome")) == revocations
    assert (w.work / "inc-7" / "report-2.md").exists()


def test_lifting_needs_the_signed_release_approvals(
    world: World, contained: tuple[ContainmentPlan, ContainmentResult]
) -> None:
    w = world
    plan, _ = contained
    with pytest.raises(LiftRefusedError, match=w.artifact_id):
        lift_containment(w.vault, plan, "false alarm")
    assert w.vault.logged_quarantine(w.artifact_id) is not None
    approved(w.vault, w.artifact_id, "release")
    lifted = lift_containment(w.vault, plan, "false alarm, reviewed")
    assert lifted.released == (w.artifact_id,)
    assert w.vault.logged_quarantine(w.artifact_id) is None
    w.vault.verify(w.artifact_id)
