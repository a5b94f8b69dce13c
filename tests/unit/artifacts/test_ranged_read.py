"""Random access into a stored file: a tensor or a byte range, only the covering chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_tree
from tests.support.safetensors import safetensors
from weightvault.artifacts import Vault
from weightvault.crypto.chunked import CHUNK_SIZE, HEADER_SIZE, SEALED_CHUNK, chunk_span
from weightvault.errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    QuarantinedError,
)
from weightvault.lifecycle import ingest
from weightvault.lifecycle.quarantine import quarantine
from weightvault.store import ObjectStore

TENSORS: dict[str, tuple[str, list[int]]] = {
    "embed.weight": ("F32", [64, 100]),  # 25,600 bytes: crosses chunk 0/1
    "layer.0.bias": ("F16", [7]),
    "layer.0.weight": ("F32", [128, 257]),  # 131,584 bytes: many chunks
    "head": ("U8", [3]),
    "lm_head.weight": ("F32", [256, 256]),  # 256 KiB after the rest
}


class Fetches:
    """Every ranged read and whole-object read the store serves."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: ObjectStore) -> None:
        self.ranges: list[tuple[str, int, int]] = []
        self.whole: list[str] = []
        read_range, open_ = store.read_range, store.open

        def ranged(bucket: str, key: str, offset: int, length: int, **kw: Any) -> Any:
            self.ranges.append((key, offset, length))
            return read_range(bucket, key, offset, length, **kw)

        def whole(bucket: str, key: str, *args: Any, **kw: Any) -> Any:
            self.whole.append(key)
            return open_(bucket, key, *args, **kw)

        monkeypatch.setattr(store, "read_range", ranged)
        monkeypatch.setattr(store, "open", whole)

    def of(self, key: str) -> list[tuple[int, int]]:
        return [(o, n) for k, o, n in self.ranges if k == key]


def _put(vault: Vault, tmp_path: Path) -> tuple[str, bytes, dict[str, bytes]]:
    body, tensors = safetensors(TENSORS)
    src = make_tree(tmp_path / "src", {"model.safetensors": body, "config.json": b"{}"})
    return ingest.put(vault, src, "st").artifact_id, body, tensors


def _object_key(vault: Vault, artifact_id: str, path: str) -> str:
    return next(f["object_key"] for f in vault.catalog.files_of(artifact_id) if f["path"] == path)


