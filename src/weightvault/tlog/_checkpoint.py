"""c2sp tlog-checkpoint note bodies and c2sp tlog-proof documents."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from weightvault.crypto.notes import NoteError, NoteVerifier, checkpoint_fields, verify_note
from weightvault.tlog._merkle import HASH_SIZE, ProofError, verify_inclusion

PROOF_HEADER = "c2sp.org/tlog-proof@v1"


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size and root hash."""

    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        """The note text: ``origin``, ``size``, ``base64(root)``, each ending in a newline."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """The checkpoint a verified note's text holds; NoteError if it is not one."""
    return Checkpoint(*checkpoint_fields(text))


def open_checkpoint(data: bytes, origin: str, required: list[NoteVerifier]) -> Checkpoint:
    """Verify a signed checkpoint by every required key and check its origin."""
    note = verify_note(data, required)
    checkpoint = parse_checkpoint(note.text)
    if checkpoint.origin != origin:
        raise NoteError(f"the checkpoint is of log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint


@dataclass(frozen=True)
class TlogProof:
    """A c2sp tlog-proof: an entry's index, its inclusion proof and the signed checkpoint."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint: bytes
    extra: bytes | None = None

    def encode(self) -> str:
        """The ``.tlog-proof`` text."""
        lines = [PROOF_HEADER]
        if self.extra is not None:
            lines.append(f"extra {base64.b64encode(self.extra).decode()}")
        lines.append(f"index {self.index}")
        lines += [base64.b64encode(h).decode() for h in self.proof]
        return "\n".join(lines) + "\n\n" + self.checkpoint.decode()


def parse_tlog_proof(text: str) -> TlogProof:
    """Parse a ``.tlog-proof``; ProofError if malformed (nothing is verified here)."""
    head, sep, checkpoint = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or not lines or lines[0] != PROOF_HEADER:
        raise ProofError(f"not a tlog proof: the first line must be {PROOF_HEADER}")
    pos = 1
    extra = None
    try:
        if pos < len(lines) and lines[pos].startswith("extra "):
            extra = base64.b64decode(lines[pos][6:], validate=True)
            pos += 1
        if pos >= len(lines) or not lines[pos].startswith("index "):
            raise ProofError("a tlog proof needs an index line")
        index_text = lines[pos][6:]
        if not index_text.isdigit() or (index_text != "0" and index_text.startswith("0")):
            raise ProofError("the tlog proof index is not a decimal without leading zeros")
        hashes = tuple(base64.b64decode(line, validate=True) for line in lines[pos + 1 :])
    except binascii.Error as exc:
        raise ProofError("a tlog proof line is not base64") from exc
    if any(len(h) != HASH_SIZE for h in hashes):
        raise ProofError("a tlog proof hash is not 32 bytes")
    return TlogProof(int(index_text), hashes, checkpoint.encode(), extra)


def verify_tlog_proof(
    text: str, leaf: bytes, origin: str, required: list[NoteVerifier]
) -> Checkpoint:
    """Check a tlog proof for ``leaf`` (its leaf hash): checkpoint signatures, then inclusion."""
    proof = parse_tlog_proof(text)
    checkpoint = open_checkpoint(proof.checkpoint, origin, required)
    verify_inclusion(proof.index, checkpoint.size, leaf, list(proof.proof), checkpoint.root)
    return checkpoint
