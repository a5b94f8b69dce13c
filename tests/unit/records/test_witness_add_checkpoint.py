"""The witness's add-checkpoint (c2sp tlog-witness) on checkpoints built in memory."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from tests.support.rfc6962 import ref_mth
from tests.support.tlog_writers import ORIGIN, log_keys
from weightvault.crypto.notes import NoteSigner, sign_note, verifier_from_vkey, verify_note
from weightvault.errors import (
    ConfigError,
    ConflictError,
    InvalidInputError,
    LogForkError,
    LogVerificationError,
)
from weightvault.records import Witness
from weightvault.tlog import Checkpoint, consistency_proof


class _Reader:
    def __init__(self, entries: list[bytes]) -> None:
        self.entries = entries

    def subtree(self, start: int, end: int) -> bytes:
        return ref_mth(self.entries[start:end])


def _entries(tag: str, n: int) -> list[bytes]:
    return [f"{tag}-{i}".encode() for i in range(n)]


def _note(signers: list[NoteSigner], entries: list[bytes], origin: str = ORIGIN) -> bytes:
    return sign_note(Checkpoint(origin, len(entries), ref_mth(entries)).body(), signers).encode()


def _proof(entries: list[bytes], old: int) -> list[bytes]:
    return consistency_proof(old, len(entries), _Reader(entries)) if old else []


@pytest.fixture
def keys() -> tuple[list[NoteSigner], list[str]]:
    signers, _ = log_keys(os.urandom(32), os.urandom(32))
    return signers, [s.vkey for s in signers]  # type: ignore[attr-defined]


@pytest.fixture
def witness(tmp_path: Path, keys: tuple[list[NoteSigner], list[str]]) -> Witness:
    w = Witness.create(tmp_path / "witness", "witness.test/w1", clock=lambda: 1_764_547_200)
    w.add_log(ORIGIN, keys[1])
    return w


def test_cosigns_a_growing_log_and_keeps_its_state_across_restarts(
    witness: Witness, keys: tuple[list[NoteSigner], list[str]], tmp_path: Path
) -> None:
    signers, _ = keys
    entries = _entries("a", 40)
    note = _note(signers, entries[:10])
    line = witness.add_checkpoint(0, [], note)
    assert line.startswith("\u2014 witness.test/w1 ".encode())
    assert line.endswith(b"\n")
    verify_note(note + line, [witness.verifier()])  # the spec: append the lines to the note
    witness.add_checkpoint(10, _proof(entries[:25], 10), _note(signers, entries[:25]))
    # A restart: a new Witness over the same home knows the size it cosigned.
    again = Witness(tmp_path / "witness")
    latest = again.latest(ORIGIN)
    assert latest is not None
    assert latest.size == 25
    assert again.vkey == witness.vkey
    with pytest.raises(ConflictError, match="last cosigned size 25, not 10"):
        again.add_checkpoint(10, _proof(entries, 10), _note(signers, entries))
    again.add_checkpoint(25, _proof(entries, 25), _note(signers, entries))
    # The same checkpoint again is fine (same size, same root).
    again.add_checkpoint(40, [], _note(signers, entries))
    stored = again.latest_note(ORIGIN)
    assert stored is not None
    verify_note(stored, [again.verifier(), *(verifier_from_vkey(v) for v in keys[1])])
    home = tmp_path / "witness"
    for path in (home / "witness.key", home / "witness.json", *(home / "state").iterdir()):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_a_fork_or_rollback_is_never_cosigned_and_is_kept_as_evidence(
    witness: Witness, keys: tuple[list[NoteSigner], list[str]]
) -> None:
    signers, _ = keys
    entries = _entries("a", 20)
    witness.add_checkpoint(0, [], _note(signers, entries))
    other = _entries("b", 20)
    with pytest.raises(LogForkError, match="size 20 has root") as caught:
        witness.add_checkpoint(20, [], _note(signers, other))
    assert caught.value.status == 422
    with pytest.raises(
        LogForkError, match=r"size 12 but witness witness\.test/w1 cosigned size 20"
    ):
        witness.add_checkpoint(20, [], _note(signers, entries[:12]))
    bigger = _entries("b", 30)
    with pytest.raises(LogVerificationError, match="not proved consistent") as refused:
        witness.add_checkpoint(20, _proof(bigger, 20), _note(signers, bigger))
    assert refused.value.status == 422
    latest = witness.latest(ORIGIN)
    assert latest is not None
    assert (latest.size, latest.root) == (20, ref_mth(entries))
    assert len(witness.forks()) == 3


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("unknown log", 404),
        ("bad signature", 403),
        ("old too big", 400),
        ("empty root", 422),
        ("proof from zero", 422),
    ],
)
def test_bad_requests_get_the_spec_status(
    witness: Witness, keys: tuple[list[NoteSigner], list[str]], case: str, status: int
) -> None:
    signers, _ = keys
    entries = _entries("a", 5)
    note = _note(signers, entries)
    old, proof = 0, []
    if case == "unknown log":
        note = _note(signers, entries, origin="another.test/log")
    elif case == "bad signature":
        text, sep, sigs = note.decode().rpartition("\n\n")
        note = (text.replace("\n5\n", "\n6\n") + sep + sigs).encode()
    elif case == "old too big":
        old = 9
    elif case == "empty root":
        note = sign_note(Checkpoint(ORIGIN, 0, ref_mth([b"x"])).body(), signers).encode()
    elif case == "proof from zero":
        proof = [bytes(32)]
    with pytest.raises(LogVerificationError) as caught:
        witness.add_checkpoint(old, proof, note)
    assert caught.value.status == status
    assert witness.latest(ORIGIN) is None


def test_the_http_request_body_is_parsed(
    witness: Witness, keys: tuple[list[NoteSigner], list[str]]
) -> None:
    signers, _ = keys
    entries = _entries("a", 9)
    witness.add_checkpoint(0, [], _note(signers, entries[:4]))
    proof = _proof(entries, 4)
    body = b"old 4\n" + b"".join(base64.b64encode(h) + b"\n" for h in proof) + b"\n"
    line = witness.add_checkpoint_request(body + _note(signers, entries))
    verify_note(_note(signers, entries) + line, [witness.verifier()])
    for bad in (b"old 04\n\n", b"new 4\n\n", b"old 4\nnot base64!\n\n"):
        with pytest.raises(LogVerificationError) as caught:
            witness.add_checkpoint_request(bad + _note(signers, entries))
        assert caught.value.status == 400


def test_a_witness_key_readable_by_others_is_refused(witness: Witness, tmp_path: Path) -> None:
    key = tmp_path / "witness" / "witness.key"
    key.chmod(0o640)
    with pytest.raises(ConfigError, match="readable by others"):
        Witness(tmp_path / "witness")
    with pytest.raises(ConflictError):
        Witness.create(tmp_path / "witness", "witness.test/w2")
    with pytest.raises(InvalidInputError):
        Witness.create(tmp_path / "bad", "has space")
    with pytest.raises(InvalidInputError):
        witness.add_log("o", ["not-a-vkey"])
