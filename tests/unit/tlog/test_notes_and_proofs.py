"""Signed notes, cosignatures, checkpoints and tlog-proofs (c2sp), with published vectors."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from weightvault.crypto.notes import (
    Ed25519CosignatureVerifier,
    Ed25519Cosigner,
    Ed25519NoteSigner,
    Ed25519NoteVerifier,
    MLDSA44CosignatureVerifier,
    MLDSA44Cosigner,
    NoteError,
    parse_note,
    sign_note,
    verifier_from_vkey,
    verify_note,
)
from weightvault.errors import InvalidInputError
from weightvault.tlog import (
    Checkpoint,
    ProofError,
    TlogProof,
    inclusion_proof,
    leaf_hash,
    open_checkpoint,
    root_of,
    verify_tlog_proof,
)

# golang.org/x/mod/sumdb/note's reference vector (note_test.go).
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG = (
    "— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
# The c2sp signed-note spec's example.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "— example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)


def test_published_vectors_verify() -> None:
    note = verify_note((GO_TEXT + "\n" + GO_SIG).encode(), [verifier_from_vkey(GO_VKEY)])
    assert note.text == GO_TEXT
    spec = verify_note(SPEC_NOTE.encode(), [verifier_from_vkey(SPEC_VKEY)])
    assert spec.text == "This is an example message.\n"


def test_a_changed_text_or_signature_is_refused() -> None:
    verifier = verifier_from_vkey(GO_VKEY)
    with pytest.raises(NoteError, match="invalid"):
        verify_note(
            (GO_TEXT.replace("problem", "problems", 1) + "\n" + GO_SIG).encode(), [verifier]
        )
    with pytest.raises(NoteError, match="not signed by"):
        verify_note(SPEC_NOTE.encode(), [verifier])
    for broken in [GO_TEXT + GO_SIG, GO_TEXT + "\n" + GO_SIG.replace("— ", "- "), GO_TEXT + "\n"]:
        with pytest.raises(NoteError):
            verify_note(broken.encode(), [verifier])
    with pytest.raises(NoteError, match="control"):
        parse_note(("bad\x07text\n\n" + GO_SIG).encode())


def test_mangled_vkeys_are_refused() -> None:
    for bad in [
        GO_VKEY.replace("c74f20a3", "c74f20a4"),
        GO_VKEY.replace("PeterNeumann", "PeterNeumanm"),
        GO_VKEY + "+x",
        GO_VKEY[:-2],
        "PeterNeumann+c74f20a3+" + base64.b64encode(b"\x09" + bytes(32)).decode(),
    ]:
        with pytest.raises(InvalidInputError):
            verifier_from_vkey(bad)


def test_sign_and_verify_with_unknown_signatures_ignored() -> None:
    log = Ed25519NoteSigner("vault.example/log", ed25519.Ed25519PrivateKey.generate())
    other = Ed25519NoteSigner("someone.else/x", ed25519.Ed25519PrivateKey.generate())
    note = sign_note("hello\nworld\n", [log, other])
    verified = verify_note(note.encode(), [verifier_from_vkey(log.vkey)])
    assert verified.text == "hello\nworld\n"
    assert len(verified.signatures) == 2
    doubled = note.encode() + note.signatures[0].line().encode()
    with pytest.raises(NoteError, match="more than once"):
        verify_note(doubled, [verifier_from_vkey(log.vkey)])
    with pytest.raises(InvalidInputError):
        sign_note("no final newline", [log])


def _plain_verifier(name: str, public: bytes) -> Ed25519NoteVerifier:
    return Ed25519NoteVerifier(name, public)


def _checkpoint(size: int = 3) -> tuple[Checkpoint, list[bytes]]:
    entries = [f"event {i}".encode() for i in range(size)]
    return Checkpoint("vault.example/log", size, root_of([leaf_hash(e) for e in entries])), entries


def test_mldsa44_cosignature_commits_to_name_time_and_tree() -> None:
    checkpoint, _ = _checkpoint()
    key = mldsa.MLDSA44PrivateKey.generate()
    cosigner = MLDSA44Cosigner("vault.example/log", key, lambda: 1_764_547_200)
    assert cosigner.vkey.startswith("vault.example/log+")
    verifier = verifier_from_vkey(cosigner.vkey)
    assert isinstance(verifier, MLDSA44CosignatureVerifier)
    note = sign_note(checkpoint.body(), [cosigner])
    assert len(note.signatures[0].signature) == 8 + 2420
    verify_note(note.encode(), [verifier])
    assert verifier.last_timestamp == 1_764_547_200
    other = Checkpoint(checkpoint.origin, checkpoint.size + 1, checkpoint.root)
    with pytest.raises(NoteError):
        verify_note(other.body().encode() + b"\n" + note.signatures[0].line().encode(), [verifier])
    renamed = MLDSA44CosignatureVerifier("other.example/log", key.public_key().public_bytes_raw())
    with pytest.raises(NoteError):
        verify_note(note.encode(), [renamed])


def test_ed25519_cosignature_v1() -> None:
    checkpoint, _ = _checkpoint()
    witness = Ed25519Cosigner("witness.example/w1", ed25519.Ed25519PrivateKey.generate(), lambda: 7)
    note = sign_note(checkpoint.body(), [witness])
    verifier = verifier_from_vkey(witness.vkey)
    assert isinstance(verifier, Ed25519CosignatureVerifier)
    verify_note(note.encode(), [verifier])
    assert verifier.last_timestamp == 7
    # The same key as a plain note verifier (type 0x01) has another key id: no match.
    raw = base64.b64decode(witness.vkey.split("+", 2)[2])[1:]
    with pytest.raises(NoteError, match="not signed by"):
        verify_note(note.encode(), [_plain_verifier("witness.example/w1", raw)])


def test_checkpoint_needs_every_required_signature_and_its_origin() -> None:
    checkpoint, _ = _checkpoint()
    log = Ed25519NoteSigner("vault.example/log", ed25519.Ed25519PrivateKey.generate())
    pq = MLDSA44Cosigner("vault.example/log", mldsa.MLDSA44PrivateKey.generate(), lambda: 1)
    both = [verifier_from_vkey(log.vkey), verifier_from_vkey(pq.vkey)]
    signed = sign_note(checkpoint.body(), [log, pq]).encode()
    assert open_checkpoint(signed, "vault.example/log", both) == checkpoint
    only_ed = sign_note(checkpoint.body(), [log]).encode()
    with pytest.raises(NoteError, match="not signed by"):
        open_checkpoint(only_ed, "vault.example/log", both)
    with pytest.raises(NoteError, match="of log"):
        open_checkpoint(signed, "vault.example/other", both)


def test_tlog_proof_round_trip_and_tamper() -> None:
    checkpoint, entries = _checkpoint(11)
    log = Ed25519NoteSigner("vault.example/log", ed25519.Ed25519PrivateKey.generate())
    verifiers = [verifier_from_vkey(log.vkey)]
    signed = sign_note(checkpoint.body(), [log]).encode()
    hashes = [leaf_hash(e) for e in entries]

    class Reader:
        def subtree(self, start: int, end: int) -> bytes:
            return root_of(hashes[start:end])

    proof = TlogProof(6, tuple(inclusion_proof(6, 11, Reader())), signed, extra=b"ctx")
    text = proof.encode()
    assert text.startswith("c2sp.org/tlog-proof@v1\nextra Y3R4\nindex 6\n")
    assert verify_tlog_proof(text, hashes[6], "vault.example/log", verifiers) == checkpoint
    with pytest.raises(ProofError):
        verify_tlog_proof(text, hashes[5], "vault.example/log", verifiers)
    with pytest.raises(ProofError):
        verify_tlog_proof(
            text.replace("index 6", "index 06"), hashes[6], "vault.example/log", verifiers
        )
    with pytest.raises(NoteError):
        verify_tlog_proof(
            text.replace("\n11\n", "\n12\n"), hashes[6], "vault.example/log", verifiers
        )
