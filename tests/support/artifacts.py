"""Artifacts that several test layers put into a vault (lifecycle, tasks, flows, e2e)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO, make_tree
from tests.support.payloads import weights
from tests.support.tiers import stored_in
from weightvault.artifacts import Vault
from weightvault.lifecycle import ingest
from weightvault.provenance import capture_provenance
from weightvault.store.layout import manifest_key, statement_key


def ingest_model(vault: Vault, model_repo: Path, *, license_: str | None = "apache-2.0") -> str:
    """The reference pipeline's model, ingested with its complete provenance."""
    provenance = capture_provenance(
        model_repo,
        run_id="run-1",
        creator="alice",
        lock_file=REPO / "uv.lock",
        parent=None,
        allow_incomplete=False,
    )
    labels = {"license": license_} if license_ else {}
    src = model_repo / "model"
    return ingest.put(vault, src, "digits", labels=labels, provenance=provenance).artifact_id


def put_many(vault: Vault, tmp_path: Path, count: int, tier: str = "hot") -> list[str]:
    """``count`` small distinct artifacts in ``tier``."""
    ids = []
    for i in range(count):
        src = make_tree(tmp_path / f"a{i}", {"w.bin": weights(64) + bytes([i]), "c.json": b"{}"})
        ids.append(stored_in(vault, src, f"model-{i}", tier))
    return ids


def stored_objects(vault: Vault, tier: str, ids: list[str]) -> dict[str, tuple[str, bytes]]:
    """ETag and bytes of every ciphertext, manifest and statement object."""
    out = {}
    for artifact_id in ids:
        keys = [f["object_key"] for f in vault.catalog.files_of(artifact_id)]
        keys += [manifest_key(artifact_id), statement_key(artifact_id)]
        for key in keys:
            info = vault.store.stat(vault.bucket(tier), key)
            out[key] = (info.etag, vault.store.get_bytes(vault.bucket(tier), key))
    return out


def envelope_versions(vault: Vault, ids: list[str], tier: str = "hot") -> set[int]:
    """The KEK versions that wrap the artifacts' envelopes in ``tier``."""
    return {vault.load_envelope(a, tier).kek_version for a in ids}


def rebuildable_rows(vault: Vault) -> dict[str, list[tuple[object, ...]]]:
    """The catalog's rows but for the entries a catalog rebuild logs about itself.

    A rebuild is a logged operation, so the catalog after it holds its own
    intent and outcome; every other row must come back the same.
    """
    return {
        table: [row for row in rows if "catalog.rebuilt" not in row]
        for table, rows in vault.catalog.dump().items()
    }


def lose_catalog(url: str) -> None:
    """Lose the catalog at ``url`` whole: its SQLite file, or every table of its database."""
    from sqlalchemy import create_engine, text

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).unlink()
        return
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
