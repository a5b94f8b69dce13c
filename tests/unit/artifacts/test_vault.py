"""Put, get, verify, tamper, dedupe, rebuild and gc against the real S3 server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_tree
from tests.support.artifacts import lose_catalog, rebuildable_rows
from tests.support.payloads import weights
from tests.support.tiers import stored_in
from weightvault.artifacts import Vault
from weightvault.errors import IntegrityError, InvalidInputError, NotFoundError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.rebuild import rebuild_catalog
from weightvault.store.layout import envelope_key, manifest_key

K16 = 16 * 1024


def _tree(root: Path) -> Path:
    return make_tree(
        root,
        {
            "model.safetensors": weights(3 * K16 + 11),
            "config.json": b'{"hidden": 64}',
            "tokenizer/vocab.txt": b"a\nb\nc\n",
            "empty.txt": b"",
        },
    )


def _put(vault: Vault, tmp_path: Path, name: str = "m") -> tuple[str, Path]:
    src = _tree(tmp_path / f"src-{name}")
    result = ingest.put(vault, src, name)
    return result.artifact_id, src


def _same_tree(a: Path, b: Path) -> bool:
    """``b`` (a get's output) holds ``a``'s files, and the OMS signature ``get`` adds."""
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    if (b / "model.sig").is_file():
        files_b.remove(Path("model.sig"))
    return files_a == files_b and all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)


def test_put_get_round_trip_directory(vault: Vault, tmp_path: Path) -> None:
    artifact_id, src = _put(vault, tmp_path)
    out = tmp_path / "out"
    vault.get(artifact_id, out)
    assert _same_tree(src, out)
    report = vault.verify(artifact_id)
    assert report.files == 4
    row = vault.catalog.artifact(artifact_id)
    assert row.file_count == 4
    assert [f["path"] for f in vault.catalog.files_of(artifact_id)] == sorted(
        ["model.safetensors", "config.json", "tokenizer/vocab.txt", "empty.txt"],
        key=lambda p: sorted(
            ["config.json", "empty.txt", "model.safetensors", "tokenizer/vocab.txt"]
        ).index(p),
    )


@pytest.mark.parametrize("size", [0, 1, K16, K16 - 1, K16 + 1])
def test_single_file_sizes(vault: Vault, tmp_path: Path, size: int) -> None:
    src = tmp_path / "w.bin"
    src.write_bytes(weights(size))
    artifact_id = ingest.put(vault, src, f"s{size}").artifact_id
    vault.get(artifact_id, tmp_path / "o")
    assert (tmp_path / "o" / "w.bin").read_bytes() == src.read_bytes()


def test_put_100_mib_multipart(vault: Vault, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    with src.open("wb") as fh:
        for _ in range(100):
            fh.write(weights(1 << 20))
    artifact_id = ingest.put(vault, src, "big").artifact_id
    info = vault.store.stat(
        vault.bucket("hot"), vault.catalog.files_of(artifact_id)[0]["object_key"]
    )
    assert "-" in info.etag  # stored as a multipart upload
    vault.get(artifact_id, tmp_path / "o")
    assert (tmp_path / "o" / "big.bin").stat().st_size == 100 << 20
    assert vault.verify(artifact_id).bytes == 100 << 20


def test_same_content_is_recognised(vault: Vault, tmp_path: Path) -> None:
    first, src = _put(vault, tmp_path)
    again = ingest.put(vault, src, "other-name")
    assert again.duplicate_of == first
    assert len(vault.catalog.list_artifacts()) == 1
    # The duplicate's uploaded objects were discarded.
    assert vault.committed_ids("hot") == {first}
    assert vault.gc(timedelta(0)) == []


def test_tampered_ciphertext_fails_and_writes_nothing(vault: Vault, tmp_path: Path) -> None:
    artifact_id, _ = _put(vault, tmp_path)
    obj = vault.catalog.files_of(artifact_id)[0]["object_key"]
    data = bytearray(vault.store.get_bytes(vault.bucket("hot"), obj))
    data[len(data) // 2] ^= 0x01
    vault.store.put_bytes(vault.bucket("hot"), obj, bytes(data))
    out = tmp_path / "out"
    with pytest.raises(IntegrityError) as err:
        vault.get(artifact_id, out)
    assert artifact_id in str(err.value)
    assert not out.exists()
    assert not list(tmp_path.glob(".out.partial-*"))
    with pytest.raises(IntegrityError):
        vault.verify(artifact_id)


def test_ciphertext_swapped_across_files_fails(vault: Vault, tmp_path: Path) -> None:
    artifact_id, _ = _put(vault, tmp_path)
    f = vault.catalog.files_of(artifact_id)
    bucket = vault.bucket("hot")
    a, b = f[0]["object_key"], f[1]["object_key"]
    da, db = vault.store.get_bytes(bucket, a), vault.store.get_bytes(bucket, b)
    vault.store.put_bytes(bucket, a, db)
    vault.store.put_bytes(bucket, b, da)
    with pytest.raises(IntegrityError):
        vault.verify(artifact_id)


def test_ciphertext_swapped_across_artifacts_fails(vault: Vault, tmp_path: Path) -> None:
    src = tmp_path / "one"
    make_tree(src, {"w.bin": b"A" * 5000})
    first = ingest.put(vault, src, "a").artifact_id
    src2 = tmp_path / "two"
    make_tree(src2, {"w.bin": b"B" * 5000})
    second = ingest.put(vault, src2, "b").artifact_id
    bucket = vault.bucket("hot")
    key1 = vault.catalog.files_of(first)[0]["object_key"]
    key2 = vault.catalog.files_of(second)[0]["object_key"]
    vault.store.put_bytes(bucket, key1, vault.store.get_bytes(bucket, key2))
    with pytest.raises(IntegrityError):
        vault.verify(first)


def test_envelope_swapped_between_artifacts_fails(vault: Vault, tmp_path: Path) -> None:
    first, _ = _put(vault, tmp_path, "a")
    src2 = make_tree(tmp_path / "b", {"x.bin": weights(100)})
    second = ingest.put(vault, src2, "b").artifact_id
    env = vault.bucket("envelopes")
    other = vault.store.get_bytes(env, envelope_key(second, "hot"))
    vault.store.put_bytes(env, envelope_key(first, "hot"), other)
    with pytest.raises(IntegrityError):
        vault.verify(first)
    with pytest.raises(IntegrityError):
        vault.get(first, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_manifest_swapped_between_artifacts_fails(vault: Vault, tmp_path: Path) -> None:
    first, _ = _put(vault, tmp_path, "a")
    src2 = make_tree(tmp_path / "b", {"x.bin": weights(100)})
    second = ingest.put(vault, src2, "b").artifact_id
    bucket = vault.bucket("hot")
    vault.store.put_bytes(
        bucket, manifest_key(first), vault.store.get_bytes(bucket, manifest_key(second))
    )
    with pytest.raises(IntegrityError):
        vault.verify(first)


@pytest.fixture
def stored(vault: Vault, tmp_path: Path) -> tuple[Vault, str, bytes, bytes]:
    src = make_tree(tmp_path / "p", {"w.bin": weights(K16 + 3), "c.json": b"{}"})
    artifact_id = ingest.put(vault, src, "prop").artifact_id
    env = vault.store.get_bytes(vault.bucket("envelopes"), envelope_key(artifact_id, "hot"))
    man = vault.store.get_bytes(vault.bucket("hot"), manifest_key(artifact_id))
    return vault, artifact_id, env, man


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_single_byte_change_of_stored_objects_fails(
    stored: tuple[Vault, str, bytes, bytes], data: st.DataObject
) -> None:
    vault, artifact_id, env, man = stored
    which = data.draw(st.sampled_from(["envelope", "manifest", "ciphertext"]))
    if which == "envelope":
        bucket, key, original = vault.bucket("envelopes"), envelope_key(artifact_id, "hot"), env
    elif which == "manifest":
        bucket, key, original = vault.bucket("hot"), manifest_key(artifact_id), man
    else:
        bucket = vault.bucket("hot")
        key = vault.catalog.files_of(artifact_id)[0]["object_key"]
        original = vault.store.get_bytes(bucket, key)
    pos = data.draw(st.integers(0, len(original) - 1))
    flip = data.draw(st.integers(1, 255))
    changed = bytearray(original)
    changed[pos] ^= flip
    vault.store.put_bytes(bucket, key, bytes(changed))
    try:
        with pytest.raises(IntegrityError):
            vault.verify(artifact_id)
    finally:
        vault.store.put_bytes(bucket, key, original)
    vault.verify(artifact_id)


def test_catalog_rebuild_yields_the_same_rows(vault: Vault, tmp_path: Path) -> None:
    first, _ = _put(vault, tmp_path, "a")
    stored_in(vault, make_tree(tmp_path / "b", {"x.bin": b"xyz"}), "b", "warm")
    vault.verify(first)
    before = rebuildable_rows(vault)
    assert before["artifacts"]
    assert before["events"]
    counts = rebuild_catalog(vault)
    assert counts["artifacts"] == 2
    assert rebuildable_rows(vault) == before


def test_catalog_rebuild_from_an_empty_catalog(vault: Vault, tmp_path: Path) -> None:
    first, _ = _put(vault, tmp_path, "a")
    before = rebuildable_rows(vault)
    lose_catalog(vault.settings.catalog_url)
    fresh = Vault.open(vault.settings)
    rebuild_catalog(fresh)
    assert rebuildable_rows(fresh) == before
    fresh.verify(first)


def test_a_cold_artifact_is_retained(vault: Vault, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "c", {"w.bin": b"cold" * 100})
    artifact_id = stored_in(vault, src, "c", "cold")
    placement = vault.catalog.placement(artifact_id)
    assert placement["retain_until"] is not None
    retention = vault.store.retention(vault.bucket("cold"), manifest_key(artifact_id))
    assert retention is not None
    assert retention[0] == "COMPLIANCE"


def test_gc_removes_orphans_only(vault: Vault, tmp_path: Path) -> None:
    keep, _ = _put(vault, tmp_path, "keep")
    plan = vault.plan(make_tree(tmp_path / "o", {"x.bin": weights(5000)}), "orphan")
    vault.create_envelope(plan.artifact_id, "hot")
    vault.upload_file(plan.artifact_id, "hot", plan.files[0])
    # A young orphan is left alone: its put may still be running.
    assert vault.gc() == []
    removed = vault.gc(timedelta(0))
    assert len(removed) == 2
    assert all(plan.artifact_id in r for r in removed)
    assert vault.committed_ids("hot") == {keep}
    vault.verify(keep)


def test_bad_inputs(vault: Vault, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        ingest.put(vault, tmp_path / "missing", "x")
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(InvalidInputError):
        ingest.put(vault, tmp_path / "emptydir", "x")
    link = tmp_path / "link"
    link.symlink_to("/etc/hostname")
    with pytest.raises(InvalidInputError):
        ingest.put(vault, link, "x")
    with pytest.raises(NotFoundError):
        vault.get("wv-none-0000", tmp_path / "o")
    with pytest.raises(InvalidInputError):
        ingest.put(vault, make_tree(tmp_path / "t", {"a": b"1"}), "x", tier="frozen")
