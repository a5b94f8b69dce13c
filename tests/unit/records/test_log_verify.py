"""verify_log and entry proofs on the real store (SeaweedFS): every tampering is named."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.support.rfc6962 import ref_mth
from tests.support.rfc6962_proofs import ref_check_tlog_proof, ref_consistent, ref_root_from_path
from tests.support.tlog_writers import ORIGIN, log_keys, open_log
from tests.support.witness_logs import entries_of, fill, new_bucket, rewrite_log, server_args
from weightvault.crypto.notes import sign_note
from weightvault.errors import LogForkError, LogVerificationError, NotFoundError
from weightvault.records import prove_entry, verify_entry_proof, verify_log
from weightvault.store import EmbeddedStore, ObjectStore
from weightvault.store.layout import log_checkpoint_key, log_tile_key
from weightvault.tlog import Checkpoint, entries_path, parse_tlog_proof, tile_path

_OCTETS = "application/octet-stream"


@pytest.fixture
def store_args(s3_server: EmbeddedStore) -> dict[str, Any]:
    return server_args(s3_server)


@pytest.fixture
def bucket(store_args: dict[str, Any]) -> str:
    return new_bucket(store_args)


@pytest.fixture
def seeds() -> tuple[bytes, bytes]:
    return os.urandom(32), os.urandom(32)


def _flip(store_args: dict[str, Any], bucket: str, key: str, offset: int) -> None:
    store = ObjectStore(**store_args)
    data = bytearray(store.get_bytes(bucket, key))
    data[offset] ^= 1
    store.put_bytes(bucket, key, bytes(data), content_type=_OCTETS)


def test_a_genuine_log_verifies_and_its_checkpoint_is_saved_privately(
    store_args: dict[str, Any], bucket: str, seeds: tuple[bytes, bytes], tmp_path: Path
) -> None:
    log = open_log(store_args, bucket, seeds)
    entries = entries_of("genuine", 600)  # two full level-0 tiles, a partial one, a level-1 tile
    fill(log, entries)
    last_seen = tmp_path / "home" / "last.checkpoint"
    report = verify_log(log, last_seen=last_seen)
    assert report.ok, report.problems
    assert report.size == 600
    assert report.root == __import__("base64").b64encode(ref_mth(entries)).decode()
    assert report.checkpoint_time is not None
    assert any("root recomputed" in c for c in report.checked)
    assert last_seen.read_bytes() == log.checkpoint().note
    assert stat.S_IMODE(last_seen.stat().st_mode) == 0o600
    # The log grows: still consistent with what this host saw; the saved checkpoint moves on.
    fill(log, entries_of("more", 5))
    again = verify_log(log, last_seen=last_seen)
    assert again.ok, again.problems
    assert again.last_seen_size == 600
    assert open_log(store_args, bucket, seeds).checkpoint().note == last_seen.read_bytes()


def test_a_tampered_entry_bundle_is_named_by_its_index(
    store_args: dict[str, Any], bucket: str, seeds: tuple[bytes, bytes], tmp_path: Path
) -> None:
    log = open_log(store_args, bucket, seeds)
    entries = entries_of("e", 300)
    fill(log, entries)
    # Entry 260 is in the second bundle (width 44); its bytes start after 20 earlier entries.
    offset = sum(2 + len(e) for e in entries[256:260]) + 2 + 5
    _flip(store_args, bucket, log_tile_key(entries_path(1, 44)), offset)
    last_seen = tmp_path / "last"
    report = verify_log(log, last_seen=last_seen)
    assert [(p.kind, p.where) for p in report.problems] == [
        ("entry", "entry 260"),
        ("root", "log/checkpoint"),
    ]
    assert "tile/0/001.p/44" in report.problems[0].detail
    assert not last_seen.exists()  # never saved after a failed check
    with pytest.raises(LogVerificationError, match="entry 260") as caught:
        report.raise_for_problems()
    assert caught.value.exit_code == 27


@pytest.mark.parametrize(
    ("level", "index", "width", "offset"),
    [(0, 0, 256, 32 * 7 + 3), (1, 0, 2, 32 + 1)],
    ids=["level-0 tile", "level-1 tile"],
)
def test_a_tampered_tile_is_named_by_its_path(
    store_args: dict[str, Any],
    bucket: str,
    seeds: tuple[bytes, bytes],
    level: int,
    index: int,
    width: int,
    offset: int,
) -> None:
    log = open_log(store_args, bucket, seeds)
    fill(log, entries_of("t", 520))
    path = tile_path(level, index, width)
    _flip(store_args, bucket, log_tile_key(path), offset)
    report = verify_log(log)
    assert not report.ok
    named = [p for p in report.problems if p.where == f"log/{path}"] + [
        p for p in report.problems if f"log/{path}" in p.detail
    ]
    assert named, report.problems
    # The entries are intact, so the root recomputed from them still matches the checkpoint.
    assert all(p.kind != "root" for p in report.problems)


def test_a_missing_tile_and_a_checkpoint_over_a_forged_root_are_named(
    store_args: dict[str, Any], bucket: str, seeds: tuple[bytes, bytes]
) -> None:
    log = open_log(store_args, bucket, seeds)
    fill(log, entries_of("m", 10))
    store = ObjectStore(**store_args)
    store.remove(bucket, log_tile_key(tile_path(0, 0, 10)))
    report = verify_log(log)
    assert ("tile", "log/tile/0/000.p/10") in [(p.kind, p.where) for p in report.problems]
    # The attacker holds the log keys and signs a checkpoint over a root of other entries.
    signers, _ = log_keys(*seeds)
    forged = sign_note(Checkpoint(ORIGIN, 10, ref_mth(entries_of("x", 10))).body(), signers)
    store.put_bytes(bucket, log_checkpoint_key(), forged.encode(), content_type="text/plain")
    report = verify_log(log)
    assert "root" in [p.kind for p in report.problems]


def test_a_checkpoint_missing_a_signature_is_named(
    store_args: dict[str, Any], bucket: str, seeds: tuple[bytes, bytes]
) -> None:
    log = open_log(store_args, bucket, seeds)
    entries = entries_of("s", 3)
    fill(log, entries)
    signers, _ = log_keys(*seeds)
    only_ed = sign_note(Checkpoint(ORIGIN, 3, ref_mth(entries)).body(), signers[:1])
    ObjectStore(**store_args).put_bytes(
        bucket, log_checkpoint_key(), only_ed.encode(), content_type="text/plain"
    )
    report = verify_log(log)
    assert [(p.kind, p.where) for p in report.problems] == [("checkpoint", "log/checkpoint")]
    assert "not signed by" in report.problems[0].detail


def test_last_seen_catches_a_rollback_and_a_same_size_fork(
    store_args: dict[str, Any], bucket: str, seeds: tuple[bytes, bytes], tmp_path: Path
) -> None:
    log = open_log(store_args, bucket, seeds)
    fill(log, entries_of("h", 12))
    last_seen = tmp_path / "last"
    assert verify_log(log, last_seen=last_seen).ok
    saved = last_seen.read_bytes()
    # Rollback: the log rewritten to its first 8 entries (genuine, signed by the log keys).
    rolled = rewrite_log(store_args, bucket, seeds, entries_of("h", 8))
    report = verify_log(rolled, last_seen=last_seen)
    assert [p.kind for p in report.problems] == ["rollback"]
    with pytest.raises(
        LogForkError, match="8 entries but the checkpoint this host saw last had 12"
    ) as caught:
        report.raise_for_problems()
    assert caught.value.exit_code == 29
    assert last_seen.read_bytes() == saved
    # Same size, another history.
    forked = rewrite_log(store_args, bucket, seeds, entries_of("other", 12))
    report = verify_log(forked, last_seen=last_seen)
    assert [p.kind for p in report.problems] == ["fork"]
    assert "size 12 has root" in report.problems[0].detail
    # Larger, another history: not an extension of the 12 seen.
    forked = rewrite_log(store_args, bucket, seeds, entries_of("other", 20))
    report = verify_log(forked, last_seen=last_seen)
    assert [p.kind for p in report.problems] == ["fork"]
    assert "does not extend size 12" in report.problems[0].detail
    assert last_seen.read_bytes() == saved


def test_entry_proofs_check_with_an_independent_rfc6962_verifier(
    store_args: dict[str, Any], bucket: str, seeds: tuple[bytes, bytes]
) -> None:
    log = open_log(store_args, bucket, seeds)
    entries = entries_of("p", 270)
    fill(log, entries)
    signers, verifiers = log_keys(*seeds)
    ed_vkey = signers[0].vkey  # type: ignore[attr-defined]
    for index in (0, 1, 127, 255, 256, 269):
        proof = prove_entry(log, index)
        origin, size, root = ref_check_tlog_proof(proof.decode(), entries[index], ed_vkey)
        assert (origin, size, root) == (ORIGIN, 270, ref_mth(entries))
        checkpoint = verify_entry_proof(proof, entries[index], verifiers)
        assert checkpoint.size == 270
        # The proof of one entry proves no other.
        parsed = parse_tlog_proof(proof.decode())
        other = entries[(index + 1) % 270]
        assert ref_root_from_path(index, 270, other, list(parsed.proof)) != root
        with pytest.raises(LogVerificationError):
            verify_entry_proof(proof, other, verifiers)
    with pytest.raises(LogVerificationError):  # keys of another log
        verify_entry_proof(
            prove_entry(log, 3), entries[3], log_keys(os.urandom(32), os.urandom(32))[1]
        )
    with pytest.raises(NotFoundError):
        prove_entry(log, 270)
    # Consistency proofs between every pair of sizes seen, by the independent check.
    full = log.checkpoint()
    for old in (1, 2, 7, 8, 255, 256, 257, 269):
        proof_hashes = log.consistency(old, full)
        assert ref_consistent(old, 270, ref_mth(entries[:old]), ref_mth(entries), proof_hashes)
        assert not ref_consistent(
            old, 270, ref_mth(entries_of("q", old)), ref_mth(entries), proof_hashes
        )
