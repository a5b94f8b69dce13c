"""Issue 11, item 3: nothing trusted that is not signed and in the log.

The attack of the issue, reproduced against the real store and the real CLI: a
pickle fails validation and is quarantined; the attacker (write access to the
buckets and the catalog, no vault key) writes a "passed" report object and a
"passed" statement signed by a key of their own, forges the validation event
(an unsigned ``events/`` object, edited catalog rows), deletes the quarantine
marker and runs ``weightvault catalog rebuild``. The artifact stays
quarantined, the rebuild names the missing marker and the forged objects,
promotion is refused naming why and reads stay refused. Then: a forged report
alone (the catalog pointing at it), an edited statement object, a report
signed by a key compromised before the log recorded it, an unbacked marker,
and the key and quarantine records as signed statements bound to the log.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from tests.conftest import make_tree
from tests.support.approvals import approved
from tests.support.durable_store import cli
from tests.support.payloads import weights
from weightvault._json import canonical_json, parse_canonical
from weightvault._time import iso, parse_iso
from weightvault.artifacts import LoggedEvent, Vault, trusted_statement
from weightvault.catalog._catalog import artifacts, events, log_entries, placements
from weightvault.crypto import dsse
from weightvault.crypto.signing import HybridSigningKey
from weightvault.errors import (
    EvidenceMismatchError,
    PolicyError,
    QuarantinedError,
    StatementError,
)
from weightvault.lifecycle import ingest
from weightvault.lifecycle import promote as promotion
from weightvault.lifecycle.compromise import compromise_key
from weightvault.lifecycle.evidence import REPORT_TYPE, latest_report
from weightvault.lifecycle.quarantine import quarantine, read_marker, release
from weightvault.lifecycle.rebuild import rebuild_catalog
from weightvault.lifecycle.rotation import retire_drained, rotate_signing, start_rotation
from weightvault.lifecycle.validate import validate_artifact
from weightvault.provenance import SIGNING_KEY_ID, predicate_type
from weightvault.records import Event
from weightvault.store.layout import event_key, quarantine_marker_key, validation_key


class _Payload:
    """A pickle whose loading would run a command (it is never loaded)."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("true",))


def _put(vault: Vault, tmp_path: Path, files: dict[str, bytes], name: str = "m") -> str:
    src = make_tree(tmp_path / name, files)
    return ingest.put(vault, src, name, labels={"license": "apache-2.0"}).artifact_id


def _put_unscreened(vault: Vault, tmp_path: Path, files: dict[str, bytes], name: str) -> str:
    """The put's steps without its format scan, as a vault stored content before the scan
    ran at ingest (issue 15): so validation is what fails and quarantines the pickle."""
    src = make_tree(tmp_path / name, files)
    plan = ingest.plan(vault, src, name, labels={"license": "apache-2.0"})
    ingest.write_envelope(vault, plan)
    entries = [ingest.upload(vault, plan, f) for f in plan.files]
    return ingest.commit(vault, ingest.seal(vault, plan, entries)).artifact_id


