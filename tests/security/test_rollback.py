"""Rollback and key compromise against the log (issue 11, item 5).

The attacks, against the real SeaweedFS store:

- restoring older object versions of an artifact (its manifest, statement,
  ciphertext and the envelope under the KEK a rekey retired as compromised)
  verified with no warning; now ``verify`` and ``get`` refuse with exit 34,
  naming the object and the log entries, write nothing, and the log records the
  refusals; ``catalog rebuild`` indexes the artifact damaged, never healthy;
- an envelope put back from before a rotation, or another artifact's envelope;
- a compromised signer judged at the time its statement claims, which the
  signer controls; now at the time the log recorded the statement;
- an older sealed keystore put back under the home, with the store's version
  records (and backups) deleted: every log entry records the keystore version,
  and the newest one refuses the older file.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import make_tree
from tests.support.durable_store import cli
from tests.support.tiers import stored_in
from weightvault._time import parse_iso, utcnow
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.errors import KeyStateError, KeystoreRollbackError, RollbackError
from weightvault.lifecycle import ingest, rebuild, rekey, rotation
from weightvault.lifecycle.compromise import compromise_key
from weightvault.provenance import SIGNING_KEY_ID
from weightvault.store import ObjectStore
from weightvault.store.layout import (
    KEYSTORE_BACKUPS_PREFIX,
    KEYSTORE_VERSIONS_PREFIX,
    envelope_key,
    manifest_key,
    statement_key,
)


def _version(store: ObjectStore, bucket: str, key: str) -> Callable[[], None]:
    """The object's current version, and a way to put exactly it back later (the attack)."""
    version = store.stat(bucket, key).version_id
    assert version, f"{bucket} is not versioned"

    def restore() -> None:
        with store.open(bucket, key, version) as stream:
            data = stream.read()
        store.put_bytes(bucket, key, data)

    return restore


