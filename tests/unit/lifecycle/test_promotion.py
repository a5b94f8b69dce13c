"""Gated promotion hot -> warm -> cold, quarantine, retention, bundles."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from tests.support.approvals import approved, self_approved
from tests.support.artifacts import ingest_model, rebuildable_rows
from weightvault.artifacts import Vault, trusted_statement
from weightvault.errors import (
    ConflictError,
    IntegrityError,
    NoTrustRootError,
    PolicyError,
    QuarantinedError,
    RetentionError,
    StoreUnavailableError,
)
from weightvault.lifecycle import promote as promotion
from weightvault.lifecycle.escrow import split_escrow_key
from weightvault.lifecycle.export import export_bundle, verify_bundle
from weightvault.lifecycle.promote import PromotionPlan, delete_artifact, promote
from weightvault.lifecycle.quarantine import quarantine, release
from weightvault.lifecycle.rebuild import rebuild_catalog
from weightvault.lifecycle.trust import init_root
from weightvault.lifecycle.validate import validate_artifact
from weightvault.store import EmbeddedStore
from weightvault.store.layout import manifest_key


def add_escrow_key(vault: Vault) -> list[str]:
    return list(split_escrow_key(vault.keys).shares)


@pytest.fixture
def validated(vault: Vault, model_repo: Path) -> str:
    artifact_id = ingest_model(vault, model_repo)
    outcome = validate_artifact(vault, artifact_id, model_repo)
    assert outcome.status == "passed", outcome.failures
    return artifact_id


def test_full_promotion_hot_warm_cold(vault: Vault, validated: str) -> None:
    add_escrow_key(vault)
    warm = promote(vault, validated, "warm", justification="staging")
    assert warm.source == "hot"
    assert vault.catalog.artifact(validated).tier == "warm"
    assert vault.committed_ids("hot") == set()
    vault.verify(validated)
    approved(vault, validated, "cold")
    cold = promote(vault, validated, "cold", justification="release 1.0")
    assert cold.retain_until is not None
    row = vault.catalog.artifact(validated)
    assert row.tier == "cold"
    assert sorted(e["tier"] for e in vault.catalog.envelopes_of(validated)) == ["cold", "escrow"]
    vault.verify(validated)
    # The store itself refuses to delete a retained cold object version.
    info = vault.store.stat(vault.bucket("cold"), manifest_key(validated))
    with pytest.raises(RetentionError):
        vault.store.remove(vault.bucket("cold"), manifest_key(validated), info.version_id)
    # And so does the vault's own delete path.
    with pytest.raises(RetentionError):
        delete_artifact(vault, validated)
    vault.verify(validated)
    # The chain of attestations verifies, and the catalog rebuilds to the same rows.
    from weightvault.provenance import trust_root
    from weightvault.provenance._chain import verify_chain

    chain = verify_chain(
        vault.store, vault.bucket("audit"), validated, trust_root(vault.keys), row.content_digest
    )
    assert [a.predicate["to"] for a in chain] == ["warm", "cold"]
    # Each promotion's outcome in the signed log names its attestation, which verifies.
    promoted = vault.history(validated, {"artifact.promoted"})
    bound = [trusted_statement(vault, e, kind="promotion", what="promotion") for e in promoted]
    assert [(b.ref.key, b.ref.sha256) for b in bound] == [(a.key, a.sha256) for a in chain]
    before = rebuildable_rows(vault)
    rebuild_catalog(vault)
    assert rebuildable_rows(vault) == before


def test_failed_gate_keeps_source_tier_and_reports_reasons(vault: Vault, model_repo: Path) -> None:
    artifact_id = ingest_model(vault, model_repo, license_=None)
    with pytest.raises(PolicyError) as err:
        promote(vault, artifact_id, "warm", justification="x")
    assert "validation" in str(err.value)
    assert vault.catalog.artifact(artifact_id).tier == "hot"
    validate_artifact(vault, artifact_id, model_repo)
    promote(vault, artifact_id, "warm", justification="x")
    with pytest.raises(PolicyError) as err:
        promote(vault, artifact_id, "cold", justification="self")
    message = str(err.value)
    assert "two_person" in message
    assert "license" in message
    assert vault.catalog.artifact(artifact_id).tier == "warm"
    assert vault.committed_ids("cold") == set()
    kinds = [e["kind"] for e in vault.catalog.events_of(artifact_id)]
    assert kinds.count("artifact.promotion_refused") == 2


def test_disallowed_moves(vault: Vault, validated: str) -> None:
    with pytest.raises(PolicyError, match="not allowed"):
        promote(vault, validated, "cold", justification="skip warm")


def test_concurrent_promotions_exactly_one_wins(vault: Vault, validated: str) -> None:
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def attempt() -> None:
        other = Vault.open(vault.settings, identity="alice")
        barrier.wait()
        try:
            outcomes.append(promote(other, validated, "warm", justification="c"))
        except (ConflictError, PolicyError) as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(wins) == 1
    assert vault.catalog.artifact(validated).tier == "warm"
    vault.verify(validated)


def test_failure_after_copy_is_compensated(
    vault: Vault, validated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(vault: Vault, p: PromotionPlan, held: promotion.Claim) -> str:
        raise StoreUnavailableError("injected failure")

    monkeypatch.setattr(promotion, "rewrap", broken)
    with pytest.raises(StoreUnavailableError):
        promote(vault, validated, "warm", justification="x")
    assert vault.catalog.artifact(validated).tier == "hot"
    assert list(vault.store.list(vault.bucket("warm"), f"artifacts/{validated}/")) == []
    monkeypatch.undo()
    promote(vault, validated, "warm", justification="x")
    assert vault.catalog.artifact(validated).tier == "warm"


def test_quarantine_blocks_reads_until_released(
    vault: Vault, validated: str, tmp_path: Path
) -> None:
    quarantine(vault, validated, reason="incident 7")
    with pytest.raises(QuarantinedError):
        vault.get(validated, tmp_path / "o")
    with pytest.raises(PolicyError):
        promote(vault, validated, "warm", justification="x")
    before = rebuildable_rows(vault)
    rebuild_catalog(vault)
    assert rebuildable_rows(vault) == before
    with pytest.raises(PolicyError, match="the log backs 0"):
        release(vault, validated, justification="self")
    approved(vault, validated, "release", names=("approver-1",))
    with pytest.raises(PolicyError, match=r"the log backs 1 \(approver-1\)"):
        release(vault, validated, justification="one approval")
    approved(vault, validated, "release", names=("approver-2",))
    assert release(vault, validated, justification="resolved") == "hot"
    vault.verify(validated)


def test_export_and_offline_verify_with_store_stopped(
    own_store, model_repo: Path, tmp_path: Path
) -> None:
    vault = Vault.open(own_store, identity="alice")
    add_escrow_key(vault)
    artifact_id = ingest_model(vault, model_repo)
    validate_artifact(vault, artifact_id, model_repo)
    promote(vault, artifact_id, "warm", justification="s")
    promote(self_approved(vault, artifact_id), artifact_id, "cold", justification="r")
    with pytest.raises(NoTrustRootError, match="trust init"):
        export_bundle(vault, artifact_id, tmp_path / "unsigned")
    assert not (tmp_path / "unsigned").exists()
    pinned = init_root(vault).root
    bundle = export_bundle(vault, artifact_id, tmp_path / "bundle")
    EmbeddedStore(own_store.store_dir).down()
    report = verify_bundle(bundle, pinned)
    assert report.artifact_id == artifact_id
    assert report.attestations == 2
    # The put and both promotions, each with its tlog-proof, checked offline.
    proofs = sorted(p.name for p in (bundle / "proofs").iterdir())
    assert report.log_entries == len(proofs) // 2 >= 3
    assert report.log_size > max(int(n.split(".")[0]) for n in proofs)
    assert (report.root_version, report.trusted_on_first_use) == (1, False)
    with pytest.raises(NoTrustRootError, match="--trust-on-first-use"):
        verify_bundle(bundle)
    assert verify_bundle(bundle, trust_on_first_use=True).trusted_on_first_use
    for rel in [
        "manifest.json",
        "statement.dsse.json",
        "escrow.json",
        "bundle.json",
        "roots/1.json",
        next(f"proofs/{p.name}" for p in (bundle / "proofs").glob("*.entry")),
    ]:
        broken = tmp_path / f"broken-{rel}"
        shutil.copytree(bundle, broken)
        data = bytearray((broken / rel).read_bytes())
        data[len(data) // 2] ^= 0x01
        (broken / rel).write_bytes(bytes(data))
        with pytest.raises(IntegrityError):
            verify_bundle(broken, pinned)
    cipher = next((bundle / "ciphertext").iterdir())
    broken = tmp_path / "broken-ct"
    shutil.copytree(bundle, broken)
    target = broken / "ciphertext" / cipher.name
    data = bytearray(target.read_bytes())
    data[-1] ^= 0x80
    target.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        verify_bundle(broken, pinned)
    (bundle / "extra.txt").write_text("smuggled")
    with pytest.raises(IntegrityError):
        verify_bundle(bundle, pinned)
