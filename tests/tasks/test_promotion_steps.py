"""Promotion as named, idempotent steps: retries converge, rollback hooks compensate,
and the CLI's steps-in-a-row and the Prefect flow reach the same outcome.

Real SeaweedFS store, real Prefect (the session's test API server).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from flows.promote import promote as promote_flow
from tasks import gate_tasks
from tests.conftest import REPO
from tests.support.approvals import approved
from tests.support.artifacts import ingest_model
from weightvault import cli
from weightvault.artifacts import Vault
from weightvault.config import Settings, load_settings
from weightvault.errors import AuditError, IntegrityError, StoreUnavailableError
from weightvault.lifecycle import promote as promotion
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.lifecycle.validate import validate_artifact
from weightvault.provenance import attestation_keys, trust_root, verify_chain
from weightvault.store import EmbeddedStore
from weightvault.store.layout import envelope_key, manifest_key


@pytest.fixture
def flow_vault(vault_settings: Settings, prefect_api: None) -> Vault:
    return Vault.open(vault_settings, identity="alice")


def ready_artifact(vault: Vault, model_repo: Path) -> str:
    """Ingested and validated in hot: ready for hot -> warm."""
    artifact_id = ingest_model(vault, model_repo)
    outcome = validate_artifact(vault, artifact_id, model_repo)
    assert outcome.status == "passed", outcome.failures
    return artifact_id


@pytest.fixture
def ready(flow_vault: Vault, model_repo: Path) -> str:
    return ready_artifact(flow_vault, model_repo)


def object_versions(vault: Vault, tier: str, artifact_id: str) -> list[str]:
    """Every stored version of the artifact's objects in a tier bucket (keys, repeated)."""
    found = vault.store.list(vault.bucket(tier), f"artifacts/{artifact_id}/", versions=True)
    return sorted(o.key for o in found)


def events(vault: Vault, artifact_id: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in vault.catalog.events_of(artifact_id) if e["kind"] == kind]


def catalog_state(vault: Vault, artifact_id: str) -> dict[str, Any]:
    """The catalog's rows, but for what a read adds (the integrity gate's
    ``artifact.verified`` events: reads are evidence) and the placement's claim
    counter (it only grows)."""
    dump = vault.catalog.dump()
    placement = vault.catalog.placement(artifact_id)
    placement.pop("generation")
    kinds = [e["kind"] for e in vault.catalog.events_of(artifact_id)]
    return {
        "placement": placement,
        "events": [k for k in kinds if k != "artifact.verified"],
        "tables": {
            n: rows for n, rows in dump.items() if n not in ("placements", "events", "log_entries")
        },
    }


def test_retried_copy_and_commit_tasks_leave_one_copy_and_one_attestation(
    flow_vault: Vault, ready: str
) -> None:
    p = gate_tasks.plan(ready, "warm", "staging", False)
    integrity = gate_tasks.integrity(p)
    policy, digest = gate_tasks.policy(p, integrity)
    gates = (integrity, policy)
    assert all(g.passed for g in gates), gates
    held = gate_tasks.claim(p)
    assert gate_tasks.copy(p, held) == len(p.object_keys)
    assert gate_tasks.copy(p, held) == 0  # the retry finds every object already there
    gate_tasks.rewrap(p, held)
    gate_tasks.rewrap(p, held)
    first = gate_tasks.commit(p, held, gates, digest)
    second = gate_tasks.commit(p, held, gates, digest)
    assert second == first
    # One version of each object in the (versioned) warm bucket, none left in hot.
    expected = sorted([*p.object_keys, manifest_key(ready)])
    assert object_versions(flow_vault, "warm", ready) == expected
    assert flow_vault.committed_ids("hot") == set()
    keys = attestation_keys(flow_vault.store, flow_vault.bucket("audit"), ready)
    assert keys == [first.attestation]
    assert len(events(flow_vault, ready, "artifact.promoted")) == 1
    assert flow_vault.catalog.artifact(ready).tier == "warm"
    flow_vault.verify(ready)