def _refused(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == RollbackError.exit_code, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_older_object_versions_restored_after_a_rekey_are_refused(
    vault: Vault, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "m", {"model.bin": b"w" * 4096, "config.json": b"{}"})
    artifact_id = stored_in(vault, src, "m", "warm")
    warm, envelopes = vault.bucket("warm"), vault.bucket("envelopes")
    manifest, _dek = vault.load_manifest(artifact_id, "warm")
    del _dek
    saved = [
        _version(vault.store, warm, key)
        for key in (
            manifest_key(artifact_id),
            statement_key(artifact_id),
            *(f.object_key for f in manifest.files),
        )
    ]
    saved.append(_version(vault.store, envelopes, envelope_key(artifact_id, "warm")))
    ingested = vault.logged_state(artifact_id).require()

    # The KEK is compromised and the artifact re-encrypted under a fresh DEK and KEK.
    rekey.respond(vault, "kek-warm@v1", all_exposed=True)
    rekeyed = vault.logged_state(artifact_id).require()
    assert rekeyed.kind == "artifact.rekeyed"
    assert rekeyed.state["envelope"]["kek"] == "kek-warm@v2"
    assert rekeyed.digest("manifest") != ingested.digest("manifest")
    vault.verify(artifact_id)

    # The attack: every old object version put back, the envelope under kek-warm@v1 too.
    for restore in saved:
        restore()
    assert vault.store.get_bytes(envelopes, envelope_key(artifact_id, "warm"))
    _refused(
        cli("verify", artifact_id),
        f"artifact {artifact_id}: its manifest",
        f"recorded at entry {rekeyed.index} (artifact.rekeyed",
        f"older manifest of entry {ingested.index} ({ingested.kind}), restored",
        "rollback refused",
    )
    out = tmp_path / "out"
    _refused(cli("get", artifact_id, "--out", str(out)), "rollback refused")
    assert not out.exists()
    assert not list(tmp_path.glob(".out*"))  # no staging left with plaintext

    # Both refusals are in the log, with the reason.
    for kind in ("artifact.verified", "artifact.read"):
        (last,) = vault.catalog.log_search(
            artifact_id=artifact_id, kind=kind, phase="outcome", outcome="failed", limit=1
        )
        assert "rollback refused" in last["entry"]["reason"]

    # A rebuild of the catalog from the store indexes it damaged, never healthy.
    result = rebuild.rebuild_catalog(vault)
    (damaged,) = [d for d in result["damaged_artifacts"] if d["artifact_id"] == artifact_id]
    assert "rollback refused" in damaged["reason"]
    assert vault.show(artifact_id)["damage"]
    with pytest.raises(RollbackError, match="rollback refused"):
        vault.verify(artifact_id)


def test_an_envelope_from_before_a_rotation_or_of_another_artifact_is_refused(
    vault: Vault, tmp_path: Path
) -> None:
    first = ingest.put(vault, make_tree(tmp_path / "a", {"a.bin": b"a" * 2048}), "a")
    other = ingest.put(vault, make_tree(tmp_path / "b", {"b.bin": b"b" * 2048}), "b")
    a, b = first.artifact_id, other.artifact_id
    envelopes = vault.bucket("envelopes")
    restore_old = _version(vault.store, envelopes, envelope_key(a, "hot"))

    rot = rotation.start_rotation(vault, "hot")
    stats = rotation.rewrap_all(vault, rot, rotation.pending_envelopes(vault, rot))
    assert stats.rewrapped == 2
    for artifact_id in (a, b):
        latest = vault.logged_state(artifact_id).require()
        assert latest.kind == "envelopes.rewrapped"
        assert latest.state["envelope"]["kek"] == f"kek-hot@v{rot.target_version}"
        assert latest.state["envelope"]["sha256"] == vault.envelope_sha256(artifact_id, "hot")
        vault.verify(artifact_id)

    restore_old()  # the envelope from before the rotation, under the old KEK version
    with pytest.raises(RollbackError, match=r"older envelope of entry \d+ \(artifact.ingested\)"):
        vault.verify(a)
    out = tmp_path / "out"
    with pytest.raises(RollbackError):
        vault.get(a, out)
    assert not out.exists()

    # Another artifact's (valid, current) envelope in its place.
    swapped = vault.store.get_bytes(envelopes, envelope_key(b, "hot"))
    vault.store.put_bytes(envelopes, envelope_key(a, "hot"), swapped)
    with pytest.raises(RollbackError, match="another envelope was put in its place"):
        vault.verify(a)
    vault.verify(b)


def _rewrapped_unlogged(vault: Vault, artifact_id: str) -> tuple[str, str]:
    """A rotation half done: the envelope rewrapped in the store, not yet in the log."""
    rot = rotation.start_rotation(vault, "hot")
    keys = rotation.rotating_keys(vault)
    target = keys.get(rot.kek_id, rot.target_version)
    ref = rotation.EnvelopeRef(artifact_id, "hot")
    outcome = rotation.rewrap_envelope(vault, keys, target, ref, frozenset(rot.old_versions))
    assert outcome == "rewrapped"
    return target.ref, vault.envelope_sha256(artifact_id, "hot")


def test_a_read_during_a_rotation_waits_for_the_log_to_record_the_rewrapped_envelope(
    vault: Vault, tmp_path: Path
) -> None:
    """The soak's race: a rotation writes a batch of envelopes, then logs their digests;
    a read in between found an envelope the log did not record yet and was refused."""
    a = ingest.put(vault, make_tree(tmp_path / "a", {"a.bin": b"a" * 2048}), "a").artifact_id
    kek, digest = _rewrapped_unlogged(vault, a)

    def log_the_batch() -> None:
        time.sleep(1.5)
        vault.record(rotation.REWRAPPED, None, "hot", {"kek": kek, "envelopes": {a: digest}})

    writer = threading.Thread(target=log_the_batch)
    writer.start()
    started = time.monotonic()
    try:
        assert vault.verify(a).files == 1  # waited for the log, then accepted
    finally:
        writer.join()
    assert time.monotonic() - started >= 1.0
    assert vault.logged_state(a).require().kind == "envelopes.rewrapped"


def test_a_rewrapped_envelope_the_log_never_records_is_refused(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import weightvault.artifacts._vault as vault_module

    monkeypatch.setattr(vault_module, "REWRAP_SETTLE_S", 1.0)
    a = ingest.put(vault, make_tree(tmp_path / "a", {"a.bin": b"a" * 2048}), "a").artifact_id
    _rewrapped_unlogged(vault, a)  # and the rotation dies before logging it
    with pytest.raises(RollbackError, match="another envelope was put in its place"):
        vault.verify(a)


def test_a_compromised_signer_is_judged_at_the_time_the_log_recorded_the_statement(
    vault_settings: Settings, tmp_path: Path
) -> None:
    """The statement claims a time before the compromise; the log recorded it after."""
    later = Vault.open(vault_settings, clock=lambda: utcnow() + timedelta(days=2))
    artifact_id = ingest.put(
        later, make_tree(tmp_path / "m", {"m.bin": b"m" * 1024}), "m"
    ).artifact_id
    later.verify(artifact_id)
    logged = later.logged_state(artifact_id).require()
    statement = later.store.get_bytes(later.bucket("hot"), statement_key(artifact_id))
    payload = json.loads(base64.b64decode(json.loads(statement)["payload"]))
    claimed = parse_iso(payload["predicate"]["runDetails"]["metadata"]["finishedOn"])
    since = utcnow() + timedelta(days=1)
    # Judged at its claimed time, the statement would be trusted.
    assert claimed < since < later.logged_state(artifact_id).statement_logged_at(statement)
    signer = later.keys.active(SIGNING_KEY_ID)
    assert signer is not None
    compromise_key(later, f"{SIGNING_KEY_ID}@v{signer.version}", since=since)
    with pytest.raises(KeyStateError, match=f"dated {logged.ts[:10]}.*marks compromised since"):
        later.verify(artifact_id)


def test_an_older_keystore_is_refused_by_the_log_even_without_the_stores_version_records(
    vault: Vault, vault_settings: Settings, tmp_path: Path
) -> None:
    ingest.put(vault, make_tree(tmp_path / "a", {"a.bin": b"a" * 1024}), "a")
    old = tmp_path / "keystore.copy"
    shutil.copy2(vault_settings.keystore_path, old)
    compromise_key(vault, "kek-hot@v1")  # a key change: a newer keystore, logged
    newest, _ = vault.keys.sealed_version()  # type: ignore[attr-defined]
    envelopes = sorted(o.key for o in vault.store.list(vault.bucket("envelopes"), ""))

    # The attack: the bucket's version records and backups deleted, the old file put back.
    audit = vault.bucket("audit")
    for prefix in (KEYSTORE_VERSIONS_PREFIX, KEYSTORE_BACKUPS_PREFIX):
        for obj in list(vault.store.list(audit, prefix)):
            vault.store.remove(audit, obj.key)
    shutil.copy2(old, vault_settings.keystore_path)
    put = cli("put", str(make_tree(tmp_path / "b", {"b.bin": b"b" * 1024})), "--name", "b")
    assert put.returncode == KeystoreRollbackError.exit_code, put.stderr
    (line,) = [x for x in put.stderr.splitlines() if "error:" in x]
    assert f"the transparency log records version {newest}" in line
    assert "older copy" in line
    assert sorted(o.key for o in vault.store.list(vault.bucket("envelopes"), "")) == envelopes
