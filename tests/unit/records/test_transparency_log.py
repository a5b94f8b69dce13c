"""The transparency log on real S3 (SeaweedFS and moto): appends, proofs, races, forgeries."""

from __future__ import annotations

import multiprocessing
import os
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.support.rfc6962 import ref_mth
from tests.support.s3_peers import S3Peer
from tests.support.tlog_writers import ORIGIN, log_keys, open_log, write_entries
from weightvault.crypto.notes import Ed25519NoteSigner, NoteError, sign_note
from weightvault.errors import IntegrityError
from weightvault.records import TransparencyLog
from weightvault.store import ObjectStore
from weightvault.store.layout import log_checkpoint_key, log_tile_key
from weightvault.tlog import (
    Checkpoint,
    ProofError,
    leaf_hash,
    tile_path,
    verify_consistency,
    verify_tlog_proof,
)


@pytest.fixture
def store_args(s3_peer: S3Peer) -> dict[str, Any]:
    return {
        "endpoint": s3_peer.endpoint,
        "access_key": s3_peer.access_key,
        "secret_key": s3_peer.secret_key,
    }


@pytest.fixture
def bucket(store_args: dict[str, Any]) -> str:
    name = f"l{uuid.uuid4().hex[:12]}-audit"
    ObjectStore(**store_args).ensure_bucket(name, versioned=True, object_lock=False)
    return name


@pytest.fixture
def seeds() -> tuple[bytes, bytes]:
    return os.urandom(32), os.urandom(32)


def test_appends_give_the_reference_root_and_proofs_verify(
    store_args: dict[str, Any], bucket: str, seeds: tuple[bytes, bytes]
) -> None:
    log = open_log(store_args, bucket, seeds)
    assert log.checkpoint().checkpoint.size == 0
    entries = [f'{{"event":{i}}}'.encode() for i in range(300)]
    for entry in entries[:5]:
        log.append(entry)
    for entry in entries[5:]:
        log.sequence(entry)  # many writers' worth of sequenced entries, one integration
    signed = log.integrate()
    assert signed.checkpoint.size == 300
    assert signed.checkpoint.root == ref_mth(entries)
    assert log.entries() == entries
    _, verifiers = log_keys(*seeds)
    for index in (0, 4, 255, 256, 299):
        text = log.prove(index).encode()
        verify_tlog_proof(text, leaf_hash(entries[index]), ORIGIN, verifiers)
    with pytest.raises(ProofError):
        verify_tlog_proof(log.prove(7).encode(), leaf_hash(entries[8]), ORIGIN, verifiers)


def test_concurrent_writers_give_one_consistent_log(
    store_args: dict[str, Any], bucket: str, seeds: tuple[bytes, bytes]
) -> None:
    ctx = multiprocessing.get_context("spawn")
    writers, count = 4, 12
    barrier, out = ctx.Barrier(writers), ctx.Queue()
    procs = [
        ctx.Process(target=write_entries, args=(store_args, bucket, seeds, w, count, barrier, out))
        for w in range(writers)
    ]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=600) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    log = open_log(store_args, bucket, seeds)
    final = log.checkpoint()
    assert final.checkpoint.size == writers * count
    entries = log.entries()
    assert sorted(entries) == sorted(
        f'{{"writer":{w},"n":{i}}}'.encode() for w in range(writers) for i in range(count)
    )
    assert final.checkpoint.root == ref_mth(entries)
    # Every checkpoint any writer saw is a prefix of the final tree: no fork, no rewrite.
    indexes = set()
    for seen in results.values():
        for index, size, root_hex in seen:
            assert index < size
            indexes.add(index)
            assert bytes.fromhex(root_hex) == ref_mth(entries[:size])
            if size < final.checkpoint.size:
                verify_consistency(
                    size,
                    final.checkpoint.size,
                    bytes.fromhex(root_hex),
                    final.checkpoint.root,
                    log.consistency(size, final),
                )
    assert indexes == set(range(writers * count))  # each append got its own index


def test_an_entry_sequenced_by_a_crashed_writer_is_integrated_by_the_next(
    store_args: dict[str, Any], bucket: str, seeds: tuple[bytes, bytes]
) -> None:
    crashed = open_log(store_args, bucket, seeds)
    crashed.append(b"first")
    assert crashed.sequence(b"sequenced, then the writer died") == 1
    later = open_log(store_args, bucket, seeds)
    index, signed = later.append(b"third")
    assert index == 2
    assert signed.checkpoint.size == 3
    assert later.entries() == [b"first", b"sequenced, then the writer died", b"third"]


def test_a_checkpoint_not_signed_by_both_log_keys_is_refused(
    store_args: dict[str, Any], bucket: str, seeds: tuple[bytes, bytes]
) -> None:
    log = open_log(store_args, bucket, seeds)
    log.append(b"genuine")
    store = ObjectStore(**store_args)
    forged_root = ref_mth([b"forged"])
    forger = Ed25519NoteSigner(ORIGIN, ed25519.Ed25519PrivateKey.generate())
    forged = sign_note(Checkpoint(ORIGIN, 1, forged_root).body(), [forger])
    store.put_bytes(bucket, log_checkpoint_key(), forged.encode(), content_type="text/plain")
    with pytest.raises(NoteError):
        log.checkpoint()
    # Only the Ed25519 line of the real key (the ML-DSA-44 cosignature dropped): refused too.
    signers, _ = log_keys(*seeds)
    only_ed = sign_note(Checkpoint(ORIGIN, 1, ref_mth([b"genuine"])).body(), signers[:1])
    store.put_bytes(bucket, log_checkpoint_key(), only_ed.encode(), content_type="text/plain")
    with pytest.raises(NoteError, match="not signed by"):
        log.checkpoint()


def test_a_rewritten_tile_is_detected(
    store_args: dict[str, Any], bucket: str, seeds: tuple[bytes, bytes]
) -> None:
    log = open_log(store_args, bucket, seeds)
    for i in range(3):
        log.append(f"e{i}".encode())
    store = ObjectStore(**store_args)
    key = log_tile_key(tile_path(0, 0, 3))
    tile = bytearray(store.get_bytes(bucket, key))
    tile[40] ^= 1
    store.put_bytes(bucket, key, bytes(tile), content_type="application/octet-stream")
    fresh = open_log(store_args, bucket, seeds)
    with pytest.raises(IntegrityError):
        fresh.entries()
    _, verifiers = log_keys(*seeds)
    with pytest.raises(ProofError):  # leaf 0's sibling is the rewritten hash
        verify_tlog_proof(fresh.prove(0).encode(), leaf_hash(b"e0"), ORIGIN, verifiers)


def test_integrating_needs_the_signing_keys(
    store_args: dict[str, Any], bucket: str, seeds: tuple[bytes, bytes]
) -> None:
    _, verifiers = log_keys(*seeds)
    reader = TransparencyLog(ObjectStore(**store_args), bucket, ORIGIN, verifiers=verifiers)
    reader.sequence(b"x")
    with pytest.raises(IntegrityError, match="signing keys"):
        reader.integrate()
