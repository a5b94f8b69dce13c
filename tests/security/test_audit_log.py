"""Issue 11's attacks on the audit trail, reproduced against the real store and CLI.

Every operation and every refusal is two entries (intent, outcome) of the
signed transparency log in the audit bucket; nothing happens when the intent
cannot be recorded; failed reads are recorded; the catalog is rebuilt from the
verified log only, so forged, edited or re-timed events are ignored or detected.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.conftest import REPO, make_tree
from tests.support.approvals import APPROVERS, approved
from tests.support.audit_helpers import log_entries, outcomes, read_only_bucket
from tests.support.durable_store import CLI, cli, cli_json
from tests.support.rfc6962 import ref_mth
from weightvault._json import canonical_json
from weightvault.artifacts import Vault
from weightvault.errors import IntegrityError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.promote import delete_artifact
from weightvault.lifecycle.quarantine import quarantine, release
from weightvault.lifecycle.rebuild import rebuild_catalog
from weightvault.store import EmbeddedStore
from weightvault.store.layout import file_key, log_checkpoint_key, log_tile_key
from weightvault.tlog import entries_path, tile_path


def _put(vault: Vault, tmp_path: Path, name: str, data: bytes = b"w" * 4096) -> str:
    src = make_tree(tmp_path / name, {"model.bin": data, "config.json": b'{"a": 1}'})
    return ingest.put(vault, src, name).artifact_id


def _one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    # One error line; structured log records (JSON, e.g. a warning) may come before it.
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("{")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("weightvault: error: ")
    assert "Traceback" not in proc.stderr
    return lines[0]


def _tier_objects(vault: Vault) -> dict[str, str | None]:
    """Every object of the tier and envelope buckets, with its etag."""
    out: dict[str, str | None] = {}
    for role in ("hot", "warm", "cold", "quarantine", "envelopes"):
        for obj in vault.store.list(vault.bucket(role), ""):
            out[f"{role}/{obj.key}"] = obj.etag
    return out


def _keys(vault: Vault) -> list[tuple[str, int, str]]:
    return sorted((r.key_id, r.version, str(r.state)) for r in vault.keys.records())


# -- fail closed, before the effect ------------------------------------------------


def test_with_the_audit_bucket_refusing_writes_nothing_happens(
    vault: Vault, s3_server: EmbeddedStore, tmp_path: Path
) -> None:
    readable = _put(vault, tmp_path, "readable")
    doomed = _put(vault, tmp_path, "doomed", b"d" * 2048)
    src = make_tree(tmp_path / "new", {"w.bin": b"n" * 4096})
    size_before = vault.tlog.checkpoint().checkpoint.size
    objects, keys = _tier_objects(vault), _keys(vault)
    out, shares = tmp_path / "out", tmp_path / "shares"
    with read_only_bucket(s3_server, vault, vault.bucket("audit")):
        results = {
            "get": cli("get", readable, "--out", str(out)),
            "put": cli("put", str(src), "--name", "new"),
            "delete": cli("delete", doomed, "--yes"),
            "rotate": cli("keys", "rotate", "--tier", "hot", "--verify", "0"),
            "compromise": cli("keys", "compromise", "kek-hot@v1"),
            "split": cli(
                "escrow", "split", "--threshold", "2", "--shares", "3", "--out-dir", str(shares)
            ),
        }
    for what, proc in results.items():
        line = _one_line_error(proc, 15)
        assert "audit log unavailable" in line, (what, line)
    assert not out.exists()  # no plaintext, not even a staging directory
    assert _tier_objects(vault) == objects  # no upload, no manifest, nothing removed
    assert _keys(vault) == keys  # no rotation, no compromise mark, no escrow key
    assert not shares.exists() or not any(shares.iterdir())
    assert vault.tlog.checkpoint().checkpoint.size == size_before
    # Writable again: the same read works and is recorded.
    vault.get(readable, out)
    assert [e["outcome"] for e in outcomes(vault, "artifact.read", readable)] == ["ok"]


def test_tampered_reads_each_leave_a_failed_outcome_naming_the_artifact(
    vault: Vault, tmp_path: Path
) -> None:
    artifact_id = _put(vault, tmp_path, "victim")
    bucket, key = vault.bucket("hot"), file_key(artifact_id, 0)
    data = bytearray(vault.store.get_bytes(bucket, key))
    data[len(data) // 2] ^= 0x01
    vault.store.put_bytes(bucket, key, bytes(data))
    attempts = 5
    for n in range(attempts):
        out = tmp_path / f"out{n}"
        read = (
            functools.partial(vault.verify, artifact_id)
            if n % 2
            else functools.partial(vault.get, artifact_id, out)
        )
        with pytest.raises(IntegrityError):
            read()
        assert not out.exists()
    failed = [
        e
        for _, e in log_entries(vault)
        if e["phase"] == "outcome" and e["kind"] in {"artifact.read", "artifact.verified"}
    ]
    assert len(failed) == attempts
    for entry in failed:
        assert entry["outcome"] == "failed"
        assert entry["artifact_id"] == artifact_id
        assert artifact_id in entry["reason"]
        assert "\n" not in entry["reason"]
    # Each failure pairs with the intent recorded before the read began.
    intents = {e["op"] for _, e in log_entries(vault) if e["phase"] == "intent"}
    assert {e["op"] for e in failed} <= intents


# -- nothing trusted that is not in the log ------------------------------------------


def test_forged_event_objects_are_ignored_by_rebuild_and_audit_show(
    vault: Vault, tmp_path: Path
) -> None:
    artifact_id = _put(vault, tmp_path, "target")
    vault.verify(artifact_id)
    audit = vault.bucket("audit")
    # The old attack: plain JSON event objects, a read forged in someone else's name.
    forged = {
        "type": "weightvault.event/v2",
        "id": "00000000000000000001-forged000000",
        "ts": "2026-12-01T00:00:00.000000+00:00",
        "kind": "artifact.read",
        "phase": "outcome",
        "op": "forged",
        "principal": {"name": "mallory"},
        "client": {},
        "artifact_id": artifact_id,
        "tier": "hot",
        "key_ids": [],
        "outcome": "ok",
        "reason": None,
        "details": {},
    }
    vault.store.put_bytes(audit, "events/2026/12/01/forged.json", canonical_json(forged))
    report = rebuild_catalog(vault)
    assert report["ignored_unsigned"] == 1
    shown = cli_json("audit", "show", "--artifact", artifact_id)["entries"]
    assert [(e["kind"], e["phase"]) for e in shown] == [
        ("artifact.ingested", "intent"),
        ("artifact.ingested", "outcome"),
        ("artifact.verified", "intent"),
        ("artifact.verified", "outcome"),
    ]
    assert {e["principal"] for e in shown} == {"alice"}
    assert vault.catalog.log_search(principal="mallory") == []
    assert all(e["actor"] == "alice" for e in vault.show(artifact_id)["events"])


def _entries_object(vault: Vault) -> tuple[str, int]:
    size = vault.tlog.checkpoint().checkpoint.size
    assert 0 < size < 256, size
    return log_tile_key(entries_path(0, size)), size


def test_an_edited_log_entry_is_named_by_rebuild(vault: Vault, tmp_path: Path) -> None:
    artifact_id = _put(vault, tmp_path, "edited")
    audit = vault.bucket("audit")
    key, _ = _entries_object(vault)
    bundle = vault.store.get_bytes(audit, key)
    # Re-attribute the ingest to someone else (same length: the bundle still parses).
    assert bundle.count(b'"name":"alice"') >= 1
    edited = bundle.replace(b'"name":"alice"', b'"name":"eve42"', 1)
    index = _index_of_change(bundle, edited)
    vault.store.put_bytes(audit, key, edited)
    proc = cli("catalog", "rebuild")
    line = _one_line_error(proc, IntegrityError.exit_code)
    assert f"log entry {index} " in line
    # The catalog was left as it was.
    assert vault.catalog.artifact(artifact_id).creator == "alice"


def test_an_edited_entry_with_its_tile_recomputed_is_detected(vault: Vault, tmp_path: Path) -> None:
    _put(vault, tmp_path, "retimed")
    audit = vault.bucket("audit")
    key, size = _entries_object(vault)
    bundle = vault.store.get_bytes(audit, key)
    entries = _decode(bundle)
    # Re-time the first outcome, and rewrite the level-0 hashes to match.
    target = next(i for i, e in enumerate(entries) if json.loads(e)["phase"] == "outcome")
    doc = json.loads(entries[target])
    doc["ts"] = "2020-01-01T00:00:00.000000+00:00"
    entries[target] = canonical_json(doc)
    vault.store.put_bytes(audit, key, _encode(entries))
    hashes = b"".join(_leaf(e) for e in entries)
    vault.store.put_bytes(audit, log_tile_key(tile_path(0, 0, size)), hashes)
    proc = cli("catalog", "rebuild")
    line = _one_line_error(proc, IntegrityError.exit_code)
    assert "signed checkpoint" in line
    assert f"entry {target}" in line


def test_a_forged_checkpoint_is_refused(vault: Vault, tmp_path: Path) -> None:
    _put(vault, tmp_path, "x")
    audit = vault.bucket("audit")
    note = vault.store.get_bytes(audit, log_checkpoint_key())
    body, _, sigs = note.decode().partition("\n\n")
    lines = body.split("\n")
    lines[1] = str(int(lines[1]) - 1)
    vault.store.put_bytes(audit, log_checkpoint_key(), ("\n".join(lines) + "\n\n" + sigs).encode())
    _one_line_error(cli("catalog", "rebuild"), IntegrityError.exit_code)


# -- the log's shape: intents and outcomes, private values, no secrets ----------------


def test_every_operation_has_an_intent_and_an_outcome_and_no_secret(
    vault: Vault, vault_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weightvault.artifacts import log_origin
    from weightvault.keys import identity_path, load_identity, load_master_key
    from weightvault.lifecycle.compromise import compromise_key
    from weightvault.lifecycle.rotation import rotate
    from weightvault.records import Event
    from weightvault.store.layout import envelope_key

    kept = _put(vault, tmp_path, "kept")
    gone = _put(vault, tmp_path, "gone", b"g" * 1000)
    out = tmp_path / "out"
    vault.get(kept, out)
    vault.verify(kept)
    quarantine(vault, kept, reason="incident 1")
    with pytest.raises(Exception, match="quarantined"):
        vault.verify(kept)
    with pytest.raises(Exception, match="approvals"):
        release(vault, kept, justification="self")
    approved(vault, kept, "release")
    release(vault, kept, justification="resolved")
    deks = [vault.dek(a, "hot") for a in (kept, gone)]
    delete_artifact(vault, gone)
    vault.gc()
    rotate(vault, vault.clock(), force_tiers=["hot"], verify=0)
    compromise_key(vault, "kek-warm@v1")
    rebuild_catalog(vault)

    entries = [e for _, e in log_entries(vault)]
    # The signed root is the RFC 6962 root of these very entries (an independent hash).
    root = vault.tlog.checkpoint().checkpoint.root
    assert ref_mth([canonical_json(e) for e in entries]) == root
    by_op: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_op.setdefault(e["op"], []).append(e)
    for op, pair in by_op.items():
        assert [p["phase"] for p in pair] == ["intent", "outcome"], (op, pair)
        assert pair[0]["kind"] == pair[1]["kind"]
        assert pair[1]["outcome"] in {"ok", "failed", "refused"}
    kinds = {(e["kind"], e["outcome"]) for e in entries if e["phase"] == "outcome"}
    for expected in [
        ("artifact.ingested", "ok"),
        ("artifact.read", "ok"),
        ("artifact.verified", "ok"),
        ("artifact.verified", "refused"),
        ("artifact.quarantined", "ok"),
        ("artifact.released", "refused"),
        ("artifact.released", "ok"),
        ("artifact.deleted", "ok"),
        ("store.gc", "ok"),
        ("key.rotated", "ok"),
        ("keys.rotation_run", "ok"),
        ("key.compromised", "ok"),
        ("catalog.rebuilt", "ok"),
    ]:
        assert expected in kinds, expected
    signers = {n: load_identity(identity_path(n)) for n in ("alice", *APPROVERS)}
    for e in entries:
        # Only the approvals are signed by the approvers; everything else by alice.
        expected = e["principal"]["name"] if e["kind"] == "artifact.approved" else "alice"
        assert e["principal"]["name"] == expected
        signer = signers[expected]
        assert e["principal"]["keyid"] == signer.keyid
        signed = Event.parse(canonical_json(e))
        assert signed.signature_valid(log_origin(vault.settings), signer.public_key())
        assert e["client"]["pid"] > 0
        assert e["client"]["host"].startswith("hmac-sha256:")
    ingested = next(
        e for e in entries if e["kind"] == "artifact.ingested" and e["phase"] == "outcome"
    )
    assert any(k.startswith("kek-hot@v") for k in ingested["key_ids"])
    # audit hash gives exactly what the log stores for the output directory.
    read = next(e for e in entries if e["kind"] == "artifact.read" and e["phase"] == "intent")
    hashed = cli_json("audit", "hash", str(out.absolute()))["hash"]
    assert read["details"]["output"] == hashed
    assert str(out) not in json.dumps(entries)
    # No secret: not the master key, a DEK, a key's material or the S3 secret.
    text = "\n".join(canonical_json(e).decode() for e in entries)
    master = load_master_key(vault_settings.master_key_path, vault_settings.master_key)
    secrets = [master, *deks, *(r.material for r in vault.keys.records() if r.material)]
    for secret in secrets:
        for form in (
            secret.hex(),
            base64.b64encode(secret).decode(),
            base64.urlsafe_b64encode(secret).decode(),
        ):
            assert form not in text
    s3_secret = vault_settings.store.secret_key
    assert s3_secret
    assert s3_secret not in text
    assert envelope_key(kept, "hot")  # envelopes are referenced by key id only
    # audit show/search over the index: one operation's pair, refusals by outcome.
    refused = vault.catalog.log_search(outcome="refused", artifact_id=kept)
    assert {r["kind"] for r in refused} == {"artifact.verified", "artifact.released"}
    pair = cli_json("audit", "show", refused[0]["op"])["entries"]
    assert [r["phase"] for r in pair] == ["intent", "outcome"]


def test_log_key_prints_a_standard_vkey_that_verifies_the_checkpoint(
    vault: Vault, tmp_path: Path
) -> None:
    from weightvault.artifacts import log_keys, log_origin

    _put(vault, tmp_path, "signed")
    keys = {
        "origin": log_origin(vault.settings),
        **log_keys(vault.keys, log_origin(vault.settings)).vkeys,
    }
    plain = subprocess.run(
        [*CLI, "audit", "log-key"], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.strip()
    assert plain == keys["ed25519"]
    # An independent signed-note check: name+hex id+base64(0x01 || key).
    name, hex_id, blob = plain.split("+", 2)  # base64 may hold "+" itself
    raw = base64.b64decode(blob)
    assert raw[0] == 0x01
    assert len(raw) == 33
    import hashlib

    assert hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex() == hex_id
    note = vault.store.get_bytes(vault.bucket("audit"), log_checkpoint_key()).decode()
    text, _, sigs = note.partition("\n\n")
    assert text.split("\n")[0] == name == keys["origin"]
    verified = False
    for line in sigs.strip().split("\n"):
        _, signer, sig = line.split(" ")
        decoded = base64.b64decode(sig)
        if signer == name and decoded[:4].hex() == hex_id:
            ed25519.Ed25519PublicKey.from_public_bytes(raw[1:]).verify(
                decoded[4:], (text + "\n").encode()
            )
            verified = True
    assert verified
    assert keys["mldsa44"].startswith(name + "+")


def test_concurrent_cli_operations_give_one_consistent_log(vault: Vault, tmp_path: Path) -> None:
    ids = [_put(vault, tmp_path, f"c{i}") for i in range(2)]
    before = vault.tlog.checkpoint().checkpoint.size
    procs = [
        subprocess.Popen(
            [*CLI, "verify", ids[i % 2], "--json"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=os.environ.copy(),
        )
        for i in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    entries = log_entries(vault)  # verified against the signed root
    assert [i for i, _ in entries] == list(range(len(entries)))
    new = [e for i, e in entries if i >= before]
    assert len(new) == 6
    assert sorted(e["client"]["pid"] for e in new if e["phase"] == "outcome") == sorted(
        p.pid for p in procs
    )


# -- helpers: an entry bundle and RFC 6962 leaf hashes, written here ----------------------


def _decode(bundle: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(bundle):
        (size,) = struct.unpack_from(">H", bundle, pos)
        out.append(bundle[pos + 2 : pos + 2 + size])
        pos += 2 + size
    return out


def _encode(entries: list[bytes]) -> bytes:
    return b"".join(struct.pack(">H", len(e)) + e for e in entries)


def _leaf(entry: bytes) -> bytes:
    import hashlib

    return hashlib.sha256(b"\x00" + entry).digest()


def _index_of_change(before: bytes, after: bytes) -> int:
    for i, (a, b) in enumerate(zip(_decode(before), _decode(after), strict=True)):
        if a != b:
            return i
    raise AssertionError("nothing changed")
