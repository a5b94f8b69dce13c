"""Detection over the signed log: real operations open the right incidents, with proofs.

The attack is reproduced against the real store: an artifact read again and again,
a burst of refused operations, a ciphertext corrupted in the store and verified.
The detector reads only the log (entries proved in the signed checkpoint), opens one
incident per finding, never twice, and `audit verify` stays clean.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.conftest import make_tree
from tests.support.tiers import stored_in
from weightvault.artifacts import Vault
from weightvault.errors import (
    AuthorizationError,
    IncidentError,
    IntegrityError,
    StatementError,
    VaultError,
)
from weightvault.lifecycle import ingest
from weightvault.lifecycle.audit import verify_audit
from weightvault.lifecycle.incidents import (
    detect,
    list_incidents,
    load_incident,
    resolve_incident,
)
from weightvault.records import Event

THRESHOLDS = {"read_spike_artifact": 3, "read_spike_principal": 100, "denied_burst": 3}


def _corrupt_first_file(vault: Vault, artifact_id: str) -> None:
    row = vault.resolve(artifact_id)
    manifest, _ = vault.load_manifest(artifact_id, row.tier)
    key = manifest.model_files[0].object_key
    bucket = vault.bucket(row.tier)
    data = bytearray(vault.store.get_bytes(bucket, key))
    data[len(data) // 2] ^= 0x01
    vault.store.put_bytes(bucket, key, bytes(data))


def test_real_operations_open_incidents_with_verifying_proofs(vault: Vault, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "m", {"model.bin": b"w" * 4096})
    artifact_id = ingest.put(vault, src, "m").artifact_id
    # The baseline run: nothing suspicious yet.
    assert detect(vault, thresholds=THRESHOLDS).opened == ()

    # A read spike: the same artifact read three times.
    for n in range(3):
        vault.get(artifact_id, tmp_path / f"out{n}")
    # A burst of refused operations: puts straight into cold (rule put_tier).
    for _ in range(3):
        with pytest.raises(AuthorizationError):
            ingest.put(vault, src, "m", tier="cold")
    # A ciphertext corrupted in the store, verified twice.
    _corrupt_first_file(vault, artifact_id)
    for _ in range(2):
        with pytest.raises(IntegrityError):
            vault.verify(artifact_id)

    report = detect(vault, thresholds=THRESHOLDS)
    by_rule = {i.rule: i for i in report.opened}
    assert set(by_rule) == {"read_spike_artifact", "denied_burst", "integrity_failures"}
    spike = by_rule["read_spike_artifact"]
    assert spike.artifacts == (artifact_id,)
    assert len(spike.evidence) == 3
    assert "quarantine" in spike.actions
    assert len(by_rule["denied_burst"].evidence) == 3
    assert by_rule["denied_burst"].principals == ("alice",)
    integrity = by_rule["integrity_failures"]
    assert integrity.artifacts == (artifact_id,)
    assert len(integrity.evidence) == 2
    assert {"quarantine", "recover"} <= set(integrity.actions)

    # Each incident is in the log, its signed document verifies, every proof verifies.
    listed = list_incidents(vault)
    assert sorted(i.id for i in listed) == sorted(i.id for i in report.opened)
    assert sorted(i.log_index for i in listed) == sorted(i.log_index for i in report.opened)
    for incident in listed:
        detail = load_incident(vault, incident.id)
        assert [ok for _, ok, _ in detail.proofs] == [True] * len(incident.evidence)
        assert detail.incident.evidence == by_rule[incident.rule].evidence

    # A second run sees only its own bookkeeping: nothing opened again.
    again = detect(vault, thresholds=THRESHOLDS)
    assert again.opened == ()
    assert again.start == report.cursor

    resolved = resolve_incident(vault, spike.id, "reads by the nightly evaluation job")
    assert resolved.status == "resolved"
    assert [i.id for i in list_incidents(vault, "open")] == sorted(
        (i.id for i in listed if i.id != spike.id), key=[i.id for i in listed].index
    )
    with pytest.raises(IncidentError, match="resolved"):
        resolve_incident(vault, spike.id, "twice")

    log_report, _ = verify_audit(vault)
    assert log_report.ok, [p.line() for p in log_report.problems]


def test_reads_of_cold_and_from_a_new_site_open_incidents(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_tree(tmp_path / "c", {"model.bin": b"c" * 1024})
    artifact_id = stored_in(vault, src, "c", "cold")
    vault.get(artifact_id, tmp_path / "here")  # alice's usual host: learned
    # The same principal's key used from another machine (the log HMACs the host name).
    monkeypatch.setattr(socket, "gethostname", lambda: "attacker-laptop")
    vault.get(artifact_id, tmp_path / "there")
    opened = {i.rule: i for i in detect(vault).opened}
    assert set(opened) == {"cold_read_unapproved", "new_client"}
    # Cold read with no approved release: the first read; the second is the same burst.
    cold = opened["cold_read_unapproved"]
    assert (cold.artifacts, cold.tiers, cold.principals) == ((artifact_id,), ("cold",), ("alice",))
    assert "isolate_tier" in cold.actions
    new = opened["new_client"]
    assert new.principals == ("alice",)
    assert len(new.evidence) == 1
    assert new.evidence != cold.evidence  # the second read, from the new host
    assert vault.private("attacker-laptop") in load_incident(vault, new.id).incident.summary


def test_an_incident_document_edited_in_the_store_does_not_load(
    vault: Vault, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "m", {"model.bin": b"v" * 1024})
    for _ in range(3):
        with pytest.raises(AuthorizationError):
            ingest.put(vault, src, "m", tier="warm")
    (incident,) = detect(vault, thresholds=THRESHOLDS).opened
    detail = load_incident(vault, incident.id)
    key = f"statements/{detail.statement_sha256}.dsse.json"
    bucket = vault.bucket("audit")
    # Any other bytes (the payload is base64 in the DSSE envelope): another document.
    data = vault.store.get_bytes(bucket, key)
    vault.store.put_bytes(bucket, key, data.replace(b'"payload"', b'"payload" '))
    with pytest.raises(VaultError, match="not the one log entry"):
        load_incident(vault, incident.id)


def test_a_detector_state_edited_in_the_store_stops_the_next_run(
    vault: Vault, tmp_path: Path
) -> None:
    # An attacker who can write the audit bucket rewrites the detector's state (say, to
    # mark every principal's hosts as seen): the next run refuses to resume from it.
    assert detect(vault, thresholds=THRESHOLDS).opened == ()
    (row,) = vault.catalog.log_search(kind="detect.run", phase="outcome", outcome="ok")
    key = row["entry"]["details"]["statement"]["key"]
    bucket = vault.bucket("audit")
    data = vault.store.get_bytes(bucket, key)
    vault.store.put_bytes(bucket, key, data.replace(b'"payload"', b'"payload" '))
    with pytest.raises(StatementError, match="detector state"):
        detect(vault, thresholds=THRESHOLDS)
    # The refused resume is itself in the signed log, with its reason.
    runs = [
        event
        for _, entry in vault.tlog.verified_entries()
        if (event := Event.parse(entry)).kind == "detect.run" and event.phase == "outcome"
    ]
    assert [r.outcome for r in runs] == ["ok", "failed"]
    assert "detector state" in (runs[-1].reason or "")


def test_a_read_under_a_compromised_key_opens_an_incident(vault: Vault, tmp_path: Path) -> None:
    from weightvault.lifecycle.compromise import compromise_key

    src = make_tree(tmp_path / "k", {"model.bin": b"k" * 2048})
    artifact_id = ingest.put(vault, src, "k").artifact_id
    vault.get(artifact_id, tmp_path / "before")
    # A read records the key version that unwrapped its DEK.
    (read,) = vault.history(artifact_id, {"artifact.read"})
    (kek,) = read.event.key_ids
    assert detect(vault).opened == ()
    # The KEK is marked compromised; before any rekey, the artifact is read again.
    compromise_key(vault, kek)
    vault.get(artifact_id, tmp_path / "after")
    opened = [i for i in detect(vault).opened if i.rule == "compromised_key_use"]
    assert len(opened) == 1, opened
    (incident,) = opened
    assert incident.keys == (kek,)
    assert incident.artifacts == (artifact_id,)
    assert incident.severity == "critical"
    assert {"compromise_keys", "rekey"} <= set(incident.actions)
    assert detect(vault).opened == ()