def _forged_statement(artifact_id: str, name: str, digest: str) -> bytes:
    """A "passed" validation statement signed by a key of the attacker's own."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": digest.removeprefix("sha256:")}}],
        "predicateType": predicate_type("validation"),
        "predicate": {
            "type": REPORT_TYPE,
            "artifact_id": artifact_id,
            "status": "passed",
            "failures": [],
            "files": [],
            "expectations": [],
        },
    }
    mallory = HybridSigningKey.generate(SIGNING_KEY_ID, 1)
    envelope = dsse.sign_envelope(canonical_json(statement), dsse.IN_TOTO_PAYLOAD_TYPE, mallory)
    return canonical_json(envelope)


def _outcome_row(vault: Vault, artifact_id: str, kind: str) -> dict[str, Any]:
    (row,) = vault.catalog.log_search(artifact_id=artifact_id, kind=kind, phase="outcome")
    return row


def _forge_validation_event(vault: Vault, artifact_id: str, forged_key: str, sha: str) -> None:
    """An unsigned events/ object and edited catalog rows saying the validation passed."""
    row = _outcome_row(vault, artifact_id, "artifact.validated")
    entry = dict(row["entry"])
    entry["details"] = {
        **entry["details"],
        "status": "passed",
        "failures": 0,
        "report_sha256": sha,
        "statement": {"kind": "validation", "key": forged_key, "sha256": sha},
    }
    text = canonical_json(entry).decode()
    vault.store.put_bytes(vault.bucket("audit"), event_key(entry["ts"], entry["id"]), text.encode())
    with vault.catalog.engine.begin() as conn:
        conn.execute(update(log_entries).where(log_entries.c.idx == row["idx"]).values(entry=text))
        conn.execute(
            update(events)
            .where(events.c.id == entry["id"])
            .values(details=canonical_json(entry["details"]).decode())
        )
        conn.execute(
            update(artifacts)
            .where(artifacts.c.id == artifact_id)
            .values(validation_status="passed", validation_sha256=sha)
        )


def _set_tier(vault: Vault, artifact_id: str, tier: str) -> None:
    with vault.catalog.engine.begin() as conn:
        conn.execute(update(artifacts).where(artifacts.c.id == artifact_id).values(tier=tier))
        conn.execute(
            update(placements).where(placements.c.artifact_id == artifact_id).values(tier=tier)
        )


def test_the_forged_gate_attack_is_detected_and_refused(vault: Vault, tmp_path: Path) -> None:
    files = {"model.pkl": pickle.dumps(_Payload()), "config.json": b"{}"}
    artifact_id = _put_unscreened(vault, tmp_path, files, "pickled")
    outcome = validate_artifact(vault, artifact_id, None)
    assert outcome.status == "failed"
    assert outcome.quarantined
    row = vault.resolve(artifact_id)
    audit, qbucket = vault.bucket("audit"), vault.bucket("quarantine")

    # The attacker's objects: a plain "passed" report at the next validations/ key and a
    # "passed" statement signed by their own key, content-addressed like the vault's.
    plain = {"type": REPORT_TYPE, "artifact_id": artifact_id, "status": "passed", "files": []}
    vault.store.put_bytes(audit, validation_key(artifact_id, 1), canonical_json(plain))
    forged = _forged_statement(artifact_id, row.name, row.content_digest)
    sha = hashlib.sha256(forged).hexdigest()
    forged_key = f"statements/{sha}.dsse.json"
    vault.store.put_bytes(audit, forged_key, forged)
    _forge_validation_event(vault, artifact_id, forged_key, sha)
    vault.store.remove(qbucket, quarantine_marker_key(artifact_id))
    quarantined_at = _outcome_row(vault, artifact_id, "artifact.quarantined")["idx"]

    proc = cli("catalog", "rebuild")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    problems = [p["problem"] for p in report["evidence"]]
    assert (
        f"quarantine marker of {artifact_id} is missing; log entry {quarantined_at} "
        "quarantined it (marker re-created)"
    ) in problems
    assert f"statement {forged_key} is named by no log entry; not trusted" in problems
    assert (
        f"validation report {validation_key(artifact_id, 1)} is not a signed statement in the "
        "log; ignored"
    ) in problems
    assert report["ignored_unsigned"] >= 1

    vault = Vault.open(vault.settings, identity="alice")
    row = vault.resolve(artifact_id)
    assert row.tier == "quarantine"
    assert row.validation_status == "failed"
    assert row.validation_sha256 != sha
    marker = read_marker(vault, artifact_id)
    assert marker is not None
    assert marker["log_index"] == quarantined_at
    logged = latest_report(vault, artifact_id, row.content_digest)
    assert logged is not None
    assert logged.report["status"] == "failed"

    # Promotion to warm and cold is refused, naming why; reads stay refused.
    proc = cli("promote", artifact_id, "--to", "warm", "--justification", "x")
    assert proc.returncode == PolicyError.exit_code
    assert "from quarantine to warm is not allowed" in proc.stderr
    with pytest.raises(PolicyError, match="from quarantine to cold is not allowed"):
        promotion.promote(vault, artifact_id, "cold", justification="x")
    with pytest.raises(QuarantinedError):
        vault.get(artifact_id, tmp_path / "out")
    assert not (tmp_path / "out").exists()

    # The catalog row edited back to hot: the log still says quarantined.
    _set_tier(vault, artifact_id, "hot")
    with pytest.raises(EvidenceMismatchError, match=f"log entry {quarantined_at}"):
        vault.verify(artifact_id)
    with pytest.raises(EvidenceMismatchError):
        promotion.promote(vault, artifact_id, "warm", justification="x")
    assert vault.committed_ids("warm") == set()
    assert vault.committed_ids("cold") == set()


@pytest.fixture
def validated_clean(vault: Vault, tmp_path: Path) -> str:
    """A clean artifact whose validation failed (no provenance): not quarantined."""
    files = {"config.json": json.dumps({"seed": os.urandom(8).hex()}).encode()}
    artifact_id = _put(vault, tmp_path, files)
    outcome = validate_artifact(vault, artifact_id, None)
    assert outcome.status == "failed"
    assert not outcome.quarantined
    return artifact_id


def _set_validation(vault: Vault, artifact_id: str, status: str, sha: str | None) -> None:
    with vault.catalog.engine.begin() as conn:
        conn.execute(
            update(artifacts)
            .where(artifacts.c.id == artifact_id)
            .values(validation_status=status, validation_sha256=sha)
        )


def _policy(vault: Vault, artifact_id: str) -> promotion.Gate:
    p = promotion.plan(vault, artifact_id, "warm", justification="x")
    gate, _ = promotion.check_policy(vault, p, promotion.Gate("integrity", True))
    return gate


def test_a_forged_report_the_catalog_points_at_is_named_by_the_gate(
    vault: Vault, validated_clean: str
) -> None:
    artifact_id = validated_clean
    first = vault.resolve(artifact_id).validation_sha256
    # Validated again (as another host would): a catalog still naming the first report,
    # which the log records too, is no disagreement.
    validate_artifact(vault, artifact_id, None)
    row = vault.resolve(artifact_id)
    real = row.validation_sha256
    assert real != first
    _set_validation(vault, artifact_id, "failed", first)
    assert not [r for r in _policy(vault, artifact_id).reasons if r.startswith("evidence:")]

    forged = _forged_statement(artifact_id, row.name, row.content_digest)
    sha = hashlib.sha256(forged).hexdigest()
    vault.store.put_bytes(vault.bucket("audit"), f"statements/{sha}.dsse.json", forged)
    _set_validation(vault, artifact_id, "passed", sha)
    index = vault.history(artifact_id, {"artifact.validated"})[-1].index
    gate = _policy(vault, artifact_id)
    assert not gate.passed
    assert (
        f"evidence: the catalog's validation report {sha} is not the one log entry {index} "
        f"recorded ({real})"
    ) in gate.reasons
    assert any("validation is failed" in r for r in gate.reasons)


def test_an_edited_statement_object_is_detected(vault: Vault, validated_clean: str) -> None:
    artifact_id = validated_clean
    row = vault.resolve(artifact_id)
    ref = _outcome_row(vault, artifact_id, "artifact.validated")["entry"]["details"]["statement"]
    index = _outcome_row(vault, artifact_id, "artifact.validated")["idx"]
    audit = vault.bucket("audit")
    envelope = parse_canonical(vault.store.get_bytes(audit, ref["key"]), "statement")
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"].update(status="passed", failures=[])
    envelope["payload"] = base64.b64encode(canonical_json(statement)).decode()
    vault.store.put_bytes(audit, ref["key"], canonical_json(envelope))

    with pytest.raises(StatementError, match=f"is not the one log entry {index} recorded"):
        latest_report(vault, artifact_id, row.content_digest)
    gate = _policy(vault, artifact_id)
    assert not gate.passed
    assert (
        f"evidence: validation report {ref['key']} is not the one log entry {index} recorded"
    ) in gate.reasons
    result = rebuild_catalog(vault)
    assert any(ref["key"] in p["problem"] for p in result["evidence"])
    assert vault.resolve(artifact_id).validation_status == "untrusted"


def test_a_report_signed_after_its_key_was_compromised_is_refused(
    vault: Vault, validated_clean: str
) -> None:
    artifact_id = validated_clean
    row = vault.resolve(artifact_id)
    logged_at = parse_iso(_outcome_row(vault, artifact_id, "artifact.validated")["ts"])
    compromise_key(vault, f"{SIGNING_KEY_ID}@v1", since=logged_at - timedelta(minutes=5))
    with pytest.raises(StatementError, match=r"not signed by a trusted key.*compromised since"):
        latest_report(vault, artifact_id, row.content_digest)
    # The compromise record itself is signed by the replacement key, and bound to the log.
    (compromised,) = vault.catalog.log_search(kind="key.compromised", phase="outcome")
    record = _trusted(vault, compromised, "key-compromise")
    assert (record["key"], record["state"]) == (f"{SIGNING_KEY_ID}@v1", "compromised")
    assert record["replacement"] == f"{SIGNING_KEY_ID}@v2"


def test_a_marker_the_log_does_not_back_keeps_reads_refused(vault: Vault, tmp_path: Path) -> None:
    artifact_id = _put(vault, tmp_path, {"weights.bin": weights(128)})
    marker = {
        "type": "weightvault.quarantine/v1",
        "artifact_id": artifact_id,
        "origin": "hot",
        "reason": "planted",
        "at": iso(vault.clock()),
        "by": "mallory",
    }
    vault.store.put_bytes(
        vault.bucket("quarantine"), quarantine_marker_key(artifact_id), canonical_json(marker)
    )
    result = rebuild_catalog(vault)
    assert (
        f"quarantine marker of {artifact_id} is not backed by the log (the log never "
        "quarantined it); reads stay refused until it is released"
    ) in [p["problem"] for p in result["evidence"]]
    assert vault.resolve(artifact_id).tier == "quarantine"
    with pytest.raises(QuarantinedError):
        vault.verify(artifact_id)


def _trusted(vault: Vault, row: dict[str, Any], kind: str) -> dict[str, Any]:
    entry = canonical_json(row["entry"])
    logged = LoggedEvent(row["idx"], Event.parse(entry), entry)
    vault.tlog.check_included([(logged.index, logged.entry)])
    return trusted_statement(vault, logged, kind=kind, what=kind).predicate


def test_quarantine_release_and_key_records_are_signed_statements_in_the_log(
    vault: Vault, tmp_path: Path
) -> None:
    artifact_id = _put(vault, tmp_path, {"weights.bin": weights(128)})
    quarantine(vault, artifact_id, reason="incident 12")
    approved(vault, artifact_id, "release")
    release(vault, artifact_id, justification="false alarm")
    q = _trusted(vault, _outcome_row(vault, artifact_id, "artifact.quarantined"), "quarantine")
    assert (q["reason"], q["origin"], q["by"]) == ("incident 12", "hot", "alice")
    r = _trusted(vault, _outcome_row(vault, artifact_id, "artifact.released"), "release")
    assert (r["approvers"], r["justification"], r["origin"]) == (
        ["approver-1", "approver-2"],
        "false alarm",
        "hot",
    )
    assert vault.logged_quarantine(artifact_id) is None
    vault.verify(artifact_id)
    # Markers are create-only, but a released artifact's was removed: a new quarantine
    # writes its own marker (not the old one's reason).
    quarantine(vault, artifact_id, reason="incident 13")
    marker = read_marker(vault, artifact_id)
    assert marker is not None
    assert marker["reason"] == "incident 13"
    approved(vault, artifact_id, "release")
    release(vault, artifact_id, justification="false alarm again")
    vault.verify(artifact_id)

    ref = rotate_signing(vault)
    (rotated,) = [
        row
        for row in vault.catalog.log_search(kind="key.rotated", phase="outcome")
        if row["entry"]["details"].get("key") == ref
    ]
    record = _trusted(vault, rotated, "key-rotation")
    assert (record["key"], record["state"], record["subject"]) == (ref, "active", ref)
    assert ref in rotated["entry"]["key_ids"]

    rot = start_rotation(vault, "hot")
    retire_drained(vault, rot)
    (kek,) = [
        row
        for row in vault.catalog.log_search(kind="key.rotated", phase="outcome")
        if row["tier"] == "hot"
    ]
    record = _trusted(vault, kek, "key-rotation")
    assert record["key"] == f"kek-hot@v{rot.target_version}"
    assert record["previous"] == [f"kek-hot@v{v}" for v in rot.old_versions]
    (retired,) = vault.catalog.log_search(kind="key.retired", phase="outcome")
    record = _trusted(vault, retired, "key-retirement")
    assert record["subject"] == "kek-hot"
    assert record["retired"] + list(record["kept"]) == [f"kek-hot@v{v}" for v in rot.old_versions]