def test_tensors_and_ranges_match_the_plaintext(vault: Vault, tmp_path: Path) -> None:
    artifact_id, body, tensors = _put(vault, tmp_path)
    for name, raw in tensors.items():
        where, data = vault.read_tensor(artifact_id, "model.safetensors", name)
        assert data == raw
        assert body[where.start : where.end] == raw
        assert where.tensor.dtype == TENSORS[name][0]
        assert list(where.tensor.shape) == TENSORS[name][1]
    size = len(body)
    for start, end in [
        (0, 1),
        (0, size),
        (size - 1, size),
        (CHUNK_SIZE - 3, CHUNK_SIZE + 3),
        (2 * CHUNK_SIZE, 5 * CHUNK_SIZE),
        (size // 2, size // 2),
    ]:
        assert vault.read_range(artifact_id, "model.safetensors", start, end) == body[start:end]
    assert vault.read_range(artifact_id, "model.safetensors", 100, None) == body[100:]
    assert vault.read_range(artifact_id, "config.json", 0, 2) == b"{}"


def test_only_the_covering_chunks_are_fetched(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact_id, body, tensors = _put(vault, tmp_path)
    key = _object_key(vault, artifact_id, "model.safetensors")
    fetches = Fetches(monkeypatch, vault.store)
    start, end = 3 * CHUNK_SIZE + 10, 5 * CHUNK_SIZE + 10  # chunks 3, 4 and 5
    assert vault.read_range(artifact_id, "model.safetensors", start, end) == body[start:end]
    assert fetches.of(key) == [(0, HEADER_SIZE), (HEADER_SIZE + 3 * SEALED_CHUNK, 3 * SEALED_CHUNK)]
    assert key not in fetches.whole

    fetches.ranges.clear()
    where, data = vault.read_tensor(artifact_id, "model.safetensors", "layer.0.weight")
    assert data == tensors["layer.0.weight"]
    span = chunk_span(len(body), where.start, where.end)
    assert span.first == where.start // CHUNK_SIZE
    assert span.count == (where.end - 1) // CHUNK_SIZE - span.first + 1
    # The safetensors header (payload header + chunk 0), then the tensor's chunks: the
    # payload header read first is reused (and its commitment checked again).
    assert fetches.of(key) == [(0, HEADER_SIZE + SEALED_CHUNK), (span.offset, span.length)]
    fetched = sum(n for _, n in fetches.of(key))
    assert fetched < len(body) // 2
    assert key not in fetches.whole


@pytest.mark.parametrize("where", ["in_range", "header"])
def test_a_tampered_chunk_in_the_range_fails(vault: Vault, tmp_path: Path, where: str) -> None:
    artifact_id, body, _ = _put(vault, tmp_path)
    key = _object_key(vault, artifact_id, "model.safetensors")
    bucket = vault.bucket("hot")
    data = bytearray(vault.store.get_bytes(bucket, key))
    data[HEADER_SIZE + 4 * SEALED_CHUNK + 7 if where == "in_range" else 3] ^= 0x01
    vault.store.put_bytes(bucket, key, bytes(data))
    with pytest.raises(IntegrityError, match=artifact_id):
        vault.read_range(artifact_id, "model.safetensors", 4 * CHUNK_SIZE, 4 * CHUNK_SIZE + 10)
    # A range elsewhere is still readable when only chunk 4 changed.
    if where == "in_range":
        assert vault.read_range(artifact_id, "model.safetensors", 0, 10) == body[:10]


def test_a_truncated_object_fails(vault: Vault, tmp_path: Path) -> None:
    artifact_id, body, _ = _put(vault, tmp_path)
    key = _object_key(vault, artifact_id, "model.safetensors")
    bucket = vault.bucket("hot")
    data = vault.store.get_bytes(bucket, key)
    vault.store.put_bytes(bucket, key, data[:-1])
    with pytest.raises(IntegrityError):
        vault.read_range(artifact_id, "model.safetensors", len(body) - 5, len(body))
    with pytest.raises(IntegrityError):
        vault.read_range(artifact_id, "model.safetensors", 0, 5)  # object size differs


def test_a_quarantined_artifact_is_refused(vault: Vault, tmp_path: Path) -> None:
    artifact_id, _, _ = _put(vault, tmp_path)
    quarantine(vault, artifact_id, reason="suspicious weights")
    with pytest.raises(QuarantinedError):
        vault.read_range(artifact_id, "model.safetensors", 0, 10)
    with pytest.raises(QuarantinedError):
        vault.read_tensor(artifact_id, "model.safetensors", "head")


def test_reads_are_logged_as_reads(vault: Vault, tmp_path: Path) -> None:
    artifact_id, body, tensors = _put(vault, tmp_path)
    vault.read_range(artifact_id, "model.safetensors", 5, 20)
    where, _ = vault.read_tensor(artifact_id, "model.safetensors", "head")
    with vault.open_file(artifact_id, "model.safetensors") as reader:
        assert reader.read(0, 8) == body[:8]
        assert reader.read_tensor("embed.weight")[1] == tensors["embed.weight"]
    reads = vault.history(artifact_id, {"artifact.read"})
    details = [e.event.details for e in reads]
    assert len(details) == 3
    assert details[0]["file"] == "model.safetensors"
    assert details[0]["reads"] == ["5:20"]
    assert details[0]["bytes"] == 15
    assert details[1]["reads"] == [f"tensor head {where.start}:{where.end}"]
    assert details[1]["bytes"] == 3
    assert details[2]["read_count"] == 2
    assert details[2]["bytes"] == 8 + len(tensors["embed.weight"])


def test_unknown_names_and_bad_ranges(vault: Vault, tmp_path: Path) -> None:
    artifact_id, body, _ = _put(vault, tmp_path)
    with pytest.raises(NotFoundError, match=r"embed\.weight") as err:
        vault.read_tensor(artifact_id, "model.safetensors", "nope")
    assert "\n" not in str(err.value)
    with pytest.raises(NotFoundError, match=r"model\.safetensors"):
        vault.read_range(artifact_id, "missing.bin", 0, 1)
    with pytest.raises(InvalidInputError):
        vault.read_range(artifact_id, "model.safetensors", 0, len(body) + 1)
    with pytest.raises(InvalidInputError, match="not a valid safetensors"):
        vault.read_tensor(artifact_id, "config.json", "x")
