"""What the engine logs for each operation, captured with structlog's own test helper."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from tests.conftest import make_tree
from tests.support.payloads import weights
from weightvault.artifacts import Vault
from weightvault.lifecycle import ingest


def test_put_verify_get_log_their_events_without_key_material(vault: Vault, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "m", {"w.bin": weights(20_000), "c.json": b"{}"})
    with capture_logs() as logs:
        art = ingest.put(vault, src, "logged").artifact_id
        vault.verify(art)
        vault.get(art, tmp_path / "out")
    events = [(e["event"], e.get("artifact_id")) for e in logs]
    assert ("artifact.ingested", art) in events
    assert ("artifact.verified", art) in events
    assert ("artifact.read", art) in events
    ingested = next(e for e in logs if e["event"] == "artifact.ingested")
    assert (ingested["actor"], ingested["files"], ingested["tier"]) == ("alice", 2, "hot")
    material = {rec.material.hex() for rec in vault.keys.records()}
    for entry in logs:
        text = repr(entry)
        assert not any(m in text for m in material)