def test_commit_retried_after_a_failure_past_the_attestation_appends_it_once(
    vault: Vault, model_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact_id = ready_artifact(vault, model_repo)
    p = promotion.plan(vault, artifact_id, "warm", justification="staging")
    integrity = promotion.check_integrity(vault, p)
    policy, digest = promotion.check_policy(vault, p, integrity)
    held = promotion.claim(vault, p)
    promotion.copy(vault, p, held)
    promotion.rewrap(vault, p, held)
    real = vault.record
    failures = iter([AuditError("injected: audit trail down once")])

    def flaky(kind: str, aid: str | None, tier: str | None, details: dict[str, Any]) -> Any:
        if kind == "artifact.promoted":
            exc = next(failures, None)
            if exc is not None:
                raise exc
        return real(kind, aid, tier, details)

    monkeypatch.setattr(vault, "record", flaky)
    with pytest.raises(AuditError):
        promotion.commit(vault, p, held, (integrity, policy), digest)
    # Past the commit point: compensation leaves the target alone, the claim stays held.
    promotion.abandon(vault, p, held)
    assert vault.committed_ids("warm") == {artifact_id}
    assert vault.catalog.placement(artifact_id)["pending"] == "warm"
    result = promotion.commit(vault, p, held, (integrity, policy), digest)
    assert attestation_keys(vault.store, vault.bucket("audit"), artifact_id) == [result.attestation]
    assert len(events(vault, artifact_id, "artifact.promoted")) == 1
    assert vault.catalog.artifact(artifact_id).tier == "warm"
    vault.verify(artifact_id)


def test_failure_after_copy_in_the_flow_is_rolled_back_by_the_hooks(
    flow_vault: Vault, ready: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = catalog_state(flow_vault, ready)
    compensated: list[str] = []
    real_discard = promotion.discard_copies

    def broken(*_args: object) -> str:
        raise IntegrityError("injected failure after the copy")

    def spy(vault: Vault, p: promotion.PromotionPlan, held: promotion.Claim | None = None) -> int:
        compensated.append(p.artifact_id)
        return real_discard(vault, p, held)

    copied: list[int] = []
    real_copy = promotion.copy

    def copy_and_count(vault: Vault, p: promotion.PromotionPlan, held: promotion.Claim) -> int:
        copied.append(real_copy(vault, p, held))
        return copied[-1]

    with monkeypatch.context() as patch:
        patch.setattr(promotion, "copy", copy_and_count)
        patch.setattr(promotion, "rewrap", broken)
        patch.setattr(promotion, "discard_copies", spy)
        state = promote_flow(
            artifact_id=ready, target_tier="warm", justification="staging", return_state=True
        )
    assert state.is_failed()
    assert "injected failure after the copy" in (state.message or "")
    # The copy really happened before the failure (ciphertext files, statement, OMS signature) ...
    assert copied == [len(flow_vault.catalog.files_of(ready)) + 2]
    # ... and the tasks' on_rollback hooks undid it (the flow has no except clause).
    assert compensated
    assert flow_vault.catalog.artifact(ready).tier == "hot"
    assert list(flow_vault.store.list(flow_vault.bucket("warm"), f"artifacts/{ready}/")) == []
    assert not flow_vault.store.exists(flow_vault.bucket("envelopes"), envelope_key(ready, "warm"))
    assert catalog_state(flow_vault, ready) == before
    flow_vault.verify(ready)
    state = promote_flow(
        artifact_id=ready, target_tier="warm", justification="staging", return_state=True
    )
    assert state.is_completed(), state.message
    assert flow_vault.catalog.artifact(ready).tier == "warm"


def test_transient_failure_inside_the_transaction_is_retried_not_rolled_back(
    flow_vault: Vault, ready: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A failed Prefect attempt inside a transaction would roll the transaction
    # back before its retry: the moving steps retry transient errors in-task.
    real_copy = promotion.copy
    attempts: list[int] = []

    def flaky(vault: Vault, p: promotion.PromotionPlan, held: promotion.Claim) -> int:
        attempts.append(1)
        if len(attempts) == 1:
            real_copy(vault, p, held)  # half done: the objects are there, then the store fails
            raise StoreUnavailableError("injected: store unavailable once")
        return real_copy(vault, p, held)

    with monkeypatch.context() as patch:
        patch.setattr(promotion, "copy", flaky)
        state = promote_flow(
            artifact_id=ready, target_tier="warm", justification="staging", return_state=True
        )
    assert state.is_completed(), state.message
    assert len(attempts) == 2
    assert flow_vault.catalog.artifact(ready).tier == "warm"
    assert flow_vault.catalog.placement(ready)["pending"] is None
    files = [f["object_key"] for f in flow_vault.catalog.files_of(ready)]
    # One version each: the files, the statement, the OMS signature and the manifest.
    assert len(object_versions(flow_vault, "warm", ready)) == len(files) + 3
    assert len(attestation_keys(flow_vault.store, flow_vault.bucket("audit"), ready)) == 1
    flow_vault.verify(ready)


def outcome(vault: Vault, artifact_id: str) -> dict[str, Any]:
    """What a promotion leaves behind, independent of ids, times and bucket prefixes."""
    row = vault.catalog.artifact(artifact_id)
    chain = verify_chain(
        vault.store, vault.bucket("audit"), artifact_id, trust_root(vault.keys), row.content_digest
    )
    placement = vault.catalog.placement(artifact_id)
    return {
        "tier": row.tier,
        "chain": [(a.kind, a.predicate.get("from"), a.predicate.get("to")) for a in chain],
        "promotions": [
            {k: a.predicate[k] for k in ("approvers", "justification", "legal_hold")}
            | {"retained": a.predicate["retain_until"] is not None}
            for a in chain
            if a.kind == "promotion"
        ],
        "placement": {
            "tier": placement["tier"],
            "in_tier_bucket": placement["bucket"] == vault.bucket(row.tier),
            "retained": placement["retain_until"] is not None,
            "legal_hold": bool(placement["legal_hold"]),
            "pending": placement["pending"],
        },
        "envelopes": sorted(e["tier"] for e in vault.catalog.envelopes_of(artifact_id)),
        "committed": {t: artifact_id in vault.committed_ids(t) for t in ("hot", "warm", "cold")},
        "events": [
            e["kind"]
            for e in vault.catalog.events_of(artifact_id)
            if e["kind"].startswith("artifact.promot")
        ],
    }


def test_cli_and_flow_reach_the_same_outcome(
    s3_server: EmbeddedStore,
    vault_settings: Settings,
    prefect_api: None,
    model_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The CLI path: the core's steps in a row, through `weightvault promote`.
    by_cli = Vault.open(vault_settings, identity="alice")
    cli_id = ready_artifact(by_cli, model_repo)
    monkeypatch.setenv("WEIGHTVAULT_ACTOR", "alice")
    for tier, why in (("warm", "staging"), ("cold", "release 1.0")):
        if tier == "cold":
            approved(by_cli, cli_id, "cold")
        code = cli.main(["promote", cli_id, "--to", tier, "--justification", why])
        assert code == 0, capsys.readouterr().err
    # The same starting state in a second vault; the flow path.
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(tmp_path / "home-flow"))
    monkeypatch.setenv("WEIGHTVAULT_BUCKET_PREFIX", f"t{uuid.uuid4().hex[:10]}")
    flow_settings = load_settings(REPO / "config")
    init_vault(flow_settings)
    by_flow = Vault.open(flow_settings, identity="alice")
    flow_id = ready_artifact(by_flow, model_repo)
    for tier, why in (("warm", "staging"), ("cold", "release 1.0")):
        if tier == "cold":
            approved(by_flow, flow_id, "cold")
        state = promote_flow(
            artifact_id=flow_id, target_tier=tier, justification=why, return_state=True
        )
        assert state.is_completed(), state.message
    cli_outcome, flow_outcome = outcome(by_cli, cli_id), outcome(by_flow, flow_id)
    assert cli_outcome == flow_outcome, json.dumps([cli_outcome, flow_outcome], indent=1)
    assert cli_outcome["tier"] == "cold"
    assert len(cli_outcome["chain"]) == 2
    assert cli_outcome["placement"]["retained"]
