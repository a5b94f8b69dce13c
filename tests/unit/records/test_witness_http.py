"""The witness's c2sp tlog-witness HTTP API on a real socket."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.rfc6962 import ref_mth
from tests.support.tlog_writers import ORIGIN, log_keys
from weightvault.crypto.notes import NoteSigner, sign_note, verify_note
from weightvault.records import Witness, WitnessServer
from weightvault.tlog import Checkpoint, consistency_proof


class _Reader:
    def __init__(self, entries: list[bytes]) -> None:
        self.entries = entries

    def subtree(self, start: int, end: int) -> bytes:
        return ref_mth(self.entries[start:end])


@pytest.fixture
def signers() -> list[NoteSigner]:
    return log_keys(os.urandom(32), os.urandom(32))[0]


@pytest.fixture
def server(tmp_path: Path, signers: list[NoteSigner]) -> Iterator[WitnessServer]:
    witness = Witness.create(tmp_path / "w", "witness.test/http")
    witness.add_log(ORIGIN, [s.vkey for s in signers])  # type: ignore[attr-defined]
    srv = WitnessServer(witness, ("127.0.0.1", 0))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=30)


def _request(
    server: WitnessServer, method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes, str]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=60)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read(), response.getheader("Content-Type", "")
    finally:
        conn.close()


def _post(server: WitnessServer, body: bytes) -> tuple[int, bytes, str]:
    return _request(server, "POST", "/add-checkpoint", body)


def _note(signers: list[NoteSigner], entries: list[bytes], origin: str = ORIGIN) -> bytes:
    return sign_note(Checkpoint(origin, len(entries), ref_mth(entries)).body(), signers).encode()


def test_add_checkpoint_over_http(server: WitnessServer, signers: list[NoteSigner]) -> None:
    entries = [f"e{i}".encode() for i in range(12)]
    status, lines, _ = _post(server, b"old 0\n\n" + _note(signers, entries[:5]))
    assert status == 200
    verify_note(_note(signers, entries[:5]) + lines, [server.witness.verifier()])
    # A client that does not know the witness's size learns it from the 409.
    status, body, kind = _post(server, b"old 0\n\n" + _note(signers, entries))
    assert (status, body, kind) == (409, b"5\n", "text/x.tlog.size")
    proof = consistency_proof(5, 12, _Reader(entries))
    request = b"old 5\n" + b"".join(base64.b64encode(h) + b"\n" for h in proof) + b"\n"
    note = _note(signers, entries)
    status, lines, _ = _post(server, request + note)
    assert status == 200
    # The monitoring API serves it, with the log's and the witness's signatures.
    origin_hash = hashlib.sha256(ORIGIN.encode()).hexdigest()
    status, served, _ = _request(server, "GET", f"/{origin_hash}/checkpoint")
    assert status == 200
    assert b"\n12\n" in served
    verify_note(served, [server.witness.verifier()])


def test_refusals_carry_the_spec_status(server: WitnessServer, signers: list[NoteSigner]) -> None:
    entries = [b"a", b"b", b"c"]
    assert _post(server, b"old 0\n\n" + _note(signers, entries, "x.test/other"))[0] == 404
    forged = _note(log_keys(os.urandom(32), os.urandom(32))[0], entries)
    assert _post(server, b"old 0\n\n" + forged)[0] == 403
    assert _post(server, b"old 7\n\n" + _note(signers, entries))[0] == 400
    assert _post(server, b"old 0\n\n" + _note(signers, entries))[0] == 200
    status, body, _ = _post(server, b"old 3\n\n" + _note(signers, [b"x", b"y", b"z"]))
    assert status == 422
    assert b"a forked log" in body
    assert _request(server, "GET", f"/{'0' * 64}/checkpoint")[0] == 404
